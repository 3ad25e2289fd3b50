@testable import CacheLayer
import RedisClient
import RedisTestSupport
import Testing

/// A busy but healthy Redis (every pooled connection in use) is not an outage.
@Suite("Redis cache under pool exhaustion (real redis-server)")
struct CachePoolExhaustionTests {
    static func configuration(_ server: RedisServer, fallback: Bool) -> CacheConfiguration {
        var configuration = server.cacheConfiguration(fallback: fallback, timeout: .seconds(10))
        configuration.poolSize = 2
        configuration.minIdleConnections = 2
        configuration.maxIdleConnections = 2
        configuration.connectTimeout = .milliseconds(200)  // also the wait for a pooled connection
        configuration.maxRetries = 0
        return configuration
    }

    /// Runs 500 concurrent `get`s while the server sleeps for a second; returns the error codes (nil: success).
    static func getsWhileRedisIsBusy(_ cache: any Cache, _ server: RedisServer, pool: RedisConnectionPool) async throws -> [CacheError.Code?] {
        try await cache.set("k", to: "v", ttl: .seconds(60))
        // Both pooled connections must be up before the server sleeps: a connection still being made then would time
        // out in its handshake, and a wait for it is a `timeout` (Redis unreachable), not `busy`. On a loaded machine
        // the second idle connection can take a while.
        let ready = await eventually(timeout: .seconds(10)) { pool.statistics.idle + pool.statistics.leased == 2 && pool.statistics.connecting == 0 }
        #expect(ready, "the pool did not open its two connections: \(pool.statistics)")
        // Two seconds against 200 ms lease waits: on a loaded machine starting 500 tasks can take most of a second,
        // and a get that starts after the server wakes succeeds.
        async let blocked: Void = server.withRawConnection { _ = try await $0.send(["DEBUG", "SLEEP", "2"]) }
        try await Task.sleep(for: .milliseconds(100))
        let codes = await withTaskGroup(of: CacheError.Code?.self) { group in
            for _ in 0..<500 {
                group.addTask {
                    do {
                        _ = try await cache.get("k", as: String.self)
                        return nil
                    } catch let error as CacheError {
                        return error.code
                    } catch {
                        return .backendError
                    }
                }
            }
            return await group.reduce(into: [CacheError.Code?]()) { $0.append($1) }
        }
        try await blocked
        return codes
    }

    @Test("500 tasks on a pool of 2: lease timeouts are `busy`, not `unavailable`")
    func exhaustionIsBusy() async throws {
        try await withRedisServer { server in
            let cache = try await RedisCache.connect(configuration: Self.configuration(server, fallback: false), logger: quietLogger)
            let failures = try await Self.getsWhileRedisIsBusy(cache, server, pool: try #require(cache.pool)).compactMap { $0 }
            #expect(failures.count >= 400, "\(failures.count) of 500 failed")
            #expect(failures.allSatisfy { $0 == .busy }, "\(Set(failures.map(\.description)))")
            try await cache.close()
        }
    }

    @Test("500 tasks on a pool of 2 with fallback: the circuit breaker does not open")
    func exhaustionDoesNotOpenTheBreaker() async throws {
        try await withRedisServer { server in
            let cache = try #require(try await makeCache(Self.configuration(server, fallback: true), logger: quietLogger) as? FallbackCache)
            let codes = try await Self.getsWhileRedisIsBusy(cache, server, pool: try #require((cache.primary as? RedisCache)?.pool))
            #expect(codes.allSatisfy { $0 == nil || $0 == .busy }, "\(Set(codes.map { $0.map(\.description) ?? "success" }))")
            #expect(await cache.stats().outages == 0)
            #expect(cache.isBackendHealthy)
            try await cache.close()
        }
    }
}
