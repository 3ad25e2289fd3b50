@testable import CacheLayer
import CommonSupport
import Logging
import Testing

@Suite("FallbackCache decisions")
struct FallbackCacheTests {
    /// A fallback cache over a switchable backend, probing every 10 ms; writing back by default, which most of these
    /// tests check (replayed values can be seen in the backend).
    static func make(threshold: Int = 2, recovery: FallbackRecovery = .writeBack) throws -> (FallbackCache, SwitchableBackend) {
        let backend = SwitchableBackend()
        var configuration = CacheConfiguration.development
        configuration.name = "fallback-test"
        let local = try MemoryCache(configuration: configuration)
        let cache = try FallbackCache(
            primary: backend, local: local,
            configuration: FallbackConfiguration(failureThreshold: threshold, probeInterval: .milliseconds(10), recovery: recovery),
            logger: Logger(label: "test.fallback"),
            probe: { try await backend.ping() }
        )
        return (cache, backend)
    }

    /// Waits until `condition` holds, failing the test after 30 seconds (the suite may run on a loaded machine).
    static func eventually(_ what: Comment, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("timed out waiting until \(what)")
    }

    @Test func aFailSafeValueWrittenDuringAnOutageIsReplayedAsAValuePlainReadsOfTheBackendSee() async throws {
        let (cache, backend) = try Self.make(threshold: 1)
        backend.isUp = false
        let price = try await cache.getOrSet("price", ttl: .seconds(60), options: .failSafe(gracePeriod: .seconds(600))) { 100 }
        #expect(price == 100)
        #expect(cache.pendingKeyCount == 1)
        backend.isUp = true
        try await Self.eventually("the outage's write is replayed") { cache.pendingKeyCount == 0 && cache.isBackendHealthy }
        // Replayed with its times (framed), not as the JSON of a wrapper.
        #expect(backend.storedBytes("price")?.first == 0)
        #expect(try await backend.get("price", as: Int.self) == 100)
        #expect(try await cache.get("price", as: Int.self) == 100)
        #expect(try await cache.getOrSet("price", ttl: .seconds(60), options: .failSafe(gracePeriod: .seconds(600))) { 200 } == 100)
        try await cache.close()
    }

    @Test func readsAndWritesSucceedFromMemoryWhileTheBackendIsDown() async throws {
        let (cache, backend) = try Self.make()
        try await cache.set("a", to: "one")
        backend.isUp = false
        #expect(try await cache.get("a", as: String.self) == "one")
        try await cache.set("b", to: "two")
        #expect(try await cache.get("b", as: String.self) == "two")
        #expect(try await cache.exists("b"))
        try await cache.delete("a")
        #expect(try await cache.get("a", as: String.self) == nil)
        let stats = await cache.stats()
        #expect(stats.fallbacks >= 4)
        try await cache.close()
    }

    @Test func aValueWrittenDuringAnOutageIsNeverHiddenByTheBackendsOlderCopy() async throws {
        let (cache, backend) = try Self.make()
        try await cache.set("user:1", to: "v1")
        #expect(backend.stored("user:1") == "\"v1\"")
        backend.isUp = false
        try await cache.set("user:1", to: "v2")
        backend.isUp = true
        // Before and after the replay, every read sees v2, never v1.
        #expect(try await cache.get("user:1", as: String.self) == "v2")
        try await Self.eventually("the write is replayed") { backend.stored("user:1") == "\"v2\"" && cache.pendingKeyCount == 0 }
        #expect(try await cache.get("user:1", as: String.self) == "v2")
        try await cache.close()
    }

    @Test func bytesWrittenDuringAnOutageAreReplayedAsBytes() async throws {
        let (cache, backend) = try Self.make()
        backend.isUp = false
        let bytes: [UInt8] = [0, 255, 7]
        try await cache.setBytes("blob", to: bytes, ttl: .seconds(60))
        #expect(try await cache.getBytes("blob") == bytes)
        backend.isUp = true
        // Replayed with setBytes, not as an encoded array.
        try await Self.eventually("the bytes are replayed") { backend.storedBytes("blob") == bytes && cache.pendingKeyCount == 0 }
        #expect(try await cache.getBytes("blob") == bytes)
        try await cache.close()
    }

