import CommonSupport
@testable import CacheLayer
import RedisClient
import RedisTestSupport
import Synchronization
import Testing

/// Real faults of a real redis-server (SIGKILL, SIGSTOP, restarts) while 100 tasks read and write.
@Suite("Redis faults")
struct RedisFaultTests {
    /// Short timeouts so outages are noticed quickly: 300 ms for a reply. Connecting (which also bounds the wait for
    /// a pooled connection) gets 2 s, so set-up does not time out on a machine loaded by parallel tests.
    static let timeout = Duration.milliseconds(300)
    static let connectTimeout = Duration.seconds(2)
    /// What a call may take beyond its configured limits (waiting for a connection, then for the reply) on a
    /// loaded machine.
    static let slack = Duration.seconds(1)
    static var callBound: Duration { timeout + connectTimeout + slack }

    static func configuration(_ server: RedisServer, fallback: Bool = false) -> CacheConfiguration {
        var configuration = server.cacheConfiguration(fallback: fallback, timeout: timeout)
        configuration.connectTimeout = connectTimeout
        return configuration
    }

    static func fallbackCache(_ server: RedisServer, recovery: FallbackRecovery = .invalidate) async throws -> FallbackCache {
        var configuration = Self.configuration(server, fallback: true)
        configuration.fallbackRecovery = recovery
        let cache = try await makeCache(configuration, logger: quietLogger)
        return try #require(cache as? FallbackCache)
    }

    /// A cache without fallback reading the same namespace, to look at what Redis holds.
    static func directCache(_ server: RedisServer) async throws -> RedisCache {
        try await RedisCache.connect(configuration: server.cacheConfiguration(), logger: quietLogger)
    }

    // MARK: SIGKILL

    @Test func withFallbackNoCallFailsWhenRedisIsKilledMidWorkload() async throws {
        let server = try await RedisServer.start()
        let cache = try await Self.fallbackCache(server)
        let events = cache.healthEvents()
        let report = try await MixedWorkload.run(on: cache) { progress in
            try await progress.waitForCalls(200)
            await server.kill()
            try await progress.waitForCalls(500)
        }
        #expect(report.failures.isEmpty, "\(report.failures.prefix(3))")
        #expect(report.slowest < Self.callBound)
                #expect(!cache.isBackendHealthy)
        var iterator = events.makeAsyncIterator()
        guard case .backendLost = await iterator.next() else { Issue.record("expected a backendLost event"); return }
        #expect(await cache.stats().outages == 1)
        try await cache.close()
    }

    @Test func withoutFallbackEveryCallFailsFastWithUnavailableWhenRedisIsKilled() async throws {
        let server = try await RedisServer.start()
        let cache = try await RedisCache.connect(configuration: Self.configuration(server), logger: quietLogger)
        let killed = Locked<ContinuousClock.Instant?>(nil)
        let report = try await MixedWorkload.run(on: cache) { progress in
            try await progress.waitForCalls(200)
            await server.kill()
            killed.withLock { $0 = .now }
            try await progress.waitForCalls(300)
        }
        let killedAt = try #require(killed.withLock { $0 })
        let afterKill = report.records.filter { $0.started > killedAt }
        #expect(afterKill.count > 100)
        #expect(afterKill.allSatisfy { $0.code == .unavailable }, "\(Set(afterKill.map { "\($0.code.map(String.init(describing:)) ?? "success")" }))")
        // Calls in flight when Redis died may have failed too (or timed out on a loaded machine).
        #expect(report.failures.allSatisfy { $0 == .unavailable || $0 == .timeout })
        #expect(report.slowest < Self.callBound)
        try await cache.close()
    }

    // MARK: SIGSTOP

    @Test func withFallbackEveryCallReturnsInTimeFromMemoryWhileRedisIsPaused() async throws {
        try await withRedisServer { server in
            let cache = try await Self.fallbackCache(server)
            let report = try await MixedWorkload.run(on: cache) { progress in
                try await progress.waitForCalls(200)
                try server.pause()
                try await Task.sleep(for: .seconds(1))
                try await progress.waitForCalls(200)
                try server.resume()
                try await Task.sleep(for: .milliseconds(300))
            }
            #expect(report.failures.isEmpty, "\(report.failures.prefix(3))")
            #expect(report.slowest < Self.callBound, "slowest call: \(report.slowest)")
            #expect(await cache.stats().fallbacks > 0)
            // Recovered by itself, and Redis holds what memory holds: the writes made during the pause were replayed.
            try await FallbackCacheTests.eventually("Redis is used again") { cache.isBackendHealthy && cache.pendingKeyCount == 0 }
            let direct = try await Self.directCache(server)
            let keys = MixedWorkload.keys
            #expect(try await direct.getMany(keys, as: Int.self) == cache.getMany(keys, as: Int.self))
            try await direct.close()
            try await cache.close()
        }
    }

