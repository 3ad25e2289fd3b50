import CacheLayer
import Testing

@Suite("getOrSet")
struct GetOrSetTests {
    static let caches = CacheUnderTest.all

    @Test(arguments: caches)
    func aMissCallsTheFactoryOnceAndAHitDoesNot(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        let calls = CallCounter()
        let first = try await cache.getOrSet("user:1", ttl: .seconds(60)) { calls.increment(); return "Ada" }
        let second = try await cache.getOrSet("user:1", ttl: .seconds(60)) { calls.increment(); return "Bob" }
        #expect(first == "Ada")
        #expect(second == "Ada")
        #expect(calls.value == 1)
        #expect(try await cache.get("user:1", as: String.self) == "Ada")
        #expect(cache.patterns.counters.factoryCalls == 1)
    }

    @Test(arguments: caches)
    func aThousandConcurrentCallersCauseOneFactoryCall(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        let calls = CallCounter()
        let clock = ContinuousClock()
        let start = clock.now
        let values = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<1000 {
                group.addTask {
                    try await cache.getOrSet("hot", ttl: .seconds(60)) {
                        calls.increment()
                        try await Task.sleep(for: .milliseconds(10))
                        return 42
                    }
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        let elapsed = clock.now - start
        print("single flight, \(backend.name): 1000 concurrent callers, \(calls.value) factory call(s), wall time \(elapsed) (factory takes 10 ms)")
        #expect(calls.value == 1)
        #expect(values.count == 1000)
        #expect(values.allSatisfy { $0 == 42 })
    }

    @Test(arguments: caches)
    func aFactoryErrorReachesEveryWaiterAndIsNotCached(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        let calls = CallCounter()
        let gate = Gate()
        let failures = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    do {
                        _ = try await cache.getOrSet("k", ttl: .seconds(60)) { () async throws -> Int in
                            calls.increment()
                            await gate.wait()
                            throw TestFailure()
                        }
                        return false
                    } catch {
                        return error is TestFailure
                    }
                }
            }
            _ = await eventually { calls.value == 1 }
            // The other callers first read the cache, then join the flight; over a network that takes longer.
            try? await Task.sleep(for: .milliseconds(backend.isRemote ? 1_000 : 50))
            gate.open()
            return await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
        }
        #expect(failures == 50)
        #expect(calls.value == 1)
        #expect(try await cache.get("k", as: Int.self) == nil)
        #expect(cache.patterns.counters.factoryErrors == 1)
        // The next call tries again.
        let value = try await cache.getOrSet("k", ttl: .seconds(60)) { 5 }
        #expect(value == 5)
    }

    @Test(arguments: caches)
    func cancellingOneWaiterDoesNotCancelTheFactoryForTheOthers(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        let gate = Gate()
        let calls = CallCounter()
        let factory: @Sendable () async throws -> String = {
            calls.increment()
            await gate.wait()
            try Task.checkCancellation()
            return "loaded"
        }
        let cancelled = Task { try await cache.getOrSet("k", ttl: .seconds(60), factory: factory) }
        let settled1 = await eventually { calls.value == 1 }
        #expect(settled1)
        let patient = Task { try await cache.getOrSet("k", ttl: .seconds(60), factory: factory) }
        try await Task.sleep(for: .milliseconds(20))
        cancelled.cancel()
        let error = await #expect(throws: CacheError.self) { try await cancelled.value }
        #expect(error?.code == .cancelled)
        gate.open()
        #expect(try await patient.value == "loaded")
        #expect(calls.value == 1)
    }

    @Test(arguments: caches)
    func aLoadWhoseWaitersAllLeftStillStoresItsValue(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        let gate = Gate()
        let calls = CallCounter()
        let waiter = Task {
            try await cache.getOrSet("k", ttl: .seconds(60)) { calls.increment(); await gate.wait(); return 9 }
        }
        let settled2 = await eventually { calls.value == 1 }
        #expect(settled2)
        waiter.cancel()
        _ = await waiter.result
        gate.open()
        let settled3 = try await eventually { try await cache.get("k", as: Int.self) == 9 }
        #expect(settled3)
    }

    @Test(arguments: caches)
    func waitersOfAnotherTypeGetATypeMismatch(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        let gate = Gate()
        let running = Task { try await cache.getOrSet("k", ttl: .seconds(60)) { await gate.wait(); return 1 } }
        let settled4 = await eventually { cache.patterns.flights.isRunning("k") }
        #expect(settled4)
        let error = await #expect(throws: CacheError.self) {
            try await cache.getOrSet("k", ttl: .seconds(60)) { "text" }
        }
        #expect(error?.code == .typeMismatch)
        gate.open()
        #expect(try await running.value == 1)
    }

    @Test(arguments: caches)
    func hardTimeoutBoundsTheWaitWhenThereIsNoStaleValue(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        let gate = Gate()
        let options = GetOrSetOptions(hardTimeout: .milliseconds(50))
        let error = await #expect(throws: CacheError.self) {
            try await cache.getOrSet("slow", ttl: .seconds(60), options: options) { await gate.wait(); return 1 }
        }
        #expect(error?.code == .timeout)
        #expect(cache.patterns.counters.timeouts == 1)
        // The factory went on and stores its value once it finishes.
        gate.open()
        let settled5 = try await eventually { try await cache.get("slow", as: Int.self) == 1 }
        #expect(settled5)
    }

    @Test(arguments: caches)
    func invalidOptionsAreRejected(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        for options in [GetOrSetOptions(refreshAhead: 1.5), GetOrSetOptions(gracePeriod: .zero), GetOrSetOptions(hardTimeout: .seconds(-1))] {
            let error = await #expect(throws: CacheError.self) {
                try await cache.getOrSet("k", ttl: .seconds(60), options: options) { 1 }
            }
            #expect(error?.code == .invalidConfiguration)
        }
        let error = await #expect(throws: CacheError.self) { try await cache.getOrSet("k", ttl: .zero) { 1 } }
        #expect(error?.code == .invalidTTL)
    }
}