    @Test func setIfAbsentRefusesWhileTheBackendIsDown() async throws {
        let (cache, backend) = try Self.make()
        #expect(try await cache.setIfAbsent("lock", to: 1, ttl: nil))
        #expect(try await cache.setIfAbsent("lock", to: 2, ttl: nil) == false)
        backend.isUp = false
        // Memory cannot tell whether another instance holds the key: no answer rather than a wrong one.
        let error = await #expect(throws: CacheError.self) { try await cache.setIfAbsent("other", to: 1, ttl: nil) }
        #expect(error?.code == .unavailable)
        #expect(try await cache.get("other", as: Int.self) == nil)
        try await cache.close()
    }

    @Test func aDeleteDuringAnOutageIsReplayed() async throws {
        let (cache, backend) = try Self.make()
        try await cache.set("user:1", to: "v1")
        backend.isUp = false
        try await cache.delete("user:1")
        backend.isUp = true
        #expect(try await cache.get("user:1", as: String.self) == nil)
        try await Self.eventually("the delete is replayed") { backend.stored("user:1") == nil && cache.pendingKeyCount == 0 }
        #expect(try await cache.get("user:1", as: String.self) == nil)
        try await cache.close()
    }

    @Test func theBreakerStopsCallingTheBackendAndRecoversByProbing() async throws {
        let (cache, backend) = try Self.make(threshold: 2)
        let events = cache.healthEvents()
        backend.isUp = false
        _ = try await cache.get("x", as: String.self)
        _ = try await cache.get("x", as: String.self)
        #expect(!cache.isBackendHealthy)
        let callsWhenOpen = backend.calls
        for _ in 0..<100 { _ = try await cache.get("x", as: String.self) }
        // Only the background probe may have reached the backend, not the 100 reads.
        #expect(backend.calls - callsWhenOpen < 50)

        try await cache.set("written-while-down", to: 7)
        backend.isUp = true
        var iterator = events.makeAsyncIterator()
        #expect(await iterator.next() == .backendLost(reason: String(describing: CacheError.unavailable("backend switched off"))))
        #expect(await iterator.next() == .backendRecovered(reconciledKeys: 1))
        #expect(cache.isBackendHealthy)
        #expect(backend.stored("written-while-down") == "7")
        let stats = await cache.stats()
        #expect(stats.outages == 1)
        #expect(stats.recoveries == 1)
        try await cache.close()
    }

    @Test func aClearDuringAnOutageIsReplayedBeforeLaterWrites() async throws {
        let (cache, backend) = try Self.make(threshold: 1)
        try await cache.set("old", to: 1)
        backend.isUp = false
        try await cache.clear()
        try await cache.set("new", to: 2)
        backend.isUp = true
        try await Self.eventually("the clear is replayed") { cache.isBackendHealthy && cache.pendingKeyCount == 0 }
        #expect(backend.stored("old") == nil)
        #expect(backend.stored("new") == "2")
        #expect(try await cache.get("old", as: Int.self) == nil)
        #expect(try await cache.get("new", as: Int.self) == 2)
        try await cache.close()
    }

    @Test func aClearIssuedWhileAReplayedWriteIsInFlightIsNotUndoneByIt() async throws {
        let (cache, backend) = try Self.make(threshold: 1, recovery: .writeBack)
        try await cache.set("k", to: 1)
        backend.isUp = false
        try await cache.set("k", to: 2)
        #expect(cache.pendingKeyCount == 1)
        // The first replayed SET of k is held while k is written again (so k stays pending and the breaker closes);
        // the second is held while the cache is cleared, through the backend since the breaker is closed by then.
        let replays = CallCounter()
        let firstHeld = Gate(), firstGo = Gate(), secondHeld = Gate(), secondGo = Gate()
        backend.setOnSet { key in
            guard key == "k" else { return }
            switch replays.increment() {
            case 1: firstHeld.open(); await firstGo.wait()
            case 2: secondHeld.open(); await secondGo.wait()
            default: break
            }
        }
        backend.isUp = true
        await firstHeld.wait()
        try await cache.set("k", to: 3)
        firstGo.open()
        await secondHeld.wait()
        #expect(cache.isBackendHealthy)
        try await cache.clear()
        secondGo.open()
        try await Self.eventually("the replay is done") { cache.pendingKeyCount == 0 && cache.isBackendHealthy }
        #expect(try await cache.get("k", as: Int.self) == nil, "the cleared key came back")
        #expect(backend.stored("k") == nil)
        try await cache.close()
    }

