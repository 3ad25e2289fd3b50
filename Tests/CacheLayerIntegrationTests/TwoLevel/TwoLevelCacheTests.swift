@testable import CacheLayer
import Foundation
import RedisClient
import RedisTestSupport
import Synchronization
import Testing

/// The two-level cache against real redis-server processes: several instances in this process, each with its own
/// pool and tracking connection, sharing one namespace. Each test starts its own server, since some flush, kill
/// clients or restart it.
///
/// Waits are written `let settled = await eventually { … }` then `#expect(settled)`, never
/// `#expect(await eventually { … })`: with Swift 6.3, a closure inside an `#expect` expansion and another closure of the
/// same function could be given the same symbol, so one `eventually` ran the other's condition (a wait that returned
/// at once without ever checking its own condition).
@Suite("TwoLevelCache with real Redis")
struct TwoLevelCacheTests {
    static func near(maxTTL: Duration = .seconds(300)) -> NearCacheConfiguration {
        NearCacheConfiguration(maxMemorySize: 4 * 1024 * 1024, maxTTL: maxTTL, trackingPingInterval: .milliseconds(200))
    }

    /// An instance on `server` under `namespace`, returned once tracking is set up.
    static func instance(_ server: RedisServer, namespace: String = "shared", near: NearCacheConfiguration = near()) async throws -> TwoLevelCache {
        var configuration = server.cacheConfiguration(namespace: namespace)
        configuration.name = "two-level-test"
        configuration.poolSize = 4
        configuration.maxIdleConnections = 4
        configuration.nearCache = near
        return try await TwoLevelCache.connect(configuration: configuration, logger: quietLogger)
    }

    /// The value L1 holds for `key`, without going to Redis.
    static func nearValue(_ cache: TwoLevelCache, _ key: String) throws -> String? {
        try cache.near.memory.peekValue(key)?.value as? String
    }

