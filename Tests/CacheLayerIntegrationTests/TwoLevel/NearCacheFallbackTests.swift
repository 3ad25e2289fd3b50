@testable import CacheLayer
import CommonSupport
import RedisClient
import RedisTestSupport
import Testing

/// `nearCache` and `enableFallback` together (issue 11): a ``FallbackCache`` over a ``TwoLevelCache``, several
/// instances in this process on separate connections to one real redis-server (or a local cluster), which is paused
/// (SIGSTOP) or killed. L1 hits write nothing to the fallback's copy; during an outage no instance returns a value
/// older than one it already returned; after recovery none reads a value older than the newest acknowledged write.
@Suite("Near cache with fallback, real Redis", .serialized)
struct NearCacheFallbackTests {
    /// An instance as `makeCache` builds it from `nearCache` + `enableFallback`, failing over on the first failure,
    /// returned once L1 may be filled (tracking set up).
    static func instance(
        _ configuration: CacheConfiguration, probeInterval: Duration = .milliseconds(50),
        configure: (inout CacheConfiguration) -> Void = { _ in }
    ) async throws -> FallbackCache {
        var configuration = configuration
        configuration.connectTimeout = .seconds(2)
        configuration.enableFallback = true
        configuration.fallbackFailureThreshold = 1
        configuration.fallbackProbeInterval = probeInterval
        configuration.nearCache = NearCacheConfiguration(
            maxMemorySize: 4 * 1024 * 1024, maxTTL: .seconds(300), trackingPingInterval: .milliseconds(100)
        )
        configure(&configuration)
        let cache = try #require(try await makeCache(configuration, logger: quietLogger) as? FallbackCache)
        let twoLevel = try #require(cache.twoLevel)
        #expect(twoLevel.nearCacheStatistics.isCoherent)
        return cache
    }

    static func instance(
        _ server: RedisServer, namespace: String = "near-fallback", probeInterval: Duration = .milliseconds(50),
        configure: (inout CacheConfiguration) -> Void = { _ in }
    ) async throws -> FallbackCache {
        try await instance(
            server.cacheConfiguration(namespace: namespace, timeout: .milliseconds(300)), probeInterval: probeInterval, configure: configure
        )
    }

    /// Waits until `cache` received an invalidation beyond the `count` it had, so its L1 no longer holds what it
    /// concerned.
    static func invalidationArrived(at cache: FallbackCache, after count: UInt64) async -> Bool {
        await eventually { cache.twoLevel!.receivedInvalidationKeys > count }
    }

    /// Waits until `cache`'s near cache noticed the outage: L1 emptied, no fills until tracking is back.
    static func trackingLost(_ cache: FallbackCache) async -> Bool {
        await eventually { !cache.twoLevel!.nearCacheStatistics.isCoherent }
    }