    @Test func oneProbeRunsAtATimeAndCloseStopsIt() async throws {
        let backend = SwitchableBackend()
        let inFlight = Locked((now: 0, most: 0, calls: 0))
        let local = try MemoryCache(configuration: .development)
        let cache = try FallbackCache(
            primary: backend, local: local,
            configuration: FallbackConfiguration(failureThreshold: 1, probeInterval: .milliseconds(1)),
            logger: Logger(label: "test.fallback"),
            probe: {
                inFlight.withLock { $0.now += 1; $0.most = max($0.most, $0.now); $0.calls += 1 }
                defer { inFlight.withLock { $0.now -= 1 } }
                try await Task.sleep(for: .milliseconds(2))
                try await backend.ping()
            }
        )
        backend.isUp = false
        // Many failing calls at once, each of which may try to start the probe.
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<200 { group.addTask { _ = try? await cache.get("k\(i % 7)", as: Int.self) } }
        }
        try await Self.eventually("the probe runs") { inFlight.withLock { $0.calls } >= 5 }
        #expect(cache.isProbing)
        try await cache.close()
        #expect(!cache.isProbing)
        let callsAtClose = inFlight.withLock { $0.calls }
        try await Task.sleep(for: .milliseconds(100))
        #expect(inFlight.withLock { $0.calls } == callsAtClose, "a probe went on after close()")
        #expect(inFlight.withLock { $0.most } == 1)
    }

    @Test func theProbeStartsAgainAfterEveryRecovery() async throws {
        let (cache, backend) = try Self.make(threshold: 1)
        for _ in 0..<20 {
            backend.isUp = false
            _ = try await cache.get("k", as: Int.self)
            #expect(cache.isProbing)
            backend.isUp = true
            try await Self.eventually("recovered") { cache.isBackendHealthy && !cache.isProbing }
        }
        try await cache.close()
    }

    @Test func aReadInFlightDoesNotPutBackTheValueItReadOverANewerWrite() async throws {
        let (cache, backend) = try Self.make(threshold: 1, recovery: .invalidate)
        try await cache.set("k", to: 1)
        let held = Gate(), go = Gate()
        backend.setOnGet { key in
            guard key == "k" else { return }
            held.open()
            await go.wait()
        }
        // The read has read 1 when the write of 2 lands (in the backend and memory); then it returns 1.
        let read = Task { try await cache.get("k", as: Int.self) }
        await held.wait()
        backend.setOnGet(nil)
        try await cache.set("k", to: 2)
        go.open()
        #expect(try await read.value == 1)
        backend.isUp = false
        #expect(try await cache.get("k", as: Int.self) == 2, "the read in flight put back the older value")
        try await cache.close()
    }

    @Test func aBatchReadDropsTheCopiesItCannotRefresh() async throws {
        let backend = SwitchableBackend()
        func instance() throws -> FallbackCache {
            try FallbackCache(
                primary: backend, local: MemoryCache(configuration: .development),
                configuration: FallbackConfiguration(failureThreshold: 1, probeInterval: .milliseconds(10)),
                logger: Logger(label: "test.fallback"), probe: { try await backend.ping() }
            )
        }
        let a = try instance(), b = try instance()
        try await a.set("k", to: 1)
        try await b.set("k", to: 2)
        #expect(try await a.getMany(["k"], as: Int.self) == ["k": 2])
        backend.isUp = false
        // A returned 2: during the outage it must not serve its own older 1 (a miss is fine).
        let duringOutage = try await a.get("k", as: Int.self)
        #expect(duringOutage == nil || duringOutage == 2)
        try await a.close()
        try await b.close()
    }

    /// Invalidating, a key still in the journal after the breaker closed is written to the backend at once, so keys
    /// written steadily after an outage reach other instances instead of staying in memory while the writes go on.
    @Test func invalidatingAWriteAfterTheBreakerClosedReachesTheBackendThoughTheKeyIsJournaled() async throws {
        let backend = SwitchableBackend()
        let cache = try FallbackCache(
            primary: backend, local: MemoryCache(configuration: .development),
            configuration: FallbackConfiguration(failureThreshold: 1, probeInterval: .seconds(1), recovery: .invalidate),
            logger: Logger(label: "test.fallback"), probe: { try await backend.ping() }
        )
        backend.isUp = false
        try await cache.set("k", to: 1)
        // The first pass's UNLINK of k is held while k is written again (memory only, the breaker still open), so k
        // stays journaled when the breaker closes.
        let held = Gate(), go = Gate()
        backend.setOnDelete { key in
            guard key == "k" else { return }
            held.open()
            await go.wait()
        }
        backend.isUp = true
        await held.wait()
        backend.setOnDelete(nil)
        try await cache.set("k", to: 2)
        #expect(backend.stored("k") == nil)
        go.open()
        try await Self.eventually("the breaker closes") { cache.isBackendHealthy }
        #expect(cache.pendingKeyCount == 1)
        try await cache.set("k", to: 3)
        #expect(backend.stored("k") == "3", "the write stayed in memory")
        try await Self.eventually("the journal empties") { cache.pendingKeyCount == 0 }
        let value = try await cache.get("k", as: Int.self)
        #expect(value == nil || value == 3)
        try await cache.close()
    }

    @Test func closedCacheRefusesCallsAndEndsHealthStreams() async throws {
        let (cache, _) = try Self.make()
        let events = cache.healthEvents()
        try await cache.close()
        try await cache.close()
        await #expect(throws: CacheError.closed()) { try await cache.get("a", as: String.self) }
        var iterator = events.makeAsyncIterator()
        #expect(await iterator.next() == nil)
    }

    @Test func invalidFallbackConfigurationIsRejected() throws {
        let backend = SwitchableBackend()
        let local = try MemoryCache(configuration: .development)
        #expect(throws: CacheError.self) {
            try FallbackCache(primary: backend, local: local, configuration: FallbackConfiguration(failureThreshold: 0), logger: Logger(label: "t"), probe: {})
        }
        #expect(throws: CacheError.self) {
            try FallbackCache(primary: backend, local: local, configuration: FallbackConfiguration(maxPendingKeys: 0), logger: Logger(label: "t"), probe: {})
        }
        #expect(throws: CacheError.self) {
            try FallbackCache(primary: backend, local: local, configuration: FallbackConfiguration(maxOutageAge: .zero), logger: Logger(label: "t"), probe: {})
        }
        #expect(throws: CacheError.self) {
            try FallbackCache(primary: backend, local: local, configuration: FallbackConfiguration(closeTimeout: .seconds(-1)), logger: Logger(label: "t"), probe: {})
        }
    }

    @Test func circuitBreakerOpensAtTheThresholdAndClosesOnRecovery() {
        var breaker = CircuitBreaker(failureThreshold: 3)
        #expect(breaker.recordFailure(now: .now) == .none)
        breaker.recordSuccess()
        #expect(breaker.recordFailure(now: .now) == .none)
        #expect(breaker.recordFailure(now: .now) == .none)
        #expect(breaker.recordFailure(now: .now) == .opened)
        #expect(breaker.isOpen)
        #expect(breaker.recordFailure(now: .now) == .none)
        #expect(breaker.recordRecovery() == .closed)
        #expect(breaker.allowsCalls)
    }
}
