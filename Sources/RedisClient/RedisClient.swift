// The RedisClient library: RESP2/RESP3 protocol, connections, pipelining and a connection pool.