    @Test func anL1HitNeedsNoRoundTrip() async throws {
        try await withRedisServer { server in
            let cache = try await Self.instance(server)
            try await cache.set("k", to: "v", ttl: .seconds(60))
            // The write put its value into L1, and tracking (NOLOOP) sends no invalidation of it back.
            let roundTrips = cache.redis.roundTrips
            #expect(try await cache.get("k", as: String.self) == "v")
            for _ in 0..<100 { #expect(try await cache.get("k", as: String.self) == "v") }
            #expect(cache.redis.roundTrips == roundTrips)
            #expect(cache.nearCacheStatistics.nearHits == 101, "\(cache.nearCacheStatistics)")
            let stats = await cache.stats()
            #expect(stats.hits == 101 && stats.misses == 0)
            try await cache.close()
        }
    }

    @Test func anL1EntryNeverOutlivesItsRedisTTLNorTheCap() async throws {
        try await withRedisServer { server in
            let cache = try await Self.instance(server, near: Self.near(maxTTL: .seconds(2)))
            try await cache.set("short", to: "v", ttl: .milliseconds(400))
            try await cache.set("long", to: "v", ttl: .seconds(3600))
            _ = try await cache.get("short", as: String.self)
            _ = try await cache.get("long", as: String.self)
            let short = try #require(try cache.near.memory.peekValue("short")?.remainingNanoseconds)
            let long = try #require(try cache.near.memory.peekValue("long")?.remainingNanoseconds)
            #expect(short <= 400_000_000)
            #expect(long <= 2_000_000_000 && long > 1_000_000_000)
            try await Task.sleep(for: .milliseconds(500))
            #expect(try await cache.get("short", as: String.self) == nil)
            try await cache.close()
        }
    }

    @Test func getManyServesL1HitsAndFetchesOnlyTheRestInOneRoundTrip() async throws {
        try await withRedisServer { server in
            let cache = try await Self.instance(server)
            try await cache.setMany(["a": 1, "b": 2, "c": 3], ttl: .seconds(60))
            // The writes' own invalidations come back through tracking; wait for them so they do not empty L1 later.
            let settled3 = await eventually { cache.receivedInvalidationKeys >= 3 }
            #expect(settled3)
            #expect(try await cache.get("a", as: Int.self) == 1)
            let farHits = await cache.redis.stats().hits
            let roundTrips = cache.redis.roundTrips
            #expect(try await cache.getMany(["a", "b", "c", "absent"], as: Int.self) == ["a": 1, "b": 2, "c": 3])
            #expect(cache.redis.roundTrips == roundTrips + 1)
            #expect(await cache.redis.stats().hits == farHits + 2, "only b and c were read from Redis")
            // Now all three are in L1.
            #expect(try await cache.getMany(["a", "b", "c"], as: Int.self) == ["a": 1, "b": 2, "c": 3])
            #expect(cache.redis.roundTrips == roundTrips + 1)
            try await cache.close()
        }
    }

    @Test func ownWritesAreVisibleAtOnce() async throws {
        try await withRedisServer { server in
            let cache = try await Self.instance(server)
            for round in 0..<50 {
                try await cache.set("k", to: "v\(round)", ttl: .seconds(60))
                #expect(try await cache.get("k", as: String.self) == "v\(round)")
                #expect(try await cache.get("k", as: String.self) == "v\(round)")
            }
            try await cache.delete("k")
            #expect(try await cache.get("k", as: String.self) == nil)
            try await cache.close()
        }
    }

    @Test func anotherInstancesWriteReachesL1AndNoOlderValueIsReadAfterIt() async throws {
        try await withRedisServer { server in
            let reader = try await Self.instance(server)
            let writer = try await Self.instance(server)
            try await writer.set("k", to: "v0", ttl: .seconds(60))
            let settled4 = await eventually { reader.receivedInvalidationKeys >= 1 }
            #expect(settled4)
            for round in 1...20 {
                #expect(try await reader.get("k", as: String.self) == "v\(round - 1)")
                #expect(try Self.nearValue(reader, "k") == "v\(round - 1)", "the read filled L1")
                try await writer.set("k", to: "v\(round)", ttl: .seconds(60))
                // The invalidation arrives within moments; until then the older value may be read, never after.
                var sawNew = false
                let deadline = ContinuousClock.now + .seconds(5)
                while ContinuousClock.now < deadline {
                    let value = try await reader.get("k", as: String.self)
                    if value == "v\(round)" { sawNew = true } else {
                        #expect(!sawNew, "read \(value ?? "nil") after v\(round)")
                        #expect(value == "v\(round - 1)")
                    }
                    if sawNew, try Self.nearValue(reader, "k") == "v\(round)" { break }
                    await Task.yield()
                }
                #expect(sawNew)
            }
            #expect(reader.nearCacheStatistics.invalidationMessages >= 20)
            try await reader.close()
            try await writer.close()
        }
    }

    @Test func anInvalidationArrivingDuringARedisReadKeepsItsResultOutOfL1() async throws {
        try await withRedisServer { server in
            let reader = try await Self.instance(server)
            let writer = try await Self.instance(server)
            try await writer.set("k", to: "old", ttl: .seconds(60))
            let messages = reader.nearCacheStatistics.invalidationMessages
            // Between the reader's GET and its fill, another instance writes and the invalidation is handled.
            reader.setFillHook { key in
                guard key == "k" else { return }
                try? await writer.set("k", to: "new", ttl: .seconds(60))
                _ = await eventually { reader.nearCacheStatistics.invalidationMessages > messages }
            }
            #expect(try await reader.get("k", as: String.self) == "old", "the value Redis held when it was read")
            reader.setFillHook(nil)
            #expect(try Self.nearValue(reader, "k") == nil, "the old value must not enter L1 after its invalidation")
            #expect(reader.nearCacheStatistics.refusedFills == 1)
            #expect(try await reader.get("k", as: String.self) == "new")
            try await reader.close()
            try await writer.close()
        }
    }

    @Test func anOwnWriteDuringARedisReadKeepsTheOlderValueOutOfL1() async throws {
        try await withRedisServer { server in
            let cache = try await Self.instance(server)
            try await cache.set("k", to: "old", ttl: .seconds(60))
            // The write entered L1 (and stays there: no echo); remove it, so the read goes to Redis.
            #expect(try Self.nearValue(cache, "k") == "old")
            cache.near.invalidate("k")
            // The read has its (old) reply; before it may fill L1, this instance writes and its write returns.
            cache.setFillHook { key in
                guard key == "k" else { return }
                try? await cache.set("k", to: "new", ttl: .seconds(60))
            }
            #expect(try await cache.get("k", as: String.self) == "old")
            cache.setFillHook(nil)
            // The older value the read got never entered; the write's own value left with it, since a read cannot
            // tell whether its value is older or newer than a write decided while it was in flight.
            #expect(try Self.nearValue(cache, "k") == nil)
            #expect(try await cache.get("k", as: String.self) == "new")
            try await cache.close()
        }
    }

    @Test func concurrentWritesOfTwoInstancesLeaveNoStaleEntry() async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server)
            let b = try await Self.instance(server)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (name, cache) in [("a", a), ("b", b)] {
                    group.addTask {
                        for i in 0..<200 {
                            try await cache.set("k\(i % 4)", to: "\(name)\(i)", ttl: .seconds(60))
                            _ = try await cache.get("k\((i + 1) % 4)", as: String.self)
                        }
                    }
                    group.addTask {
                        for i in 0..<400 { _ = try await cache.get("k\(i % 4)", as: String.self) }
                    }
                }
                try await group.waitForAll()
            }
            // Once the last invalidations are handled, both instances read what Redis holds, and keep reading it.
            let direct = try await RedisCache.connect(configuration: server.cacheConfiguration(namespace: "shared"), logger: quietLogger)
            let truth = try await (0..<4).asyncMap { try await direct.get("k\($0)", as: String.self) }
            try await direct.close()
            #expect(truth.allSatisfy { $0 != nil })
            for cache in [a, b] {
                for key in 0..<4 {
                    let settled5 = try await eventually(timeout: .seconds(2)) { try await cache.get("k\(key)", as: String.self) == truth[key] }
                    #expect(settled5)
                    for _ in 0..<10 { #expect(try await cache.get("k\(key)", as: String.self) == truth[key]) }
                }
            }
            try await a.close()
            try await b.close()
        }
    }

    @Test func killingTheTrackingConnectionEmptiesL1AndTrackingComesBack() async throws {
        try await withRedisServer { server in
            let reader = try await Self.instance(server)
            let writer = try await Self.instance(server)
            try await writer.set("k", to: "v1", ttl: .seconds(60))
            let settled6 = await eventually { reader.receivedInvalidationKeys >= 1 }
            #expect(settled6)
            #expect(try await reader.get("k", as: String.self) == "v1")
            #expect(try Self.nearValue(reader, "k") == "v1")
            let id = try #require(reader.trackingClientID)
            try await server.withRawConnection { _ = try await $0.send("CLIENT", "KILL", "ID", id) }
            // Written while the reader's tracking connection is dead: no invalidation reaches it.
            try await writer.set("k", to: "v2", ttl: .seconds(60))
            let settled7 = await eventually { reader.nearCacheStatistics.trackingSetUps >= 2 && reader.nearCacheStatistics.isCoherent }
            #expect(settled7)
            #expect(try await reader.get("k", as: String.self) == "v2")
            // Tracking works again.
            try await writer.set("k", to: "v3", ttl: .seconds(60))
            let settled8 = try await eventually { try await reader.get("k", as: String.self) == "v3" }
            #expect(settled8)
            #expect(reader.trackingClientID != id)
            try await reader.close()
            try await writer.close()
        }
    }

    @Test func aMissedPingDeadlineEmptiesL1AndTrackingComesBack() async throws {
        try await withRedisServer { server in
            let cache = try await Self.instance(server, namespace: "pingtest")
            try await cache.set("k", to: "v", ttl: .seconds(60))
            #expect(try await cache.get("k", as: String.self) == "v")
            #expect(try Self.nearValue(cache, "k") == "v")
            // A frozen server keeps the connection open but answers nothing: only the PING deadline notices.
            try server.pause()
            let paused = ContinuousClock.now
            let noticed = await eventually(timeout: .seconds(10)) { !cache.nearCacheStatistics.isCoherent }
            let atNotice = cache.nearCacheStatistics
            let waited = ContinuousClock.now - paused
            try server.resume()
            #expect(noticed)
            #expect(try Self.nearValue(cache, "k") == nil, "noticed after \(waited): \(atNotice)")
            let settled10 = await eventually(timeout: .seconds(10)) { cache.nearCacheStatistics.isCoherent && cache.nearCacheStatistics.trackingSetUps >= 2 }
            #expect(settled10)
            #expect(try await cache.get("k", as: String.self) == "v")
            try await cache.close()
        }
    }

    @Test func ttlOnlyCoherenceServesFromL1WithoutATrackingConnection() async throws {
        try await withRedisServer { server in
            var near = Self.near(maxTTL: .milliseconds(300))
            near.coherence = .ttlOnly
            let reader = try await Self.instance(server, near: near)
            let writer = try await Self.instance(server)
            #expect(reader.trackingClientID == nil)
            try await writer.set("k", to: "v1", ttl: .seconds(60))
            #expect(try await reader.get("k", as: String.self) == "v1")
            try await writer.set("k", to: "v2", ttl: .seconds(60))
            // Not told about the write: the older value is served until the L1 TTL cap, then the new one.
            #expect(try await reader.get("k", as: String.self) == "v1")
            try await Task.sleep(for: .milliseconds(350))
            #expect(try await reader.get("k", as: String.self) == "v2")
            // Its own writes apply at once.
            try await reader.set("k", to: "v3", ttl: .seconds(60))
            #expect(try await reader.get("k", as: String.self) == "v3")
            try await reader.close()
            try await writer.close()
        }
    }

    @Test func flushAllEmptiesL1() async throws {
        try await withRedisServer(.init(enableDebugCommand: true)) { server in
            let cache = try await Self.instance(server)
            try await cache.set("k", to: "v", ttl: .seconds(60))
            #expect(try await cache.get("k", as: String.self) == "v")
            #expect(try Self.nearValue(cache, "k") == "v")
            let flushes = cache.nearCacheStatistics.flushes
            try await server.withRawConnection { _ = try await $0.send("FLUSHALL") }
            let settled12 = await eventually { cache.nearCacheStatistics.flushes > flushes }
            #expect(settled12)
            #expect(try Self.nearValue(cache, "k") == nil)
            #expect(try await cache.get("k", as: String.self) == nil)
            try await cache.close()
        }
    }

    @Test func aRedisRestartEmptiesL1AndTrackingComesBack() async throws {
        try await withRedisServer { server in
            let cache = try await Self.instance(server)
            try await cache.set("k", to: "v", ttl: .seconds(60))
            #expect(try await cache.get("k", as: String.self) == "v")
            #expect(try Self.nearValue(cache, "k") == "v")
            try await server.restart(kill: true)
            // The restarted server is empty; the cached value must not come back from L1.
            let settled14 = await eventually(timeout: .seconds(10)) { cache.nearCacheStatistics.trackingSetUps >= 2 }
            #expect(settled14)
            #expect(try Self.nearValue(cache, "k") == nil)
            let settled15 = await eventually { (try? await cache.get("k", as: String.self)) == .some(nil) }
            #expect(settled15)
            try await cache.set("k", to: "w", ttl: .seconds(60))
            #expect(try await cache.get("k", as: String.self) == "w")
            #expect(try Self.nearValue(cache, "k") == "w")
            try await cache.close()
        }
    }

    @Test func aTagInvalidationRemovesTheTaggedKeysFromEveryL1() async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server)
            let b = try await Self.instance(server)
            try await a.set("p1", to: "x", ttl: .seconds(60), tags: ["product"])
            try await a.set("p2", to: "y", ttl: .seconds(60), tags: ["product"])
            for cache in [a, b] {
                #expect(try await cache.get("p1", as: String.self) == "x")
                #expect(try await cache.get("p2", as: String.self) == "y")
            }
            try await a.invalidate(tag: "product")
            #expect(try Self.nearValue(a, "p1") == nil && Self.nearValue(a, "p2") == nil, "at once on the invalidating instance")
            let settled17 = try await eventually { try Self.nearValue(b, "p1") == nil && Self.nearValue(b, "p2") == nil }
            #expect(settled17)
            #expect(try await b.get("p1", as: String.self) == nil)
            try await a.close()
            try await b.close()
        }
    }

    @Test func makeCacheBuildsTheTwoLevelCacheWhenANearCacheIsConfigured() async throws {
        try await withRedisServer { server in
            var configuration = server.cacheConfiguration(namespace: "made")
            configuration.nearCache = Self.near()
            let cache = try await makeCache(configuration, logger: quietLogger)
            let twoLevel = try #require(cache as? TwoLevelCache)
            #expect(twoLevel.nearCacheStatistics.isCoherent)
            try await cache.close()
        }
    }

    @Test func aServerThatRefusesClientTrackingIsReportedAsUnsupported() async throws {
        let user = RedisServer.Options.User(name: "app", password: "pw", rules: ["~*", "&*", "+@all", "-client|tracking"])
        try await withRedisServer(.init(users: [user])) { server in
            var configuration = server.cacheConfiguration(namespace: "refused")
            configuration.redisUsername = "app"
            configuration.redisPassword = "pw"
            configuration.nearCache = Self.near()
            let error = await #expect(throws: CacheError.self) { try await makeCache(configuration, logger: quietLogger) }
            #expect(error?.code == .unsupported)
            #expect(error?.message.contains("ttlOnly") == true)
            // TTL-only coherence needs no tracking.
            configuration.nearCache?.coherence = .ttlOnly
            let cache = try await makeCache(configuration, logger: quietLogger)
            try await cache.set("k", to: "v", ttl: .seconds(60))
            #expect(try await cache.get("k", as: String.self) == "v")
            try await cache.close()
        }
    }

    @Test func aWriteRedisRefusesStillRemovesTheKeyFromL1() async throws {
        // This user may read but not SET: its writes fail after reaching Redis, as a timed-out write may have run.
        let user = RedisServer.Options.User(name: "reader", password: "pw", rules: ["~*", "&*", "+@all", "-set"])
        try await withRedisServer(.init(users: [user])) { server in
            try await server.withRawConnection { _ = try await $0.send("SET", "shared:k", "\"v1\"") }
            var configuration = server.cacheConfiguration(namespace: "shared")
            configuration.redisUsername = "reader"
            configuration.redisPassword = "pw"
            configuration.nearCache = Self.near()
            let cache = try await TwoLevelCache.connect(configuration: configuration, logger: quietLogger)
            #expect(try await cache.get("k", as: String.self) == "v1")
            #expect(try Self.nearValue(cache, "k") == "v1")
            await #expect(throws: CacheError.self) { try await cache.set("k", to: "v2", ttl: .seconds(60)) }
            #expect(try Self.nearValue(cache, "k") == nil)
            try await cache.close()
        }
    }

    @Test func aFailSafeValueReadPlainlyStaysOutOfL1AndExpiresOnTime() async throws {
        let clock = TestClock()
        let cache = try await SharedRedisServer.makeTwoLevelCache(clock: clock)
        // Kept in Redis for an hour past its one-second time to live, for fail-safe.
        _ = try await cache.getOrSet("price", ttl: .seconds(1), options: .failSafe(gracePeriod: .seconds(3600))) { 42 }
        let echoes = await eventually { cache.receivedInvalidationKeys >= 1 }
        #expect(echoes)
        #expect(try await cache.get("price", as: Int.self) == 42)
        #expect(cache.nearValueForInspection("price", as: Int.self) == nil, "L1 cannot tell when a plain read of it expires")
        clock.advance(by: .seconds(2))
        #expect(try await cache.get("price", as: Int.self) == nil)
        try await cache.close()
    }

    @Test func anAbandonedCacheIsFreedAndEndsItsTrackingConnection() async throws {
        try await withRedisServer { server in
            try await expectAbandonedCacheEndsItsConnection(server, loop: "tracking loop") { try await Self.instance(server) }
        }
    }

    @Test func closeEndsTrackingAndLaterCallsThrow() async throws {
        try await withRedisServer { server in
            let cache = try await Self.instance(server)
            let id = try #require(cache.trackingClientID)
            try await cache.close()
            try await cache.close()
            let clients = try await server.withRawConnection { try await $0.send("CLIENT", "LIST").string ?? "" }
            #expect(!clients.contains("id=\(id) "))
            let error = await #expect(throws: CacheError.self) { try await cache.get("k", as: String.self) }
            #expect(error?.code == .closed)
        }
    }
}

extension Sequence where Element: Sendable {
    /// `map` with an async transform, in order.
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