    @Test func withoutFallbackEveryCallEndsWithinItsTimeoutWhileRedisIsPaused() async throws {
        try await withRedisServer { server in
            let cache = try await RedisCache.connect(configuration: Self.configuration(server), logger: quietLogger)
            let paused = Locked<ContinuousClock.Instant?>(nil)
            let report = try await MixedWorkload.run(on: cache) { progress in
                try await progress.waitForCalls(200)
                try server.pause()
                paused.withLock { $0 = .now }
                try await Task.sleep(for: .seconds(1))
                try await progress.waitForCalls(200)
            }
            try server.resume()
            let pausedAt = try #require(paused.withLock { $0 })
            #expect(report.slowest < Self.callBound, "slowest call: \(report.slowest)")
            let duringPause = report.records.filter { $0.started > pausedAt + .milliseconds(50) }
            #expect(!duringPause.isEmpty)
            // Callers queued behind the stuck connections see a busy pool (`busy`); the stuck commands time out.
            #expect(duringPause.allSatisfy { $0.code == .timeout || $0.code == .unavailable || $0.code == .busy })
            // Recovers without user action.
            try await FallbackCacheTests.eventually("Redis answers again") { (try? await cache.exists("k")) != nil }
            try await cache.set("k", to: 1, ttl: .seconds(60))
            #expect(try await cache.get("k", as: Int.self) == 1)
            try await cache.close()
        }
    }

    // MARK: Restarts

    /// Redis comes back with its data (append-only file): the value written during the outage wins, the delete
    /// made during the outage holds, before and after the replay. Written back, the value is in Redis afterwards;
    /// invalidated, it is a miss (never the older value).
    @Test(arguments: FallbackRecovery.allCases)
    func afterARestartWithOldDataReadsNeverSeeTheValueOverwrittenDuringTheOutage(recovery: FallbackRecovery) async throws {
        try await withRedisServer(.init(extraArguments: ["--appendonly", "yes", "--appendfsync", "always"])) { server in
            let cache = try await Self.fallbackCache(server, recovery: recovery)
            try await cache.set("user:1", to: "v1", ttl: .seconds(600))
            try await cache.set("session:1", to: "s1", ttl: .seconds(600))
            let expected: [String: String] = recovery == .writeBack ? ["user:1": "v2"] : [:]
            let stale = CallCounter()
            let report = try await MixedWorkload.run(on: cache) { _ in
                await server.kill()
                try await cache.set("user:1", to: "v2", ttl: .seconds(600))
                try await cache.delete("session:1")
                let reader = Task {
                    while !Task.isCancelled {
                        let user = try await cache.get("user:1", as: String.self)
                        if user != "v2" && (recovery == .writeBack || user != nil) { stale.increment() }
                        if try await cache.get("session:1", as: String.self) != nil { stale.increment() }
                        try await Task.sleep(for: .milliseconds(1))
                    }
                }
                try await Task.sleep(for: .milliseconds(200))
                try await server.restart(kill: true)
                // Recovers under load: the breaker closes and the outage's writes reach Redis while 100 tasks go on.
                let direct = try await Self.directCache(server)
                try await FallbackCacheTests.eventually("the outage's writes are replayed") {
                    guard cache.isBackendHealthy else { return false }
                    let values = try await direct.getMany(["user:1", "session:1"], as: String.self)
                    return values == expected
                }
                try await direct.close()
                try await Task.sleep(for: .milliseconds(100))
                reader.cancel()
                _ = await reader.result
            }
            try await FallbackCacheTests.eventually("nothing is pending") { cache.pendingKeyCount == 0 }
            #expect(report.failures.isEmpty, "\(report.failures.prefix(3))")
            #expect(stale.value == 0)
            #expect(try await cache.get("user:1", as: String.self) == expected["user:1"])
            let direct = try await Self.directCache(server)
            #expect(try await direct.get("user:1", as: String.self) == expected["user:1"])
            #expect(try await direct.get("session:1", as: String.self) == nil)
            try await direct.close()
            try await cache.close()
        }
    }

