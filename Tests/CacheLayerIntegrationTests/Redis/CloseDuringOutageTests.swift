@testable import CacheLayer
import RedisClient
import RedisTestSupport
import Testing

/// `close()` and a failing `makeCache` during an outage return promptly instead of waiting out connect retries.
@Suite("Redis cache close during an outage (real redis-server)")
struct CloseDuringOutageTests {
    static func configuration(_ server: RedisServer) -> CacheConfiguration {
        var configuration = server.cacheConfiguration(timeout: .seconds(1))
        configuration.connectTimeout = .seconds(1)  // also the wait for a pooled connection
        configuration.maxRetries = 3
        return configuration
    }

    @Test("makeCache against a paused server fails within the connect timeout plus a second")
    func failingMakeCacheReturnsPromptly() async throws {
        try await withRedisServer { server in
            try server.pause()
            let start = ContinuousClock.now
            await #expect(throws: CacheError.self) {
                _ = try await makeCache(Self.configuration(server), logger: quietLogger)
            }
            let elapsed = ContinuousClock.now - start
            try server.resume()
            // One connect timeout for the ping, then close(); the retries (3 more connect timeouts) must not be waited out.
            #expect(elapsed < .milliseconds(2500), "makeCache took \(elapsed) to fail")
        }
    }

    @Test("close() while the pool retries connecting returns within a second")
    func closeDuringRetriesReturnsPromptly() async throws {
        try await withRedisServer { server in
            let cache = try await RedisCache.connect(configuration: Self.configuration(server), logger: quietLogger)
            try await cache.set("k", to: "v")
            try server.pause()
            // The pooled connection times out; the pool then tries to make new ones, each waiting for HELLO.
            await #expect(throws: CacheError.self) { _ = try await cache.get("k", as: String.self) }
            let pending = Task { try? await cache.get("k", as: String.self) }
            try await Task.sleep(for: .milliseconds(300))
            let start = ContinuousClock.now
            try await cache.close()
            let elapsed = ContinuousClock.now - start
            try server.resume()
            _ = await pending.value
            #expect(elapsed < .seconds(1), "close() took \(elapsed)")
        }
    }
}
