@testable import CacheLayer
import RedisClient
import RedisTestSupport
import Testing

/// Recovery from an outage when replaying one of the writes made meanwhile fails for a reason other than Redis being
/// unavailable: the write is logged, counted and skipped, and recovery completes (issue 11: such an error used to end
/// every replay pass, so the breaker never closed and the cache stayed on memory for good).
@Suite("FallbackCache replay errors, real Redis")
struct FallbackReplayErrorTests {
    static func fallbackCache(_ server: RedisServer, namespace: String?, recovery: FallbackRecovery = .invalidate) async throws -> FallbackCache {
        var configuration = server.cacheConfiguration(namespace: namespace, fallback: true, timeout: .milliseconds(300))
        configuration.fallbackRecovery = recovery
        configuration.connectTimeout = .seconds(1)
        configuration.fallbackFailureThreshold = 1
        configuration.fallbackProbeInterval = .milliseconds(50)
        let cache = try await makeCache(configuration, logger: quietLogger)
        return try #require(cache as? FallbackCache)
    }

    /// Stops Redis, runs `duringOutage` once the breaker is open, starts Redis again (empty), and returns whether the
    /// cache recovered within five seconds.
    static func recovers(_ cache: FallbackCache, _ server: RedisServer, duringOutage: () async throws -> Void) async throws -> Bool {
        await server.kill()
        // The first failed call opens the breaker (threshold 1); later writes go to memory and are journaled.
        _ = try await cache.get("probe", as: Int.self)
        #expect(!cache.isBackendHealthy)
        try await duringOutage()
        try await server.restart()
        let recovered = await eventually { await cache.stats().recoveries == 1 && cache.isBackendHealthy }
        return recovered
    }

    @Test(arguments: FallbackRecovery.allCases)
    func aKeyRedisRefusesDoesNotKeepTheCacheOnMemory(recovery: FallbackRecovery) async throws {
        try await withRedisServer { server in
            let cache = try await Self.fallbackCache(server, namespace: "replay", recovery: recovery)
            let recovered = try await Self.recovers(cache, server) {
                // Memory accepts it; the Redis cache refuses keys under its tag-set prefix.
                try await cache.set("__tag__:x", to: 1, ttl: .seconds(60))
                try await cache.set("ok", to: 2, ttl: .seconds(60))
            }
            #expect(recovered)
            #expect(cache.replayRefusals == 1)
            let direct = try await RedisCache.connect(configuration: server.cacheConfiguration(namespace: "replay"), logger: quietLogger)
            // The other keys were replayed: written back, or invalidated (the next read loads a fresh value).
            #expect(try await direct.get("ok", as: Int.self) == (recovery == .writeBack ? 2 : nil))
            try await direct.close()
            try await cache.close()
        }
    }

    @Test func theOutageJournalIsBoundedAndNoKeyKeepsAnOlderValueAfterRecovery() async throws {
        try await withRedisServer { server in
            var redisConfiguration = server.cacheConfiguration(namespace: "journal", timeout: .milliseconds(200))
            redisConfiguration.connectTimeout = .seconds(1)
            let redis = try RedisCache(configuration: redisConfiguration, codec: JSONCacheCodec(), logger: quietLogger)
            for i in 0..<30 { try await redis.set("k\(i)", to: "old", ttl: .seconds(600)) }
            var memoryConfiguration = CacheConfiguration.development
            memoryConfiguration.name = "journal"
            let memory = try MemoryCache(configuration: memoryConfiguration)
            let cache = try FallbackCache(
                primary: redis, local: memory,
                configuration: FallbackConfiguration(failureThreshold: 1, probeInterval: .milliseconds(50), maxPendingKeys: 10),
                name: "journal", logger: quietLogger, probe: { try await redis.ping() }
            )
            // A frozen server keeps its data: the old values are still there when it comes back.
            try server.pause()
            _ = try await cache.get("k0", as: String.self)
            #expect(!cache.isBackendHealthy)
            for i in 0..<30 { try await cache.set("k\(i)", to: "new", ttl: .seconds(600)) }
            #expect(cache.pendingKeyCount <= 10)
            try server.resume()
            let recovered = await eventually { await cache.stats().recoveries == 1 && cache.isBackendHealthy && cache.pendingKeyCount == 0 }
            #expect(recovered)
            let direct = try await RedisCache.connect(configuration: server.cacheConfiguration(namespace: "journal"), logger: quietLogger)
            for i in 0..<30 {
                let value = try await direct.get("k\(i)", as: String.self)
                #expect(value == nil || value == "new", "k\(i) is \(value ?? "nil")")
            }
            try await direct.close()
            try await cache.close()
        }
    }

    @Test func aClearWithoutNamespaceDuringAnOutageDoesNotKeepTheCacheOnMemory() async throws {
        try await withRedisServer { server in
            let cache = try await Self.fallbackCache(server, namespace: nil)
            let recovered = try await Self.recovers(cache, server) {
                // Redis refuses clear() without a namespace (it would flush the whole database).
                try await cache.clear()
                try await cache.set("ok", to: 2, ttl: .seconds(60))
            }
            #expect(recovered)
            #expect(cache.replayRefusals == 1)
            try await cache.close()
        }
    }

    @Test(arguments: FallbackRecovery.allCases)
    func redisOutOfMemoryUnderNoevictionDoesNotKeepTheCacheOnMemory(recovery: FallbackRecovery) async throws {
        try await withRedisServer { server in
            let cache = try await Self.fallbackCache(server, namespace: "oom", recovery: recovery)
            try await cache.set("k", to: 1, ttl: .seconds(60))
            // Every write that needs memory is refused with OOM from now on; deletes still work.
            try await server.withRawConnection { connection in
                _ = try await connection.send("CONFIG", "SET", "maxmemory-policy", "noeviction")
                _ = try await connection.send("CONFIG", "SET", "maxmemory", "1")
            }
            try server.pause()
            _ = try await cache.get("k", as: Int.self)
            #expect(!cache.isBackendHealthy)
            try await cache.set("k", to: 2, ttl: .seconds(60))
            try server.resume()
            let recovered = await eventually { await cache.stats().recoveries == 1 && cache.isBackendHealthy && cache.pendingKeyCount == 0 }
            #expect(recovered)
            // Writing back is refused (OOM), counted, and the key deleted instead; invalidating is a delete, which Redis
            // allows under OOM.
            #expect(cache.replayRefusals == (recovery == .writeBack ? 1 : 0))
            try await server.withRawConnection { connection in
                _ = try await connection.send("CONFIG", "SET", "maxmemory", "0")
            }
            let afterRecovery = try await cache.get("k", as: Int.self)
            // Never the value from before the outage (1), older than the one written during it.
            #expect(afterRecovery == nil)
            try await cache.close()
        }
    }
}
