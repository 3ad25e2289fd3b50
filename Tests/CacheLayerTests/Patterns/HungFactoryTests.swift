@testable import CacheLayer
import Testing

/// A factory that never returns must not hold its key for ever: once the flight's bound has passed, the next caller
/// starts a new flight.
@Suite("getOrSet with a hung factory")
struct HungFactoryTests {
    /// A factory that ignores cancellation and returns only after `duration`: hung, as far as the test can tell.
    static func hung(for duration: Duration) -> @Sendable () async throws -> String {
        {
            let end = ContinuousClock.now + duration
            while ContinuousClock.now < end { try? await Task.sleep(for: .milliseconds(20)) }
            return "late"
        }
    }

    /// `body`'s result, or `nil` when it takes longer than `limit` (it is then cancelled).
    static func within<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }

    @Test("after the hard timeout a new caller starts a new flight instead of joining the hung one")
    func newCallerAfterHardTimeoutStartsANewFlight() async throws {
        let cache = try makeTestMemoryCache()
        let options = GetOrSetOptions(hardTimeout: .milliseconds(200))
        await expectCacheError(.timeout) {
            try await cache.getOrSet("k", ttl: .seconds(60), options: options, factory: Self.hung(for: .seconds(120)))
        }
        // A generous timeout for the new flight, so a loaded machine cannot make it time out too.
        let value = try await Self.within(.seconds(60)) {
            try await cache.getOrSet("k", ttl: .seconds(60), options: GetOrSetOptions(hardTimeout: .seconds(30))) { "fresh" }
        }
        #expect(value == "fresh", "the second caller joined the hung flight")
    }

    @Test("without a hard timeout, the configuration's flightTimeout bounds the flight")
    func configuredFlightTimeoutBoundsTheFlight() async throws {
        var configuration = CacheConfiguration.default
        configuration.name = "hung"
        configuration.flightTimeout = .seconds(2)
        let cache = try MemoryCache(configuration: configuration, clock: ManualClock(), shardCount: 1, startSweeper: false)
        #expect(cache.patterns.flightTimeout == .seconds(2))
        // A timeout (not the factory's late value) proves the caller stopped waiting at the bound.
        await expectCacheError(.timeout) {
            try await cache.getOrSet("k", ttl: .seconds(60), factory: Self.hung(for: .seconds(120)))
        }
        let value = try await Self.within(.seconds(60)) {
            try await cache.getOrSet("k", ttl: .seconds(60)) { "fresh" }
        }
        #expect(value == "fresh")
        #expect(cache.patterns.counters.factoryCalls == 2)
    }

    @Test("the default flight bound is 30 s, and a non-positive flightTimeout is refused")
    func defaultFlightTimeout() throws {
        #expect(CacheConfiguration.default.flightTimeout == .seconds(30))
        var configuration = CacheConfiguration.default
        configuration.flightTimeout = .zero
        #expect(throws: CacheError.self) { try configuration.validate() }
    }
}
