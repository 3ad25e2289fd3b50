@testable import CacheLayer
import RedisTestSupport
import Foundation
import Logging
import ServiceLifecycle
import Testing

/// Who runs a cache's background loops (the sweeper, the fallback probe, the Redis pool), and that none keeps an
/// abandoned cache alive.
@Suite("Background work")
struct BackgroundWorkTests {
    enum Backend: String, CaseIterable, Sendable {
        case memory
        case redisDown = "redis (down)"
        case fallbackDown = "fallback (Redis down)"
    }

    /// A cache whose background work is busy: the sweeper runs, or the pool retries, or the probe probes a Redis that
    /// stays down.
    static func makeBusyCache(_ backend: Backend) async throws -> any Cache & AnyObject {
        switch backend {
        case .memory:
            var configuration = CacheConfiguration.development
            configuration.sweepInterval = .milliseconds(10)
            return try MemoryCache(configuration: configuration)
        case .redisDown:
            let redis = try RedisCache(configuration: try await StoppedRedisServer.configuration.value, logger: quietLogger)
            _ = try? await redis.get("k", as: Int.self)
            #expect(redis.poolPlacement == .ownTask)
            return redis
        case .fallbackDown:
            let redis = try RedisCache(configuration: try await StoppedRedisServer.configuration.value, logger: quietLogger)
            let memory = try MemoryCache(configuration: .development)
            let cache = try FallbackCache(
                primary: redis, local: memory, configuration: FallbackConfiguration(failureThreshold: 1, probeInterval: .milliseconds(20)),
                logger: quietLogger, probe: { try await redis.ping() }
            )
            try await cache.set("k", to: 1)
            #expect(!cache.isBackendHealthy)
            #expect(cache.probePlacement == .ownTask)
            // Let the probe fail a few rounds, so it is in the middle of its loop.
            try await Task.sleep(for: .milliseconds(100))
            return cache
        }
    }

    @Test(arguments: Backend.allCases)
    func anAbandonedCacheIsFreedWhileItsBackgroundWorkRuns(backend: Backend) async throws {
        weak var abandoned: (any Cache & AnyObject)?
        do {
            let cache = try await Self.makeBusyCache(backend)
            abandoned = cache
        }
        // Nothing but its own background tasks refers to the cache now.
        let deadline = ContinuousClock.now + .seconds(10)
        while abandoned != nil, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        // A Bool, so a failure does not try to print the cache (reflecting its Mutex crashes).
        let freed = abandoned == nil
        #expect(freed, "the \(backend.rawValue) cache is still alive 10 seconds after its last reference was dropped")
    }

    @Test func aServiceGroupRunsTheSweeperAndClosesTheCacheOnGracefulShutdown() async throws {
        let clock = TestClock()
        var configuration = CacheConfiguration.development
        configuration.sweepInterval = .milliseconds(10)
        // No sweeper task of its own: only the service group can sweep.
        let cache = try MemoryCache(configuration: configuration, clock: TestCacheClock(clock: clock), shardCount: nil, startSweeper: false)
        try await cache.set("k", to: "v", ttl: .seconds(1))
        clock.advance(by: .seconds(2))
        #expect(!cache.isSweeperRunning)

        let group = ServiceGroup(services: [CacheService(cache: cache, metricsInterval: nil)], logger: quietLogger)
        let running = Task { try await group.run() }
        let settled1 = await eventually(timeout: .seconds(60)) { await cache.stats().expirations == 1 }
        #expect(settled1)
        #expect(await cache.stats().entryCount == 0)
        #expect(cache.isSweeperRunning)

        await group.triggerGracefulShutdown()
        try await running.value
        #expect(!cache.isSweeperRunning)
        let error = await #expect(throws: CacheError.self) { try await cache.get("k", as: String.self) }
        #expect(error?.code == .closed)
    }