    @Test func anL1HitIsServedWithoutWritingTheFallbackCopy() async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server)
            let b = try await Self.instance(server)
            let seen = a.twoLevel!.receivedInvalidationKeys
            try await b.set("hot", to: 1, ttl: .seconds(60))
            let invalidated = await Self.invalidationArrived(at: a, after: seen)
            #expect(invalidated)
            // An L1 miss: read from Redis, which fills L1 and refreshes the fallback's copy once.
            #expect(try await a.get("hot", as: Int.self) == 1)
            let refreshes = a.memory.refreshCounts.sets
            let nearHits = a.twoLevel!.nearCacheStatistics.nearHits
            let redisHits = await a.twoLevel!.redis.stats().hits
            for _ in 0..<100 {
                #expect(try await a.get("hot", as: Int.self) == 1)
            }
            #expect(a.twoLevel!.nearCacheStatistics.nearHits == nearHits + 100, "the hits were not served by L1")
            #expect(await a.twoLevel!.redis.stats().hits == redisHits, "an L1 hit went to Redis")
            #expect(a.memory.refreshCounts.sets == refreshes, "an L1 hit wrote the fallback's copy")
            #expect(try a.local.peekValue("hot")?.value as? Int == 1)
            try await a.close()
            try await b.close()
            // The lock-free check of the hit path knows the cache is closed.
            let error = await #expect(throws: CacheError.self) { try await a.get("hot", as: Int.self) }
            #expect(error?.code == .closed)
        }
    }

    /// A batch read serves L1 hits as `get` does: it keeps the fallback's copies of those keys (it drops only the
    /// copies of the keys it read from Redis, whose TTL it does not read), so they still serve an outage.
    @Test func getManyKeepsTheFallbackCopiesOfL1Hits() async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server)
            let b = try await Self.instance(server)
            let seen = a.twoLevel!.receivedInvalidationKeys
            try await b.setMany(["k1": 1, "k2": 2], ttl: .seconds(60))
            let invalidated = await eventually { a.twoLevel!.receivedInvalidationKeys >= seen + 2 }
            #expect(invalidated)
            #expect(try await a.get("k1", as: Int.self) == 1)
            #expect(try await a.get("k2", as: Int.self) == 2)
            let nearHits = a.twoLevel!.nearCacheStatistics.nearHits
            #expect(try await a.getMany(["k1", "k2", "k3"], as: Int.self) == ["k1": 1, "k2": 2])
            #expect(a.twoLevel!.nearCacheStatistics.nearHits == nearHits + 2)
            #expect(try a.local.peekValue("k1")?.value as? Int == 1, "an L1 hit of getMany dropped the fallback's copy")
            try server.pause()
            let lost = await Self.trackingLost(a)
            #expect(lost)
            #expect(try await a.getMany(["k1", "k2"], as: Int.self) == ["k1": 1, "k2": 2])
            #expect(!a.isBackendHealthy)
            try server.resume()
            try await a.close()
            try await b.close()
        }
    }

    /// With Redis up, a tag invalidation drops the fallback's copies of the keys Redis removed, not every copy
    /// refreshed by a read.
    @Test func aTagInvalidationDropsOnlyTheCopiesOfTheTaggedKeys() async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server)
            let b = try await Self.instance(server)
            try await a.set("tagged", to: 1, ttl: .seconds(60), tags: ["group"])
            let seen = a.twoLevel!.receivedInvalidationKeys
            try await b.set("tagged-by-b", to: 2, ttl: .seconds(60), tags: ["group"])
            try await b.set("other", to: 3, ttl: .seconds(60))
            // So that A's reads below are L1 misses that refresh its copies.
            let invalidated = await eventually { a.twoLevel!.receivedInvalidationKeys >= seen + 2 }
            #expect(invalidated)
            #expect(try await a.get("tagged-by-b", as: Int.self) == 2)
            #expect(try await a.get("other", as: Int.self) == 3)
            try await a.invalidate(tag: "group")
            #expect(try a.local.peekValue("tagged") == nil)
            #expect(try a.local.peekValue("tagged-by-b") == nil, "a copy refreshed by a read survived its tag's invalidation")
            #expect(try a.local.peekValue("other")?.value as? Int == 3, "an untagged copy was dropped")
            #expect(try await a.get("tagged-by-b", as: Int.self) == nil)
            try await a.close()
            try await b.close()
        }
    }

    /// Writes fail while reads and tracking go on (`CLIENT PAUSE … WRITE`): the breaker opens while L1 still holds
    /// an entry. A write made then reaches only memory and the journal, so the next read must not be served by L1's
    /// older entry (the hit path's lock-free check must see the open breaker).
    @Test func aWriteMadeWhileTheBreakerIsOpenIsNotHiddenByAnOlderL1Entry() async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server, probeInterval: .milliseconds(100))
            try await a.set("k", to: 1, ttl: .seconds(60))
            // The write put its value into L1 (tracking sends no invalidation of it back).
            #expect(try await a.get("k", as: Int.self) == 1)
            #expect(a.twoLevel!.nearValueForInspection("k", as: Int.self) == 1)
            _ = try await RedisCluster.command(server, ["CLIENT", "PAUSE", "3000", "WRITE"])
            // A delete, which goes through the pool: a set goes on the tracking connection, where a write Redis holds
            // holds the tracking PING behind it too, which empties L1 (see InvalidationTracker.write).
            try await a.delete("other")
            #expect(!a.isBackendHealthy, "the timed-out write did not open the breaker")
            #expect(a.twoLevel!.nearCacheStatistics.isCoherent)
            #expect(a.twoLevel!.nearValueForInspection("k", as: Int.self) == 1, "\(a.twoLevel!.nearCacheStatistics)")
            try await a.set("k", to: 2, ttl: .seconds(60))
            #expect(try await a.get("k", as: Int.self) == 2, "L1's older entry hid a write this instance made")
            _ = try await RedisCluster.command(server, ["CLIENT", "UNPAUSE"])
            let recovered = await eventually(timeout: .seconds(10)) { a.isBackendHealthy && a.pendingKeyCount == 0 }
            #expect(recovered)
            let after = try await a.get("k", as: Int.self)
            #expect(after == nil || after == 2)
            try await a.close()
        }
    }

    /// A server that refuses `CLIENT TRACKING` is a configuration to fix, not an outage to ride out: `makeCache`
    /// throws as it does without the fallback.
    @Test func aServerThatRefusesClientTrackingIsReportedAsUnsupported() async throws {
        let user = RedisServer.Options.User(name: "app", password: "pw", rules: ["~*", "&*", "+@all", "-client|tracking"])
        try await withRedisServer(.init(users: [user])) { server in
            var configuration = server.cacheConfiguration(namespace: "refused", fallback: true)
            configuration.redisUsername = "app"
            configuration.redisPassword = "pw"
            configuration.nearCache = NearCacheConfiguration(maxMemorySize: 4 * 1024 * 1024)
            let error = await #expect(throws: CacheError.self) { try await makeCache(configuration, logger: quietLogger) }
            #expect(error?.code == .unsupported)
        }
    }

    /// Created while Redis is down, the cache starts serving from memory; once Redis is back and tracking set up, L1
    /// serves hits.
    @Test func startsWhileRedisIsDownAndUsesL1OnceItIsBack() async throws {
        try await withRedisServer { server in
            await server.kill()
            var configuration = server.cacheConfiguration(namespace: "near-fallback", timeout: .milliseconds(300))
            configuration.connectTimeout = .milliseconds(300)
            configuration.enableFallback = true
            configuration.fallbackFailureThreshold = 1
            configuration.fallbackProbeInterval = .milliseconds(50)
            configuration.nearCache = NearCacheConfiguration(maxMemorySize: 4 * 1024 * 1024, trackingPingInterval: .milliseconds(100))
            let a = try #require(try await makeCache(configuration, logger: quietLogger) as? FallbackCache)
            try await a.set("k", to: 1, ttl: .seconds(60))
            #expect(try await a.get("k", as: Int.self) == 1)
            #expect(!a.isBackendHealthy)
            try await server.restart(kill: true)
            let recovered = await eventually(timeout: .seconds(10)) {
                a.isBackendHealthy && a.pendingKeyCount == 0 && a.nearCacheStatistics?.isCoherent == true
            }
            #expect(recovered)
            try await a.set("k", to: 2, ttl: .seconds(60))
            let servedByL1 = try await eventually {
                let hits = a.nearCacheStatistics?.nearHits ?? 0
                return try await a.get("k", as: Int.self) == 2 && (a.nearCacheStatistics?.nearHits ?? 0) > hits
            }
            #expect(servedByL1)
            try await a.close()
        }
    }

    enum Fault: String, CaseIterable, Sendable {
        case pause = "SIGSTOP"
        case kill = "SIGKILL"
    }

    /// The scenario: A wrote v1, read B's newer v2 through an L1 miss; Redis fails: A serves v2, from the
    /// fallback's copy (L1 was emptied when tracking was lost), not its own older v1.
    @Test(arguments: Fault.allCases)
    func duringAnOutageAnInstanceServesTheNewerValueItReadThroughAnL1Miss(fault: Fault) async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server)
            let b = try await Self.instance(server)
            try await a.set("price", to: 1, ttl: .seconds(60))
            #expect(try await a.get("price", as: Int.self) == 1)
            let seen = a.twoLevel!.receivedInvalidationKeys
            try await b.set("price", to: 2, ttl: .seconds(60))
            let invalidated = await Self.invalidationArrived(at: a, after: seen)
            #expect(invalidated)
            #expect(try await a.get("price", as: Int.self) == 2)
            switch fault {
            case .pause: try server.pause()
            case .kill: await server.kill()
            }
            let lost = await Self.trackingLost(a)
            #expect(lost)
            #expect(a.twoLevel!.nearValueForInspection("price", as: Int.self) == nil, "L1 kept a value without tracking")
            let duringOutage = try await a.get("price", as: Int.self)
            #expect(duringOutage == 2)
            #expect(!a.isBackendHealthy)
            #expect(await a.stats().fallbacks >= 1)
            if fault == .pause { try server.resume() }
            try await a.close()
            try await b.close()
        }
    }

    /// A write made during an outage by A is invalidated in Redis on recovery; B, whose L1 held the older value before
    /// the outage, never reads it back (its L1 was emptied when tracking was lost, and refilled only once tracking
    /// was back).
    @Test func afterRecoveryNoInstanceReadsAValueOlderThanTheNewestAcknowledgedWrite() async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server)
            let b = try await Self.instance(server)
            try await b.set("price", to: 1, ttl: .seconds(60))
            for _ in 0..<3 { #expect(try await b.get("price", as: Int.self) == 1) }
            #expect(try await a.get("price", as: Int.self) == 1)
            try server.pause()
            let lost = await Self.trackingLost(a)
            #expect(lost)
            // Acknowledged: memory and the journal have it.
            try await a.set("price", to: 2, ttl: .seconds(60))
            #expect(a.pendingKeyCount == 1)
            #expect(try await a.get("price", as: Int.self) == 2)
            try server.resume()
            let recovered = await eventually(timeout: .seconds(10)) {
                a.isBackendHealthy && a.pendingKeyCount == 0 && a.twoLevel!.nearCacheStatistics.isCoherent
                    && b.twoLevel!.nearCacheStatistics.isCoherent
            }
            #expect(recovered)
            #expect(try await Self.redisValue(server, "price") == nil, "the outage write was not invalidated in Redis")
            for instance in [a, b] {
                for _ in 0..<3 {
                    let price = try await instance.get("price", as: Int.self)
                    #expect(price == nil || price == 2, "an instance read \(price.map(String.init) ?? "nil") after recovery")
                }
            }
            // L1 works again after recovery: a value read from Redis is served by L1.
            try await b.set("price", to: 3, ttl: .seconds(60))
            let refilled = try await eventually {
                try await a.get("price", as: Int.self) == 3 && a.twoLevel!.nearValueForInspection("price", as: Int.self) == 3
            }
            #expect(refilled)
            try await a.close()
            try await b.close()
        }
    }

    static func redisValue(_ server: RedisServer, _ key: String, namespace: String = "near-fallback") async throws -> Int? {
        let direct = try await RedisCache.connect(configuration: server.cacheConfiguration(namespace: namespace), logger: quietLogger)
        let value = try await direct.get(key, as: Int.self)
        try await direct.close()
        return value
    }

    @Test func closeDuringAnOutageReturnsWithinItsDeadline() async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server, probeInterval: .seconds(60)) { $0.fallbackCloseTimeout = .milliseconds(500) }
            try await a.set("k", to: 1, ttl: .seconds(60))
            try server.pause()
            let lost = await Self.trackingLost(a)
            #expect(lost)
            try await a.set("k", to: 2, ttl: .seconds(60))
            #expect(a.pendingKeyCount == 1)
            let start = ContinuousClock.now
            try await a.close()
            let elapsed = ContinuousClock.now - start
            try server.resume()
            #expect(elapsed < .milliseconds(2500), "close() took \(elapsed)")
        }
    }

    /// maxOutageAge counts from the last write or read that reached Redis (an L1 hit does not renew the copy).
    @Test func aCopyOlderThanMaxOutageAgeIsAMissDuringAnOutage() async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server) { $0.fallbackMaxOutageAge = .seconds(1) }
            let b = try await Self.instance(server)
            try await a.set("fresh", to: 1, ttl: .seconds(60))
            try await a.set("old", to: 1, ttl: .seconds(60))
            try await Task.sleep(for: .milliseconds(1200))
            // Another instance's write: A's next read is an L1 miss, which renews its copy.
            let seen = a.twoLevel!.receivedInvalidationKeys
            try await b.set("fresh", to: 2, ttl: .seconds(60))
            let invalidated = await Self.invalidationArrived(at: a, after: seen)
            #expect(invalidated)
            #expect(try await a.get("fresh", as: Int.self) == 2)
            try server.pause()
            let lost = await Self.trackingLost(a)
            #expect(lost)
            let fresh = try await a.get("fresh", as: Int.self)
            let old = try await a.get("old", as: Int.self)
            #expect(!a.isBackendHealthy)
            #expect(fresh == 2)
            #expect(old == nil, "served a copy older than maxOutageAge")
            try server.resume()
            try await a.close()
            try await b.close()
        }
    }

    enum LoopFault: String, CaseIterable, Sendable {
        case pause = "SIGSTOP"
        case killAndRestartEmpty = "SIGKILL, restart empty"
        /// The server comes back with every value acknowledged before the kill: older than what the instances wrote
        /// during the outage.
        case killAndRestartWithOldData = "SIGKILL, restart with its AOF data"

        var serverOptions: RedisServer.Options {
            self == .killAndRestartWithOldData ? .init(extraArguments: ["--appendonly", "yes", "--appendfsync", "always"]) : .init()
        }
    }

    /// Two instances each write increasing versions of their own keys and read every key in a loop (mostly L1 hits),
    /// kept coherent by client tracking or the pub/sub backplane, while Redis is faulted and recovers: no read returns a version older than one the same instance returned
    /// before, and once both have recovered, every read returns the newest acknowledged version or a miss.
    @Test(arguments: LoopFault.allCases, [NearCacheConfiguration.Coherence.tracking, .pubSub])
    func twoInstancesNeverGoBackInTimeThroughAFault(fault: LoopFault, coherence: NearCacheConfiguration.Coherence) async throws {
        try await withRedisServer(fault.serverOptions) { server in
            let instances = [
                try await Self.instance(server) { $0.nearCache?.coherence = coherence },
                try await Self.instance(server) { $0.nearCache?.coherence = coherence },
            ]
            let workload = NeverBackInTimeWorkload(instances, readsPerWrite: 4)
            try await Task.sleep(for: .milliseconds(300))
            switch fault {
            case .pause:
                try server.pause()
                try await Task.sleep(for: .milliseconds(700))
                try server.resume()
            case .killAndRestartEmpty, .killAndRestartWithOldData:
                await server.kill()
                try await Task.sleep(for: .milliseconds(700))
                try await server.restart(kill: true)
            }
            let recovered = await eventually(timeout: .seconds(15)) {
                instances.allSatisfy {
                    $0.isBackendHealthy && $0.pendingKeyCount == 0 && $0.twoLevel!.nearCacheStatistics.isCoherent
                }
            }
            #expect(recovered)
            var outages: UInt64 = 0
            for cache in instances { outages += await cache.stats().outages }
            #expect(outages >= 1, "the fault was noticed")
            try await Task.sleep(for: .milliseconds(300))
            await workload.stop()
            for cache in instances {
                #expect(cache.twoLevel!.nearCacheStatistics.nearHits > 0, "L1 served nothing")
            }
            try await workload.expectNoReadWentBackAndEveryInstanceReadsTheNewest(instances)
            for cache in instances { try await cache.close() }
        }
    }

    /// The scenario on a Redis Cluster (one tracking connection per node): every node is paused.
    @Test func onAClusterAnInstanceServesTheNewerValueItReadDuringAnOutage() async throws {
        try await withRedisCluster(.init(primaries: 3, replicasPerPrimary: 0)) { cluster in
            let configuration = cluster.cacheConfiguration(namespace: "near-fallback", timeout: .milliseconds(300))
            let a = try await Self.instance(configuration)
            let b = try await Self.instance(configuration)
            let keys = (0..<6).map { "price:\($0)" }
            for key in keys { try await a.set(key, to: 1, ttl: .seconds(60)) }
            for key in keys { #expect(try await a.get(key, as: Int.self) == 1) }
            let seen = a.twoLevel!.receivedInvalidationKeys
            for key in keys { try await b.set(key, to: 2, ttl: .seconds(60)) }
            let invalidated = await eventually { a.twoLevel!.receivedInvalidationKeys >= seen + UInt64(keys.count) }
            #expect(invalidated)
            for key in keys { #expect(try await a.get(key, as: Int.self) == 2) }
            for node in cluster.nodes { try node.pause() }
            let lost = await Self.trackingLost(a)
            #expect(lost)
            for key in keys {
                let value = try await a.get(key, as: Int.self)
                #expect(value == 2, "\(key) = \(value.map(String.init) ?? "nil") during the outage")
            }
            #expect(!a.isBackendHealthy)
            for node in cluster.nodes { try node.resume() }
            let recovered = await eventually(timeout: .seconds(10)) { a.isBackendHealthy && a.twoLevel!.nearCacheStatistics.isCoherent }
            #expect(recovered)
            try await a.close()
            try await b.close()
        }
    }
}
