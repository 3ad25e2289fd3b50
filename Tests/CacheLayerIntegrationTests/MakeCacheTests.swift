@testable import CacheLayer
import RedisTestSupport
import Testing

@Suite("makeCache")
struct MakeCacheTests {
    @Test func memoryBackendReturnsAWorkingMemoryCache() async throws {
        let cache = try await makeCache(.development)
        #expect(cache is MemoryCache)
        try await cache.set("greeting", to: "hello", ttl: .seconds(60))
        #expect(try await cache.get("greeting", as: String.self) == "hello")
        try await cache.close()
    }

    @Test func redisBackendReturnsARedisCache() async throws {
        try await withRedisServer { server in
            let cache = try await makeCache(server.cacheConfiguration(), logger: quietLogger)
            #expect(cache is RedisCache)
            try await cache.set("greeting", to: "hello", ttl: .seconds(60))
            #expect(try await cache.get("greeting", as: String.self) == "hello")
            try await cache.close()
        }
    }

    @Test func redisBackendWithFallbackReturnsAFallbackCacheOverRedis() async throws {
        try await withRedisServer { server in
            let cache = try await makeCache(server.cacheConfiguration(fallback: true), logger: quietLogger)
            let fallback = try #require(cache as? FallbackCache)
            #expect(fallback.patterns.backend == "fallback")
            try await cache.set("greeting", to: "hello", ttl: .seconds(60))
            // The value reached Redis, under the namespace.
            let redis = try await RedisCache.connect(configuration: server.cacheConfiguration(), logger: quietLogger)
            #expect(try await redis.get("greeting", as: String.self) == "hello")
            try await redis.close()
            try await cache.close()
        }
    }

    @Test func redisBackendWithoutFallbackFailsWhenRedisIsUnreachable() async throws {
        let server = try await RedisServer.start()
        let configuration = server.cacheConfiguration(timeout: .milliseconds(500))
        await server.stop()
        let error = await #expect(throws: CacheError.self) { try await makeCache(configuration, logger: quietLogger) }
        #expect(error?.code == .unavailable)
        #expect(error?.underlying != nil)
    }

    @Test func redisBackendWithFallbackStartsWhileRedisIsUnreachable() async throws {
        let server = try await RedisServer.start()
        let configuration = server.cacheConfiguration(fallback: true, timeout: .milliseconds(500))
        await server.stop()
        let cache = try await makeCache(configuration, logger: quietLogger)
        try await cache.set("k", to: 1, ttl: .seconds(60))
        #expect(try await cache.get("k", as: Int.self) == 1)
        try await cache.close()
    }

    @Test func invalidConfigurationIsRejected() async throws {
        var configuration = CacheConfiguration.default
        configuration.sweepInterval = .zero
        await #expect(throws: CacheError.self) { try await makeCache(configuration) }
    }
}