@Suite("getOrSet fail-safe and early refresh")
struct GetOrSetResilienceTests {
    static let caches = CacheUnderTest.all
    static let failSafe = GetOrSetOptions(gracePeriod: .seconds(600))

    @Test(arguments: caches)
    func failSafeReturnsTheStaleValueWhenTheFactoryThrows(backend: CacheUnderTest) async throws {
        let clock = TestClock()
        let cache = try await backend.make(clock)
        let first = try await cache.getOrSet("price", ttl: .seconds(60), options: Self.failSafe) { 100 }
        #expect(first == 100)
        clock.advance(by: .seconds(61))
        let stale = try await cache.getOrSet("price", ttl: .seconds(60), options: Self.failSafe) { () async throws -> Int in
            throw TestFailure()
        }
        #expect(stale == 100)
        #expect(cache.patterns.counters.staleValuesServed == 1)
        #expect(cache.patterns.counters.factoryErrors == 1)
        // The next success replaces it.
        let fresh = try await cache.getOrSet("price", ttl: .seconds(60), options: Self.failSafe) { 120 }
        #expect(fresh == 120)
    }

    @Test(arguments: caches)
    func aFreshValueIsServedWithoutCallingTheFactory(backend: CacheUnderTest) async throws {
        let clock = TestClock()
        let cache = try await backend.make(clock)
        let calls = CallCounter()
        _ = try await cache.getOrSet("k", ttl: .seconds(60), options: Self.failSafe) { calls.increment(); return 1 }
        clock.advance(by: .seconds(59))
        let value = try await cache.getOrSet("k", ttl: .seconds(60), options: Self.failSafe) { calls.increment(); return 2 }
        #expect(value == 1)
        #expect(calls.value == 1)
    }

    @Test(arguments: caches)
    func failSafeReturnsTheStaleValueWhenTheFactoryExceedsTheSoftTimeout(backend: CacheUnderTest) async throws {
        let clock = TestClock()
        let cache = try await backend.make(clock)
        let options = GetOrSetOptions(gracePeriod: .seconds(600), softTimeout: .milliseconds(50))
        _ = try await cache.getOrSet("k", ttl: .seconds(60), options: options) { 1 }
        clock.advance(by: .seconds(61))
        let gate = Gate()
        let start = ContinuousClock.now
        let value = try await cache.getOrSet("k", ttl: .seconds(60), options: options) { await gate.wait(); return 2 }
        let waited = ContinuousClock.now - start
        #expect(value == 1)
        #expect(waited < .seconds(2))
        // The slow factory still completes and its value is stored for later readers.
        gate.open()
        let settled6 = try await eventually {
            try await cache.getOrSet("k", ttl: .seconds(60), options: options) { 3 } == 2
        }
        #expect(settled6)
    }

