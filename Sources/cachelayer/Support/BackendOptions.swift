import ArgumentParser
import CacheLayer

/// The options of the commands that measure a cache on either backend: which backend, and where Redis is.
struct BackendOptions: ParsableArguments {
    @Option(help: "The backend to measure: memory or redis.")
    var backend: CacheConfiguration.Backend = .memory

    @Option(name: .customLong("redis-url"), help: "redis://[user:password@]host:port/db, for --backend redis.")
    var redisURL: String?

    @Flag(help: "--redis-url names a seed node of a Redis Cluster; the other nodes are discovered.")
    var cluster = false

    func validate() throws {
        if backend == .redis && redisURL == nil { throw ValidationError("--backend redis needs --redis-url redis://host:port.") }
        if backend == .memory && redisURL != nil { throw ValidationError("--redis-url applies to --backend redis only.") }
        if backend == .memory && cluster { throw ValidationError("--cluster applies to --backend redis only.") }
    }

    /// A configuration for the chosen backend: the URL's address and credentials for Redis, the defaults
    /// otherwise; the caller sets the rest.
    func configuration() throws -> CacheConfiguration {
        var configuration = try redisURL.map { try CacheConfiguration(redisURL: $0) } ?? CacheConfiguration()
        configuration.backend = backend
        configuration.redisCluster = cluster
        return configuration
    }
}