    @Test func afterARestartWithoutDataReadsMissAndAreRefilled() async throws {
        try await withRedisServer { server in
            let cache = try await RedisCache.connect(configuration: Self.configuration(server), logger: quietLogger)
            try await cache.set("user:1", to: "Ada", ttl: .seconds(600))
            let restarted = Locked<ContinuousClock.Instant?>(nil)
            let report = try await MixedWorkload.run(on: cache) { progress in
                try await progress.waitForCalls(200)
                try await server.restart(kill: true)
                restarted.withLock { $0 = .now }
                try await Task.sleep(for: .seconds(1))
                try await progress.waitForCalls(300)
            }
            let restartedAt = try #require(restarted.withLock { $0 })
            // Calls during the restart may fail (unavailable, or a timeout while connecting on a loaded machine); once
            // Redis is back they all succeed.
            #expect(report.failures.allSatisfy { $0 == .unavailable || $0 == .timeout }, "\(Set(report.failures.map(\.description)))")
            #expect(report.records.filter { $0.started > restartedAt + .seconds(1) }.allSatisfy { $0.code == nil })
            #expect(try await cache.get("user:1", as: String.self) == nil)
            let calls = CallCounter()
            #expect(try await cache.getOrSet("user:1", ttl: .seconds(600)) { calls.increment(); return "Ada" } == "Ada")
            #expect(try await cache.get("user:1", as: String.self) == "Ada")
            #expect(calls.value == 1)
            try await cache.close()
        }
    }

    @Test func withFallbackARestartWithoutDataCausesNoFailures() async throws {
        try await withRedisServer { server in
            let cache = try await Self.fallbackCache(server)
            try await cache.set("user:1", to: "Ada", ttl: .seconds(600))
            let report = try await MixedWorkload.run(on: cache) { progress in
                try await progress.waitForCalls(200)
                try await server.restart(kill: true)
                try await progress.waitForCalls(300)
            }
            #expect(report.failures.isEmpty, "\(report.failures.prefix(3))")
            try await FallbackCacheTests.eventually("Redis is used again") { cache.isBackendHealthy && cache.pendingKeyCount == 0 }
            // Redis lost user:1; a read misses (or finds memory's copy if the outage was noticed) and never errors.
            let value = try await cache.get("user:1", as: String.self)
            #expect(value == nil || value == "Ada")
            try await cache.close()
        }
    }
}

/// 100 tasks reading and writing 50 keys (half gets, half sets, a short pause between calls so memory-speed calls do
/// not monopolise the cooperative threads) while a fault is injected.
enum MixedWorkload {
    static let keys = (0..<50).map { "w\($0)" }

    struct Record: Sendable {
        var started: ContinuousClock.Instant
        var duration: Duration
        /// `nil` for a successful call.
        var code: CacheError.Code?
    }

    struct Report: Sendable {
        var records: [Record] = []
        var calls: Int { records.count }
        var failures: [CacheError.Code] { records.compactMap(\.code) }
        var slowest: Duration { records.map(\.duration).max() ?? .zero }
    }

    /// Counts finished calls, so a fault test can wait for enough calls in each phase however loaded the machine is.
    final class Progress: Sendable {
        private let calls = Atomic<Int>(0)

        func record() { calls.add(1, ordering: .relaxed) }

        /// Waits until `count` more calls have finished (at most 20 s).
        func waitForCalls(_ count: Int) async throws {
            let target = calls.load(ordering: .relaxed) + count
            let deadline = ContinuousClock.now + .seconds(20)
            while calls.load(ordering: .relaxed) < target, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
        }
    }

    /// Runs the workload around `fault`, which injects the fault and returns when the workload should stop.
    static func run(on cache: any Cache, tasks: Int = 100, during fault: @Sendable (Progress) async throws -> Void) async throws -> Report {
        try await cache.setMany(Dictionary(uniqueKeysWithValues: keys.enumerated().map { ($1, $0) }), ttl: .seconds(600))
        let stop = StopFlag()
        let progress = Progress()
        return try await withThrowingTaskGroup(of: [Record].self) { group in
            for worker in 0..<tasks {
                group.addTask {
                    var generator = SystemRandomNumberGenerator()
                    var records: [Record] = []
                    var counter = worker * 1_000_000
                    while !stop.isSet {
                        let key = keys[Int.random(in: 0..<keys.count, using: &generator)]
                        let started = ContinuousClock.now
                        var code: CacheError.Code?
                        do {
                            if Bool.random(using: &generator) {
                                _ = try await cache.get(key, as: Int.self)
                            } else {
                                counter += 1
                                try await cache.set(key, to: counter, ttl: .seconds(600))
                            }
                        } catch let error as CacheError {
                            code = error.code
                        } catch {
                            code = .backendError
                        }
                        records.append(Record(started: started, duration: .now - started, code: code))
                        progress.record()
                        try? await Task.sleep(for: .milliseconds(5))
                    }
                    return records
                }
            }
            do {
                try await fault(progress)
            } catch {
                stop.set()
                throw error
            }
            stop.set()
            var report = Report()
            for try await records in group { report.records += records }
            return report
        }
    }
}

/// Tells workload tasks to stop.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    var isSet: Bool { flag.load(ordering: .relaxed) }

    func set() { flag.store(true, ordering: .relaxed) }
}
