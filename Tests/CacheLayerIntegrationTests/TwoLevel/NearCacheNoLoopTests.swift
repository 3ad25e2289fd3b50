@testable import CacheLayer
import Foundation
import RedisClient
import RedisTestSupport
import Testing

/// A two-level cache's own writes on a single Redis server go on its tracking connection, which has tracking on with
/// `NOLOOP`: they do not come back as invalidations of their own values in L1 (no echo), while every write that ran
/// after them still does. Several instances in this process against real redis-server processes.
///
/// Waits are bound to a name before `#expect` (see `TwoLevelCacheTests`).
@Suite("TwoLevelCache own writes without echoes (NOLOOP)")
struct NearCacheNoLoopTests {
    static func instance(_ server: RedisServer) async throws -> TwoLevelCache {
        try await TwoLevelCacheTests.instance(server)
    }

    static func nearValue(_ cache: TwoLevelCache, _ key: String) throws -> String? {
        try TwoLevelCacheTests.nearValue(cache, key)
    }

    static func barrier(_ observer: TwoLevelCache, after writer: TwoLevelCache) async throws {
        try await NearCacheWritesAndMissesTests.barrier(observer, after: writer)
    }

    /// ``barrier(_:after:)``, unless `observer`'s tracking connection is lost meanwhile (a PING late behind writes
    /// held by `CLIENT PAUSE`): its loss empties L1 and wakes the barrier's waiter early, and the barrier's own
    /// invalidation may be lost with it. Returns whether the barrier passed with tracking kept throughout.
    static func barrierUnlessTrackingLost(_ observer: TwoLevelCache, after writer: TwoLevelCache) async throws -> Bool {
        let coherent = await eventually { observer.nearCacheStatistics.isCoherent }
        #expect(coherent)
        let before = observer.nearCacheStatistics
        let outcome = try await NearCacheWritesAndMissesTests.barrierOutcome(observer, after: writer, atMost: .seconds(3))
        let after = observer.nearCacheStatistics
        guard after.isCoherent, after.trackingSetUps == before.trackingSetUps, after.flushes == before.flushes else { return false }
        #expect(outcome == .changed)
        return outcome == .changed
    }

    /// Whether `cache`'s L1 comes to hold, for `key`, nothing or `truth` (nothing older than Redis), within
    /// `eventually`'s time.
    static func nearCacheSettles(_ cache: TwoLevelCache, _ key: String, on truth: String?) async -> Bool {
        await eventually {
            do {
                let held = try Self.nearValue(cache, key)
                return held == nil || held == truth
            } catch {
                return false
            }
        }
    }

    /// Whether a held write failed because the tracking connection carrying it was lost (its PING late behind the held
    /// writes); any other error is rethrown.
    static func lostTracking(_ result: Result<Void, any Error>) throws -> Bool {
        guard case .failure(let error) = result else { return false }
        if let error = error as? CacheError, error.code == .unavailable { return true }
        throw error
    }

    /// Sends `arguments` on a connection of its own.
    static func command(_ server: RedisServer, _ arguments: String...) async throws {
        _ = try await RedisCluster.command(server, arguments)
    }

