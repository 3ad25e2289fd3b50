@testable import CacheLayer
import Foundation
import Logging
import RedisTestSupport
import RedisClient

/// A logger that drops everything, so fault tests do not flood the output.
let quietLogger = Logger(label: "test.redis", factory: { _ in SwiftLogNoOpLogHandler() })

extension RedisServer {
    /// A Redis cache configuration for this server: namespace `test` unless told otherwise. The default timeouts are
    /// long, for a machine loaded by parallel tests; fault tests pass short ones.
    func cacheConfiguration(
        namespace: String? = "test",
        fallback: Bool = false,
        timeout: Duration = .seconds(10)
    ) -> CacheConfiguration {
        var configuration = CacheConfiguration()
        configuration.backend = .redis
        configuration.name = "redis-test"
        configuration.redisAddress = "\(host):\(port)"
        configuration.redisPassword = options.password
        configuration.namespace = namespace
        configuration.readTimeout = timeout
        configuration.writeTimeout = timeout
        // Connecting (TCP, HELLO, SELECT) also bounds the wait for a pooled connection; at least a second, so that
        // a machine loaded by parallel tests does not time out while setting up.
        configuration.connectTimeout = max(timeout, .seconds(1))
        configuration.maxRetries = 1
        configuration.poolSize = 16
        configuration.maxIdleConnections = 16
        configuration.enableFallback = fallback
        configuration.fallbackFailureThreshold = 3
        configuration.fallbackProbeInterval = .milliseconds(50)
        configuration.maxMemorySize = 16 * 1024 * 1024
        return configuration
    }
}

extension RedisCluster {
    /// A Redis cache configuration for this cluster (its first node as the seed, or all of them): namespace `test`
    /// unless told otherwise, long timeouts for a loaded machine unless told otherwise.
    func cacheConfiguration(namespace: String? = "test", timeout: Duration = .seconds(10), allSeeds: Bool = false) -> CacheConfiguration {
        var configuration = nodes[0].cacheConfiguration(namespace: namespace, timeout: timeout)
        configuration.name = "redis-cluster-test"
        configuration.redisCluster = true
        configuration.redisAddress = allSeeds ? seeds.joined(separator: ",") : seeds[0]
        if let caCertificatePath {
            configuration.redisTLS = true
            configuration.redisCACertificatePath = caCertificatePath
        }
        return configuration
    }
}

/// Caches on the process's shared redis-server (``RedisServer/shared()``) for the pattern tests, each in a namespace
/// of its own.
enum SharedRedisServer {
    /// A Redis cache with a fresh namespace on the shared server (``RedisServer/shared()``), its patterns reading
    /// `clock`.
    static func makeCache(clock: TestClock) async throws -> RedisCache {
        let server = try await RedisServer.shared()
        var configuration = server.cacheConfiguration(namespace: "patterns-\(UUID().uuidString)")
        configuration.poolSize = 4
        configuration.maxIdleConnections = 4
        configuration.connectTimeout = .seconds(10)
        configuration.readTimeout = .seconds(10)
        configuration.writeTimeout = .seconds(10)
        return try RedisCache(configuration: configuration, codec: JSONCacheCodec(), logger: quietLogger, wallClock: { clock.now })
    }
}

extension SharedRedisServer {
    /// A Redis cache on the process's shared 3-primary cluster (``RedisCluster/shared()``), in a fresh namespace.
    static func makeClusterCache(clock: TestClock) async throws -> RedisCache {
        let cluster = try await RedisCluster.shared()
        var configuration = cluster.cacheConfiguration(namespace: "patterns-\(UUID().uuidString)")
        configuration.poolSize = 4
        configuration.maxIdleConnections = 4
        return try RedisCache(configuration: configuration, codec: JSONCacheCodec(), logger: quietLogger, wallClock: { clock.now })
    }

    /// A two-level cache (near cache with client tracking) over a fresh namespace on the shared server (or the shared
    /// cluster), its patterns reading `clock`; returned once tracking is set up, so L1 is in use from the first call.
    static func makeTwoLevelCache(
        clock: TestClock,
        near: NearCacheConfiguration = NearCacheConfiguration(maxMemorySize: 8 * 1024 * 1024),
        onCluster: Bool = false
    ) async throws -> TwoLevelCache {
        let redis = try await onCluster ? makeClusterCache(clock: clock) : makeCache(clock: clock)
        var configuration = CacheConfiguration.development
        configuration.name = "patterns-two-level"
        configuration.maxMemorySize = near.maxMemorySize
        let memory = try MemoryCache(configuration: configuration, clock: MonotonicCacheClock(), shardCount: nil, startSweeper: false)
        let cache = TwoLevelCache(redis: redis, memory: memory, configuration: near, logger: quietLogger, wallClock: { clock.now })
        try await cache.waitUntilCoherent(timeout: .seconds(10))
        return cache
    }
}

/// The address of a redis-server that was started and then stopped: connections to it are refused, as when
/// Redis is down.
enum StoppedRedisServer {
    static let configuration = Task<CacheConfiguration, any Error> {
        let server = try await RedisServer.start()
        var configuration = server.cacheConfiguration(namespace: "patterns-down")
        await server.stop()
        configuration.poolSize = 2
        configuration.maxIdleConnections = 2
        configuration.maxRetries = 0
        configuration.connectTimeout = .milliseconds(500)
        configuration.readTimeout = .milliseconds(500)
        configuration.writeTimeout = .milliseconds(500)
        return configuration
    }
}

extension RedisServer {
    /// Runs `body` with a plain connection to this server (no namespace), to look at or change what Redis holds.
    func withRawConnection<T: Sendable>(database: Int = 0, _ body: (RedisConnection) async throws -> T) async throws -> T {
        let connection = try await RedisConnection.connect(
            configuration: RedisConnectionConfiguration(host: host, port: port, password: options.password, database: database)
        )
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }

    /// How many times the server ran `command` since it started (`INFO commandstats`).
    func commandCalls(_ command: String) async throws -> Int {
        let text = try await withRawConnection { try await $0.info(section: "commandstats") }
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_\(command.lowercased()):calls=") {
            return Int(line.dropFirst("cmdstat_\(command.lowercased()):calls=".count).prefix { $0.isNumber }) ?? 0
        }
        return 0
    }
}