    @Test(arguments: caches)
    func withoutAStaleValueTheFactoryErrorIsThrown(backend: CacheUnderTest) async throws {
        let clock = TestClock()
        let cache = try await backend.make(clock)
        _ = try await cache.getOrSet("k", ttl: .seconds(60), options: Self.failSafe) { 1 }
        // Past the TTL and the grace period: nothing to fall back on.
        clock.advance(by: .seconds(60 + 601))
        await #expect(throws: TestFailure.self) {
            try await cache.getOrSet("k", ttl: .seconds(60), options: Self.failSafe) { () async throws -> Int in throw TestFailure() }
        }
        #expect(cache.patterns.counters.staleValuesServed == 0)
    }

    @Test(arguments: caches)
    func earlyRefreshReloadsInTheBackgroundWhileReadersGetTheCurrentValue(backend: CacheUnderTest) async throws {
        let clock = TestClock()
        let cache = try await backend.make(clock)
        let options = GetOrSetOptions(refreshAhead: 0.8)
        let calls = CallCounter()
        let gate = Gate()
        let factory: @Sendable () async throws -> Int = {
            let call = calls.increment()
            if call > 1 { await gate.wait() }
            return call
        }
        #expect(try await cache.getOrSet("k", ttl: .seconds(100), options: options, factory: factory) == 1)
        clock.advance(by: .seconds(79))
        #expect(try await cache.getOrSet("k", ttl: .seconds(100), options: options, factory: factory) == 1)
        #expect(calls.value == 1)
        clock.advance(by: .seconds(2))
        // Past 80 % of the TTL: readers get the current value at once while the factory (blocked) runs.
        for _ in 0..<10 {
            #expect(try await cache.getOrSet("k", ttl: .seconds(100), options: options, factory: factory) == 1)
        }
        let settled7 = await eventually { calls.value == 2 }
        #expect(settled7)
        #expect(cache.patterns.counters.backgroundRefreshes == 1)
        gate.open()
        let settled8 = try await eventually {
            try await cache.getOrSet("k", ttl: .seconds(100), options: options, factory: factory) == 2
        }
        #expect(settled8)
        #expect(calls.value == 2)
    }

    @Test(arguments: caches)
    func aFailedEarlyRefreshKeepsTheCurrentValue(backend: CacheUnderTest) async throws {
        let clock = TestClock()
        let cache = try await backend.make(clock)
        let options = GetOrSetOptions(refreshAhead: 0.5)
        _ = try await cache.getOrSet("k", ttl: .seconds(100), options: options) { 1 }
        clock.advance(by: .seconds(60))
        let value = try await cache.getOrSet("k", ttl: .seconds(100), options: options) { () async throws -> Int in throw TestFailure() }
        #expect(value == 1)
        let settled9 = await eventually { cache.patterns.counters.backgroundRefreshFailures == 1 }
        #expect(settled9)
        #expect(try await cache.getOrSet("k", ttl: .seconds(100), options: options) { 2 } == 1)
    }

    @Test(arguments: caches)
    func theCacheDefaultOptionsApplyWhenACallPassesNone(backend: CacheUnderTest) async throws {
        let clock = TestClock()
        let cache = try await backend.make(clock)
        cache.patterns.defaultOptions = Self.failSafe
        _ = try await cache.getOrSet("k", ttl: .seconds(60)) { 1 }
        clock.advance(by: .seconds(61))
        let value = try await cache.getOrSet("k", ttl: .seconds(60)) { () async throws -> Int in throw TestFailure() }
        #expect(value == 1)
        // Explicit options win over the default.
        clock.advance(by: .seconds(1))
        await #expect(throws: TestFailure.self) {
            try await cache.getOrSet("other", ttl: .seconds(60), options: .default) { () async throws -> Int in throw TestFailure() }
        }
    }
}
