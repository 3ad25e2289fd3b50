/// How a ``RedisClusterClient`` finds the cluster, logs in to its nodes and retries.
///
/// ```swift
/// var connection = RedisConnectionConfiguration(host: "10.0.0.1", port: 6379)
/// connection.password = secret
/// let configuration = try RedisClusterConfiguration(
///     seeds: ["10.0.0.1:6379", "10.0.0.2:6379"],
///     connection: connection
/// )
/// ```
public struct RedisClusterConfiguration: Sendable {
    /// Nodes asked for the topology (`CLUSTER SHARDS`) at start; any one that answers is enough.
    public var seeds: [ClusterNodeAddress]
    /// How to connect to every node: credentials, TLS, timeouts. Its host and port are replaced by each node's;
    /// its database must be 0 (a cluster has no other, and `SELECT` is refused).
    public var connection: RedisConnectionConfiguration
    /// The pool kept for each primary.
    public var pool: RedisConnectionPoolConfiguration
    /// Most `MOVED`/`ASK` redirections one command follows before failing.
    public var maxRedirects: Int
    /// How long a command keeps retrying while the cluster heals (`TRYAGAIN`, `CLUSTERDOWN`, `LOADING`,
    /// `MASTERDOWN`, a primary that refuses connections during a failover), with back-off, before the error reaches
    /// the caller. Each attempt is bounded by the connection's command timeout as well.
    public var retryTimeout: Duration
    /// How often the topology is read again when nothing prompts it (a redirection or a connection failure does).
    public var refreshInterval: Duration
    /// Whether read-only commands (`GET`, `MGET`, `EXISTS`, `TTL`, `PTTL`, `STRLEN`, `TYPE`, `HGET`, `HMGET`,
    /// `HGETALL`, `SMEMBERS`, `SISMEMBER`, `SCARD`, alone or in a pipeline of only such commands) go to a replica of
    /// the slot's primary, on connections that sent `READONLY`. Off by default.
    ///
    /// Replicas copy their primary asynchronously, so such reads are **eventually consistent**: a read right after a
    /// write may return the older value (or none), even on the same client. A read falls back to the primary when the
    /// shard has no replica or its replica cannot be reached, is loading or times out; a `MOVED` from a replica is
    /// followed as from a primary. `SCAN` and every write stay on the primaries.
    public var readFromReplicas: Bool

    /// A configuration; `seeds` as `host:port`.
    ///
    /// - Throws: ``RedisError/Code/invalidConfiguration`` when a seed is not `host:port`, there is none, or the
    ///   connection selects a database other than 0.
    public init(
        seeds: [String],
        connection: RedisConnectionConfiguration,
        pool: RedisConnectionPoolConfiguration = .init(),
        maxRedirects: Int = 5,
        retryTimeout: Duration = .seconds(5),
        refreshInterval: Duration = .seconds(30),
        readFromReplicas: Bool = false
    ) throws {
        var addresses: [ClusterNodeAddress] = []
        for seed in seeds {
            let trimmed = seed.trimmingWhitespace()
            guard let address = ClusterNodeAddress(trimmed) else {
                throw RedisError(code: .invalidConfiguration, message: "the cluster seed \"\(seed)\" is not host:port, e.g. 10.0.0.1:6379")
            }
            addresses.append(address)
        }
        self.seeds = addresses
        self.connection = connection
        self.pool = pool
        self.maxRedirects = maxRedirects
        self.retryTimeout = retryTimeout
        self.refreshInterval = refreshInterval
        self.readFromReplicas = readFromReplicas
        try self.validate()
    }

    /// A configuration from one seed URL (`redis://[user:password@]host:port` or `rediss://…`): its credentials and
    /// TLS apply to every node, and the other nodes are discovered from it.
    public init(url: String, tls: RedisConnectionConfiguration.TLS? = nil, pool: RedisConnectionPoolConfiguration = .init()) throws {
        let connection = try RedisConnectionConfiguration(url: url, tls: tls)
        try self.init(seeds: ["\(ClusterNodeAddress(host: connection.host, port: connection.port))"], connection: connection, pool: pool)
    }

    /// Checks the values; the initializers call it.
    public func validate() throws {
        func fail(_ message: String) throws { throw RedisError(code: .invalidConfiguration, message: message) }
        if seeds.isEmpty { try fail("a Redis Cluster configuration needs at least one seed node (host:port)") }
        if connection.database != 0 {
            try fail("database \(connection.database) is selected, but a Redis Cluster has only database 0 (SELECT is refused); use key prefixes instead")
        }
        if maxRedirects < 1 { try fail("maxRedirects is \(maxRedirects); a cluster client must follow at least one redirection") }
        if retryTimeout < .zero { try fail("retryTimeout is negative") }
        if refreshInterval <= .zero { try fail("refreshInterval must be positive") }
    }

    /// The connection configuration for one node.
    func connection(to address: ClusterNodeAddress) -> RedisConnectionConfiguration {
        var configuration = connection
        configuration.host = address.host
        configuration.port = address.port
        return configuration
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        String(self.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