    @Test func aSweeperOfItsOwnMovesIntoRunAndBackWhenRunIsCancelled() async throws {
        var configuration = CacheConfiguration.development
        configuration.sweepInterval = .milliseconds(10)
        let cache = try MemoryCache(configuration: configuration)
        #expect(cache.isSweeperRunning)
        let running = Task { try await cache.run() }
        try await Task.sleep(for: .milliseconds(50))
        #expect(cache.isSweeperRunning)
        running.cancel()
        try await running.value
        // Still open, so the cache sweeps on its own again.
        #expect(cache.isSweeperRunning)
        try await cache.close()
        #expect(!cache.isSweeperRunning)
    }

    @Test func aRedisCacheConnectedBeforeItsServiceGroupRunsHasItsPoolRunByTheGroup() async throws {
        let server = try await RedisServer.shared()
        let cache = try await RedisCache.connect(configuration: server.cacheConfiguration(namespace: "background-\(UUID().uuidString)"), logger: quietLogger)
        // connect checked Redis on a connection of its own and left the pool to whoever runs the cache.
        #expect(cache.poolPlacement == nil)

        let group = ServiceGroup(services: [CacheService(cache: cache, metricsInterval: nil)], logger: quietLogger)
        let running = Task { try await group.run() }
        let settled2 = await eventually { cache.poolPlacement != nil }
        #expect(settled2)
        #expect(cache.poolPlacement == .service)
        try await cache.set("k", to: 7, ttl: .seconds(60))
        #expect(try await cache.get("k", as: Int.self) == 7)

        await group.triggerGracefulShutdown()
        try await running.value
        let error = await #expect(throws: CacheError.self) { try await cache.get("k", as: Int.self) }
        #expect(error?.code == .closed)
    }

    @Test func aFallbackCacheUnderAServiceGroupRunsBothSidesAndItsProbeInsideIt() async throws {
        let redis = try RedisCache(configuration: try await StoppedRedisServer.configuration.value, logger: quietLogger)
        let memory = try MemoryCache(configuration: .development)
        let cache = try FallbackCache(
            primary: redis, local: memory, configuration: FallbackConfiguration(failureThreshold: 1, probeInterval: .milliseconds(20)),
            logger: quietLogger, probe: { try await redis.ping() }
        )
        let group = ServiceGroup(services: [CacheService(cache: cache, metricsInterval: nil)], logger: quietLogger)
        let running = Task { try await group.run() }
        // The group runs the memory side's sweeper and the Redis pool.
        let settled3 = await eventually { memory.isSweeperRunning && redis.poolPlacement == .service }
        #expect(settled3)
        try await cache.set("k", to: 1)
        #expect(!cache.isBackendHealthy)
        #expect(cache.probePlacement == .service)
        #expect(try await cache.get("k", as: Int.self) == 1)

        await group.triggerGracefulShutdown()
        try await running.value
        let error = await #expect(throws: CacheError.self) { try await cache.get("k", as: Int.self) }
        #expect(error?.code == .closed)
        #expect(!memory.isSweeperRunning)
    }

    @Test func aProbeCutShortByTheEndOfRunGoesOnInATaskOfTheCachesOwn() async throws {
        let redis = try RedisCache(configuration: try await StoppedRedisServer.configuration.value, logger: quietLogger)
        let memory = try MemoryCache(configuration: .development)
        let cache = try FallbackCache(
            primary: redis, local: memory, configuration: FallbackConfiguration(failureThreshold: 1, probeInterval: .milliseconds(20)),
            logger: quietLogger, probe: { try await redis.ping() }
        )
        let running = Task { try await cache.run() }
        let settled4 = await eventually { redis.poolPlacement == .service }
        #expect(settled4)
        try await cache.set("k", to: 1)
        #expect(cache.probePlacement == .service)
        running.cancel()
        try await running.value
        // Redis is still down and the cache open: the probe must go on, or the breaker would stay open for ever.
        #expect(cache.probePlacement == .ownTask)
        #expect(!cache.isBackendHealthy)
        try await cache.close()
    }
}
