@testable import CacheLayer
import CommonSupport
import Foundation
import RedisClient
import RedisTestSupport
import Testing

/// Distributed single flight (`GetOrSetOptions.distributed`) across cache instances in this process, each with its
/// own connections to one real redis-server, as separate processes would have.
@Suite("Distributed single flight")
struct DistributedSingleFlightTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case redis, twoLevel
        /// A ``FallbackCache`` over a ``RedisCache`` (`enableFallback`, as the `.production` preset sets).
        case fallback
        /// A ``FallbackCache`` over a ``TwoLevelCache`` (`nearCache` and `enableFallback`).
        case nearCacheFallback
        var testDescription: String { rawValue }
    }

    static func instance(_ kind: Kind, namespace: String) async throws -> any Cache {
        let server = try await RedisServer.shared()
        var configuration = server.cacheConfiguration(namespace: namespace)
        configuration.poolSize = 4
        configuration.maxIdleConnections = 4
        switch kind {
        case .redis:
            return try await RedisCache.connect(configuration: configuration, logger: quietLogger)
        case .twoLevel:
            configuration.nearCache = NearCacheConfiguration(maxMemorySize: 1024 * 1024)
            return try await TwoLevelCache.connect(configuration: configuration, logger: quietLogger)
        case .fallback:
            configuration.enableFallback = true
            return try await makeCache(configuration, logger: quietLogger)
        case .nearCacheFallback:
            configuration.nearCache = NearCacheConfiguration(maxMemorySize: 1024 * 1024)
            configuration.enableFallback = true
            return try await makeCache(configuration, logger: quietLogger)
        }
    }

    static func lockValue(namespace: String, key: String) async throws -> String? {
        let server = try await RedisServer.shared()
        return try await server.withRawConnection { try await $0.getString("__flight__:\(namespace):\(key)") }
    }

    @Test(arguments: Kind.allCases)
    func eightInstancesWithAHundredCallersEachRunTheFactoryOnce(kind: Kind) async throws {
        let namespace = "dsf-\(UUID().uuidString.prefix(8))"
        var caches: [any Cache] = []
        for _ in 0..<8 { caches.append(try await Self.instance(kind, namespace: namespace)) }
        let calls = CallCounter()
        let options = GetOrSetOptions(distributed: DistributedSingleFlightOptions(lockTTL: .seconds(10)))
        let results = try await withThrowingTaskGroup(of: String.self) { group in
            for cache in caches {
                for _ in 0..<100 {
                    group.addTask {
                        try await cache.getOrSet("report", ttl: .seconds(60), options: options) {
                            calls.increment()
                            try await Task.sleep(for: .milliseconds(300))
                            return "computed"
                        }
                    }
                }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(results.count == 800)
        #expect(results.allSatisfy { $0 == "computed" })
        #expect(calls.value == 1, "one factory call for the whole deployment")
        let lock = try await Self.lockValue(namespace: namespace, key: "report")
        #expect(lock == nil, "the owner released its lock")
        for cache in caches { try await cache.close() }
    }

    @Test(arguments: Kind.allCases)
    func anOwnerThatDiesHoldsTheLockOnlyUntilItExpiresAndALateOwnerDoesNotOverwrite(kind: Kind) async throws {
        let namespace = "dsf-\(UUID().uuidString.prefix(8))"
        let a = try await Self.instance(kind, namespace: namespace)
        let b = try await Self.instance(kind, namespace: namespace)
        let options = GetOrSetOptions(distributed: DistributedSingleFlightOptions(lockTTL: .milliseconds(300), maxWait: .seconds(30)))
        let hung = Gate()
        let started = CallCounter()
        // A takes the lock and its factory does not return.
        let owner = Task {
            try await a.getOrSet("k", ttl: .seconds(60), options: options) { () async throws -> String in
                started.increment()
                await hung.wait()
                return "late"
            }
        }
        let locked = try await eventually {
            guard started.value == 1 else { return false }
            return try await Self.lockValue(namespace: namespace, key: "k") != nil
        }
        #expect(locked)
        // A loses Redis (as a process that died would): it can no longer renew its lock.
        try await a.close()
        let calls = CallCounter()
        let start = ContinuousClock.now
        let value = try await b.getOrSet("k", ttl: .seconds(60), options: options) { () async throws -> String in
            calls.increment()
            return "b"
        }
        #expect(value == "b", "B took the lock once A's expired and ran the factory")
        #expect(calls.value == 1)
        #expect(ContinuousClock.now - start < .seconds(20), "B did not wait for maxWait: the lock expired")
        // A's factory finishes late: it no longer holds the lock and stores nothing.
        hung.open()
        _ = try? await owner.value
        #expect(try await b.get("k", as: String.self) == "b")
        let c = try await Self.instance(kind, namespace: namespace)
        #expect(try await c.get("k", as: String.self) == "b")
        try await b.close()
        try await c.close()
    }

    @Test(arguments: Kind.allCases)
    func aFactorySlowerThanTheLockTTLKeepsItsLockByRenewingIt(kind: Kind) async throws {
        let namespace = "dsf-\(UUID().uuidString.prefix(8))"
        let a = try await Self.instance(kind, namespace: namespace)
        let b = try await Self.instance(kind, namespace: namespace)
        let options = GetOrSetOptions(distributed: DistributedSingleFlightOptions(lockTTL: .milliseconds(300), maxWait: .seconds(30)))
        let calls = CallCounter()
        let results = try await withThrowingTaskGroup(of: String.self) { group in
            for cache in [a, b] {
                for _ in 0..<20 {
                    group.addTask {
                        try await cache.getOrSet("slow", ttl: .seconds(60), options: options) {
                            calls.increment()
                            // Five lock TTLs: without renewal the lock expires and the other instance runs too.
                            try await Task.sleep(for: .milliseconds(1500))
                            return "computed"
                        }
                    }
                }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(results.count == 40)
        #expect(results.allSatisfy { $0 == "computed" })
        #expect(calls.value == 1, "the owner renewed its lock while its factory ran")
        let lock = try await Self.lockValue(namespace: namespace, key: "slow")
        #expect(lock == nil, "the owner released its lock")
        try await a.close()
        try await b.close()
    }

    @Test func duringAnOutageAFallbackCacheRunsTheFlightLocallyAndStoresItsValue() async throws {
        try await withRedisServer { server in
            let cache = try await FallbackReplayErrorTests.fallbackCache(server, namespace: "dsf-outage")
            let options = GetOrSetOptions(distributed: DistributedSingleFlightOptions(lockTTL: .seconds(10), maxWait: .seconds(30)))
            await server.kill()
            _ = try await cache.get("probe", as: Int.self)
            #expect(!cache.isBackendHealthy)
            let calls = CallCounter()
            let start = ContinuousClock.now
            let results = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        try await cache.getOrSet("k", ttl: .seconds(60), options: options) {
                            calls.increment()
                            return "local"
                        }
                    }
                }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(results == Array(repeating: "local", count: 20))
            #expect(calls.value == 1, "one flight in this instance")
            #expect(ContinuousClock.now - start < .seconds(5), "no wait for a lock Redis cannot grant")
            #expect(try await cache.get("k", as: String.self) == "local", "the local owner stored its value in memory")
            try await cache.close()
        }
    }

    @Test(arguments: Kind.allCases)
    func aFactoryErrorReleasesTheLockAtOnce(kind: Kind) async throws {
        let namespace = "dsf-\(UUID().uuidString.prefix(8))"
        let a = try await Self.instance(kind, namespace: namespace)
        let b = try await Self.instance(kind, namespace: namespace)
        // A lock that lives a minute: only the release lets B in without waiting for it.
        let options = GetOrSetOptions(distributed: DistributedSingleFlightOptions(lockTTL: .seconds(60), maxWait: .seconds(60)))
        await #expect(throws: TestFailure.self) {
            try await a.getOrSet("k", ttl: .seconds(60), options: options) { () async throws -> String in throw TestFailure() }
        }
        let lock = try await Self.lockValue(namespace: namespace, key: "k")
        #expect(lock == nil)
        let value = try await b.getOrSet("k", ttl: .seconds(60), options: options) { "b" }
        #expect(value == "b")
        try await a.close()
        try await b.close()
    }

    @Test func aWaiterGivesUpAfterMaxWaitAndRunsTheFactoryItself() async throws {
        let namespace = "dsf-\(UUID().uuidString.prefix(8))"
        let cache = try await Self.instance(.redis, namespace: namespace)
        let server = try await RedisServer.shared()
        // A lock held by someone who never finishes.
        try await server.withRawConnection {
            _ = try await $0.set("__flight__:\(namespace):k", value: "someone-else", expiration: .after(.seconds(60)))
        }
        let options = GetOrSetOptions(distributed: DistributedSingleFlightOptions(lockTTL: .seconds(60), maxWait: .milliseconds(200)))
        let calls = CallCounter()
        let value = try await cache.getOrSet("k", ttl: .seconds(60), options: options) { () async throws -> String in
            calls.increment()
            return "mine"
        }
        #expect(value == "mine")
        #expect(calls.value == 1)
        let lock = try await Self.lockValue(namespace: namespace, key: "k")
        #expect(lock == "someone-else", "another owner's lock is never deleted")
        #expect(try await cache.get("k", as: String.self) == "mine")
        try await cache.close()
    }

    @Test(arguments: [NearCacheConfiguration.Coherence.tracking, .pubSub])
    func aTwoLevelWaiterIsWokenByTheOwnersWriteInsteadOfSleepingOutItsPoll(coherence: NearCacheConfiguration.Coherence) async throws {
        let namespace = "dsf-\(UUID().uuidString.prefix(8))"
        let server = try await RedisServer.shared()
        var configuration = server.cacheConfiguration(namespace: namespace)
        configuration.nearCache = NearCacheConfiguration(maxMemorySize: 1024 * 1024, coherence: coherence)
        let owner = try await TwoLevelCache.connect(configuration: configuration, logger: quietLogger)
        let waiter = try await TwoLevelCache.connect(configuration: configuration, logger: quietLogger)
        // A poll interval of ten minutes: only the wake-up lets the waiter see the value within the test.
        let options = GetOrSetOptions(distributed: DistributedSingleFlightOptions(
            lockTTL: .seconds(600), maxWait: .seconds(600), initialPollInterval: .seconds(600), maxPollInterval: .seconds(600)
        ))
        let release = Gate()
        let ownerTask = Task {
            try await owner.getOrSet("k", ttl: .seconds(60), options: options) { () async throws -> String in
                await release.wait()
                return "v"
            }
        }
        let locked = try await eventually { try await Self.lockValue(namespace: namespace, key: "k") != nil }
        #expect(locked)
        let done = Flag()
        let waiterTask = Task {
            defer { done.set() }
            return try await waiter.getOrSet("k", ttl: .seconds(60), options: options) { () async throws -> String in "waiter's own" }
        }
        let waiting = await eventually { waiter.near.changeWaiters.waitingCount == 1 }
        #expect(waiting)
        release.open()
        let woken = await eventually(timeout: .seconds(10)) { done.isSet }
        #expect(woken)
        waiterTask.cancel()
        #expect(try await ownerTask.value == "v")
        #expect(try await waiterTask.value == "v")
        try await owner.close()
        try await waiter.close()
    }

    final class Flag: Sendable {
        private let value = Locked(false)
        func set() { value.withLock { $0 = true } }
        var isSet: Bool { value.withLock { $0 } }
    }

    @Test func failSafeLoadsAreDistributedToo() async throws {
        let namespace = "dsf-\(UUID().uuidString.prefix(8))"
        var caches: [any Cache] = []
        for _ in 0..<4 { caches.append(try await Self.instance(.redis, namespace: namespace)) }
        let calls = CallCounter()
        let options = GetOrSetOptions(gracePeriod: .seconds(60), distributed: DistributedSingleFlightOptions())
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for cache in caches {
                for _ in 0..<10 {
                    group.addTask {
                        try await cache.getOrSet("n", ttl: .seconds(60), options: options) {
                            calls.increment()
                            try await Task.sleep(for: .milliseconds(200))
                            return 7
                        }
                    }
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(results == Array(repeating: 7, count: 40))
        #expect(calls.value == 1)
        for cache in caches { try await cache.close() }
    }
}
