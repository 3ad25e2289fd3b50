// The RedisClient library: RESP2/RESP3 protocol, connections, pipelining and a connection pool, on SwiftNIO.
// It knows nothing about caching.
//
// Layout:
// - RESP/        RESPValue, the bounded incremental RESPDecoder and the encoder (NIOCore only, so
//                scripts/fuzz can compile them alone).
// - Connection/  RedisConnectionConfiguration, RedisConnection (one pipelined connection), its
//                channel handler and state machine, RedisCommand and the typed helpers on
//                RedisCommandExecutor.
// - Pool/        RedisConnectionPool, its configuration and state machine.
// - RedisError   every error the library throws: a struct with a `code` to switch on.
//
// Quick start:
//
//     let pool = try RedisConnectionPool(url: "redis://:password@127.0.0.1:6379/0")
//     try await withThrowingDiscardingTaskGroup { group in
//         group.addTask { await pool.run() }
//         try await pool.set("greeting", value: "hello", expiration: .after(.seconds(60)))
//         print(try await pool.getString("greeting") ?? "-")
//         pool.shutdown()
//     }
