@testable import CacheLayer
import RedisClient
import RedisTestSupport
import Testing

/// Fallback caches of two instances on one real redis-server (separate connections), which is paused (SIGSTOP),
/// killed (SIGKILL) or restarted empty: no instance serves a value older than one it already returned, and after
/// recovery none reads a value older than the newest acknowledged write (issue 11).
@Suite("FallbackCache coherence across instances, real Redis")
struct FallbackCoherenceTests {
    /// A fallback cache as `makeCache` builds it, failing over on the first failure, probing every `probeInterval`.
    static func instance(
        _ server: RedisServer, namespace: String = "coherent", probeInterval: Duration = .milliseconds(50),
        configure: (inout CacheConfiguration) -> Void = { _ in }
    ) async throws -> FallbackCache {
        var configuration = server.cacheConfiguration(namespace: namespace, fallback: true, timeout: .milliseconds(300))
        configuration.connectTimeout = .milliseconds(500)
        configuration.fallbackFailureThreshold = 1
        configuration.fallbackProbeInterval = probeInterval
        configure(&configuration)
        let cache = try await makeCache(configuration, logger: quietLogger)
        return try #require(cache as? FallbackCache)
    }

    static func redisValue(_ server: RedisServer, _ key: String, namespace: String = "coherent") async throws -> Int? {
        let direct = try await RedisCache.connect(configuration: server.cacheConfiguration(namespace: namespace), logger: quietLogger)
        let value = try await direct.get(key, as: Int.self)
        try await direct.close()
        return value
    }

    @Test func duringAnOutageAnInstanceServesTheValueItLastReadNotTheOneItWrote() async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server)
            let b = try await Self.instance(server)
            try await a.set("price", to: 1, ttl: .seconds(60))
            try await b.set("price", to: 2, ttl: .seconds(60))
            #expect(try await a.get("price", as: Int.self) == 2)
            try server.pause()
            // A's read times out and falls back to memory: it must not go back to its own older write.
            let duringOutage = try await a.get("price", as: Int.self)
            #expect(duringOutage == 2)
            #expect(!a.isBackendHealthy)
            try server.resume()
            try await a.close()
            try await b.close()
        }
    }

    @Test func aDeleteMadeDuringAnOutageIsNotLostWhenTheCacheClosesAfterRedisCameBack() async throws {
        try await withRedisServer { server in
            // A probe so slow that only close() can replay the delete.
            let a = try await Self.instance(server, probeInterval: .seconds(60))
            try await a.set("session", to: 7, ttl: .seconds(600))
            try server.pause()
            _ = try await a.get("session", as: Int.self)
            #expect(!a.isBackendHealthy)
            try await a.delete("session")
            try server.resume()
            try await a.close()
            #expect(try await Self.redisValue(server, "session") == nil, "the revoked session came back")
        }
    }

    @Test func closeDuringAnOutageReturnsWithinItsDeadline() async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server, probeInterval: .seconds(60)) { $0.fallbackCloseTimeout = .milliseconds(500) }
            try await a.set("k", to: 1, ttl: .seconds(60))
            try server.pause()
            _ = try await a.get("k", as: Int.self)
            try await a.set("k", to: 2, ttl: .seconds(60))
            #expect(a.pendingKeyCount == 1)
            let start = ContinuousClock.now
            try await a.close()
            let elapsed = ContinuousClock.now - start
            try server.resume()
            #expect(elapsed < .milliseconds(2500), "close() took \(elapsed)")
        }
    }
}