    @Test func anOwnWriteStaysInL1AfterEveryInvalidationOfItsTimeArrived() async throws {
        try await withRedisServer { server in
            let cache = try await Self.instance(server)
            let other = try await Self.instance(server)
            var checked = 0
            for round in 0..<10 {
                let flushes = cache.nearCacheStatistics.flushes
                try await cache.set("k", to: "mine\(round)", ttl: .seconds(60))
                let invalidated = cache.nearCacheStatistics.invalidatedKeys
                // Had the write an echo, it would be applied before the barrier's invalidation (one connection, in
                // the order Redis ran the writes); and give a late one time besides.
                try await Self.barrier(cache, after: other)
                try await Task.sleep(for: .milliseconds(50))
                // A tracking connection lost meanwhile (a PING late on a loaded machine) empties L1: such a round
                // tells nothing.
                guard cache.nearCacheStatistics.flushes == flushes else { continue }
                #expect(try Self.nearValue(cache, "k") == "mine\(round)", "round \(round): \(cache.nearCacheStatistics)")
                #expect(cache.nearCacheStatistics.invalidatedKeys == invalidated + 1, "only the barrier's key")
                checked += 1
            }
            #expect(checked >= 5)
            let roundTrips = cache.redis.roundTrips
            let nearHits = cache.nearCacheStatistics.nearHits
            for _ in 0..<20 { #expect(try await cache.get("k", as: String.self) == "mine9") }
            #expect(cache.redis.roundTrips == roundTrips, "served by L1")
            #expect(cache.nearCacheStatistics.nearHits == nearHits + 20)
            try await cache.close()
            try await other.close()
        }
    }

    @Test func anotherInstancesWriteAfterOursRemovesOursFromL1() async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server)
            let b = try await Self.instance(server)
            for round in 0..<20 {
                try await a.set("k", to: "a\(round)", ttl: .seconds(60))
                #expect(try Self.nearValue(a, "k") == "a\(round)")
                try await b.set("k", to: "b\(round)", ttl: .seconds(60))
                try await Self.barrier(a, after: b)
                #expect(try Self.nearValue(a, "k") == nil, "round \(round)")
                #expect(try await a.get("k", as: String.self) == "b\(round)")
            }
            try await a.close()
            try await b.close()
        }
    }

    /// Both orders of this instance's write and another client's in one event-loop iteration (`CLIENT PAUSE WRITE`
    /// holds both, and its end runs them together): when the other client's ran last, Redis announces it; when ours
    /// did, it announces nothing to us, and ours is the newest. Either way L1 ends as Redis.
    @Test(arguments: [true, false])
    func writesOfOneEventLoopIterationLeaveL1AsRedis(oursFirst: Bool) async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server)
            let b = try await Self.instance(server)
            for round in 0..<5 {
                try await a.set("k", to: "start", ttl: .seconds(60))
                try await Self.command(server, "CLIENT", "PAUSE", "100", "WRITE")
                let (firstCache, firstValue) = oursFirst ? (a, "a\(round)") : (b, "b\(round)")
                let (secondCache, secondValue) = oursFirst ? (b, "b\(round)") : (a, "a\(round)")
                let first = Task { try await firstCache.set("k", to: firstValue, ttl: .seconds(60)) }
                try await Task.sleep(for: .milliseconds(20))
                let second = Task { try await secondCache.set("k", to: secondValue, ttl: .seconds(60)) }
                try await first.value
                try await second.value
                try await Self.barrier(a, after: b)
                let truth = try await b.redis.get("k", as: String.self)
                #expect(truth == secondValue, "the pause kept the order")
                let held = try Self.nearValue(a, "k")
                #expect(held == nil || held == truth, "round \(round): L1 holds \(held ?? "nil"), Redis \(truth ?? "nil")")
                #expect(try await a.get("k", as: String.self) == truth)
            }
            try await a.close()
            try await b.close()
        }
    }

    /// Two instances writing one key back to back from several tasks each, readers alongside; after each round every
    /// L1 agrees with Redis.
    @Test func backToBackWritesOfOneKeyByTwoInstancesEndWithEveryL1AgreeingWithRedis() async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server)
            let b = try await Self.instance(server)
            for round in 0..<30 {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (name, cache) in [("a", a), ("b", b)] {
                        for writer in 0..<3 {
                            group.addTask {
                                for i in 0..<10 { try await cache.set("k", to: "\(round)\(name)\(writer)-\(i)", ttl: .seconds(60)) }
                            }
                        }
                        group.addTask {
                            for _ in 0..<20 { _ = try await cache.get("k", as: String.self) }
                        }
                    }
                    try await group.waitForAll()
                }
                let truth = try await a.redis.get("k", as: String.self)
                for (name, cache) in [("a", a), ("b", b)] {
                    let agrees = try await eventually {
                        let held = try Self.nearValue(cache, "k")
                        return held == nil || held == truth
                    }
                    let held = try Self.nearValue(cache, "k")
                    #expect(agrees, "round \(round): \(name)'s L1 holds \(held ?? "nil"), Redis \(truth ?? "nil")")
                    #expect(try await cache.get("k", as: String.self) == truth)
                }
            }
            try await a.close()
            try await b.close()
        }
    }

    /// Two writes of one key by one instance held together by Redis (`CLIENT PAUSE WRITE`), so that both are in flight
    /// at once: Redis runs them in the order they were sent on the tracking connection, and L1 ends with the last one
    /// sent, rather than without the key (each refusing the other). Before sequenced writes, the second acknowledged was
    /// refused by the first and removed the key.
    @Test func overlappingOwnWritesOfAKeyLeaveTheLastSentInL1() async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server)
            let b = try await Self.instance(server)
            var checked = 0
            for round in 0..<8 {
                try await a.set("k", to: "start", ttl: .seconds(60))
                let flushes = a.nearCacheStatistics.flushes
                try await Self.command(server, "CLIENT", "PAUSE", "100", "WRITE")
                let first = Task { try await a.set("k", to: "first\(round)", ttl: .seconds(60)) }
                try await Task.sleep(for: .milliseconds(20))
                let second = Task { try await a.set("k", to: "second\(round)", ttl: .seconds(60)) }
                // The tracking PING waits behind the held writes: on a loaded machine it may miss its deadline, which
                // closes the connection and fails the writes (`unavailable`); such a round only checks L1 below.
                let firstLost = try Self.lostTracking(await first.result)
                let secondLost = try Self.lostTracking(await second.result)
                let failed = firstLost || secondLost
                let settled = try await Self.barrierUnlessTrackingLost(a, after: b)
                let truth = try await b.redis.get("k", as: String.self)
                if !failed { #expect(truth == "second\(round)", "sent in that order on one connection") }
                // A tracking connection lost meanwhile (a PING late on a loaded machine) empties L1: such a round
                // tells only that L1 holds nothing older.
                guard settled, !failed, a.nearCacheStatistics.flushes == flushes else {
                    let agrees = await Self.nearCacheSettles(a, "k", on: truth)
                    #expect(agrees, "round \(round)")
                    continue
                }
                let held = try Self.nearValue(a, "k")
                #expect(held == truth, "round \(round): the last write sent stays in L1; L1 holds \(held ?? "nil"), Redis \(truth ?? "nil")")
                checked += 1
            }
            #expect(checked >= 4)
            try await a.close()
            try await b.close()
        }
    }

    /// Another instance's write sent between two writes of this instance (or after both), all three held together by
    /// Redis (`CLIENT PAUSE WRITE`; on release it runs each client's queued commands in turn, so the other instance's
    /// may run before, between or after ours): whichever ran last, once the invalidations of their time have arrived,
    /// L1 holds nothing older than Redis.
    @Test(arguments: [true, false])
    func anotherInstancesWriteAmongOverlappingOwnWritesLeavesL1AsRedis(othersSentLast: Bool) async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server)
            let b = try await Self.instance(server)
            for round in 0..<5 {
                try await a.set("k", to: "start", ttl: .seconds(60))
                try await Self.command(server, "CLIENT", "PAUSE", "100", "WRITE")
                let first = Task { try await a.set("k", to: "a-first\(round)", ttl: .seconds(60)) }
                try await Task.sleep(for: .milliseconds(15))
                let (middleCache, middleValue) = othersSentLast ? (a, "a-second\(round)") : (b, "b\(round)")
                let (lastCache, lastValue) = othersSentLast ? (b, "b\(round)") : (a, "a-second\(round)")
                let middle = Task { try await middleCache.set("k", to: middleValue, ttl: .seconds(60)) }
                try await Task.sleep(for: .milliseconds(15))
                let last = Task { try await lastCache.set("k", to: lastValue, ttl: .seconds(60)) }
                // As above: a round whose tracking connection was lost only checks L1.
                let firstLost = try Self.lostTracking(await first.result)
                let middleLost = try Self.lostTracking(await middle.result)
                let lastLost = try Self.lostTracking(await last.result)
                let failed = firstLost || middleLost || lastLost
                let settled = try await Self.barrierUnlessTrackingLost(a, after: b)
                let truth = try await b.redis.get("k", as: String.self)
                if !failed {
                    #expect(truth == "b\(round)" || truth == "a-second\(round)", "a's two writes ran in the order sent")
                }
                if settled {
                    let held = try Self.nearValue(a, "k")
                    #expect(held == nil || held == truth, "round \(round): L1 holds \(held ?? "nil"), Redis \(truth ?? "nil")")
                } else {
                    // Tracking lost and set up again: L1 was emptied, and nothing older may have come back since.
                    let agrees = await Self.nearCacheSettles(a, "k", on: truth)
                    #expect(agrees, "round \(round)")
                }
                #expect(try await a.get("k", as: String.self) == truth)
            }
            try await a.close()
            try await b.close()
        }
    }

    /// While tracking cannot be set up, writes go through the pool and L1 is not used; once it is back, own writes stay
    /// in L1 again and another instance's write still reaches it.
    @Test func writesGoThroughThePoolWhileTheTrackingConnectionIsDown() async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server)
            let b = try await Self.instance(server)
            try await a.set("k", to: "a0", ttl: .seconds(60))
            #expect(try Self.nearValue(a, "k") == "a0")
            let id = try #require(a.trackingClientID)
            // The pooled connections may go on writing; only tracking is refused from now on.
            try await Self.command(server, "ACL", "SETUSER", "default", "-client|tracking")
            try await Self.command(server, "CLIENT", "KILL", "ID", "\(id)")
            let lost = await eventually { !a.nearCacheStatistics.isCoherent && a.trackingClientID == nil }
            #expect(lost)
            #expect(try Self.nearValue(a, "k") == nil, "L1 emptied")
            for round in 1...5 {
                try await a.set("k", to: "a\(round)", ttl: .seconds(60))
                #expect(try await a.get("k", as: String.self) == "a\(round)")
                try await b.set("k", to: "b\(round)", ttl: .seconds(60))
                #expect(try await a.get("k", as: String.self) == "b\(round)")
                #expect(try Self.nearValue(a, "k") == nil, "no fills while tracking is down")
                #expect(a.trackingClientID == nil)
            }
            try await Self.command(server, "ACL", "SETUSER", "default", "+client|tracking")
            let back = await eventually { a.nearCacheStatistics.isCoherent }
            #expect(back)
            try await a.set("k", to: "a6", ttl: .seconds(60))
            try await Self.barrier(a, after: b)
            #expect(try Self.nearValue(a, "k") == "a6")
            try await b.set("k", to: "b6", ttl: .seconds(60))
            try await Self.barrier(a, after: b)
            #expect(try Self.nearValue(a, "k") == nil)
            #expect(try await a.get("k", as: String.self) == "b6")
            try await a.close()
            try await b.close()
        }
    }

    /// A write held by Redis (`CLIENT PAUSE WRITE`) when its connection, the tracking connection, is killed: it fails as
    /// a pooled write whose connection is lost does, and L1 holds nothing Redis may not have.
    @Test func aWriteInFlightWhenTheTrackingConnectionIsKilledLeavesNothingInL1() async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server)
            try await a.set("k", to: "old", ttl: .seconds(60))
            let id = try #require(a.trackingClientID)
            try await Self.command(server, "CLIENT", "PAUSE", "300", "WRITE")
            let write = Task { try await a.set("k", to: "new", ttl: .seconds(60)) }
            try await Task.sleep(for: .milliseconds(50))
            try await Self.command(server, "CLIENT", "KILL", "ID", "\(id)")
            let outcome = await write.result
            let error = try #require(outcome.error as? CacheError)
            #expect(error.code == .unavailable)
            #expect(try Self.nearValue(a, "k") == nil)
            let settled = await eventually(timeout: .seconds(2)) { a.nearCacheStatistics.isCoherent && a.trackingClientID != id }
            #expect(settled)
            #expect(try await a.get("k", as: String.self) == "old", "the killed client's postponed write never ran")
            try await a.close()
        }
    }

    /// A `set` whose task is cancelled while its command waits on the tracking connection: cancelling it there would
    /// close the connection (its reply could no longer be matched) and empty L1, so the command runs to its reply.
    @Test func cancellingASetInFlightKeepsTheTrackingConnection() async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server)
            try await a.set("other", to: "x", ttl: .seconds(60))
            let id = a.trackingClientID
            let flushes = a.nearCacheStatistics.flushes
            try await Self.command(server, "CLIENT", "PAUSE", "100", "WRITE")
            let write = Task { try await a.set("k", to: "v", ttl: .seconds(60)) }
            try await Task.sleep(for: .milliseconds(20))
            write.cancel()
            _ = await write.result
            // A closed connection is noticed within moments; give it longer than the pause had left.
            let lost = await eventually(timeout: .milliseconds(300)) {
                a.nearCacheStatistics.flushes != flushes || a.trackingClientID != id
            }
            #expect(!lost, "\(a.nearCacheStatistics)")
            #expect(try Self.nearValue(a, "other") == "x")
            #expect(try await a.redis.get("k", as: String.self) == "v", "the write ran")
            try await a.close()
        }
    }
}

extension Result {
    fileprivate var error: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
