@testable import CacheLayer
import CommonSupport
import Foundation
import RedisClient
import RedisTestSupport
import Synchronization
import Testing

/// What a two-level cache does with its own writes (they enter L1 when that is safe) and with concurrent misses of one
/// key (they share one read of Redis), against real redis-server processes, with both coherence mechanisms.
///
/// Waits are bound to a name before `#expect` (see `TwoLevelCacheTests`).
@Suite("TwoLevelCache own writes and shared misses")
struct NearCacheWritesAndMissesTests {
    static func instance(_ server: RedisServer, coherence: NearCacheConfiguration.Coherence) async throws -> TwoLevelCache {
        switch coherence {
        case .pubSub: try await PubSubCoherenceTests.instance(server)
        default: try await TwoLevelCacheTests.instance(server)
        }
    }

    static func nearValue(_ cache: TwoLevelCache, _ key: String) throws -> String? {
        try cache.near.memory.peekValue(key)?.value as? String
    }

    /// Returns once `observer` has applied an invalidation of a key `writer` writes now. Invalidations reach an
    /// instance in the order Redis ran the writes (tracking pushes on one connection; pub/sub messages in the order
    /// of their `PUBLISH`, which each writer sends before its `set` returns), so every write that finished before
    /// this call has been applied by `observer` when it returns.
    static func barrier(_ observer: TwoLevelCache, after writer: TwoLevelCache) async throws {
        let outcome = try await barrierOutcome(observer, after: writer, atMost: .seconds(10))
        #expect(outcome == .changed)
    }

    /// How the wait of ``barrier(_:after:)`` ended, waiting at most `timeout`.
    static func barrierOutcome(
        _ observer: TwoLevelCache, after writer: TwoLevelCache, atMost timeout: Duration
    ) async throws -> KeyChangeWaiters.Outcome {
        // A key of its own each time, so that no late invalidation of an earlier barrier wakes this one.
        let key = "barrier-\(UUID().uuidString)"
        let waiters = observer.near.changeWaiters
        let waiting = Task { await waiters.wait(for: key, atMost: timeout) }
        let registered = await eventually { waiters.waitingCount > 0 }
        #expect(registered)
        try await writer.set(key, to: "x", ttl: .seconds(60))
        return await waiting.value
    }

    // MARK: own writes

    /// The premise of not counting echoes: Redis sends one BCAST invalidation per key per event-loop iteration,
    /// whoever wrote it how often, so the invalidation of this instance's write cannot be told apart from that of
    /// another client's write that ran just after it. (Were it consumed as "our echo", that other value would be
    /// missed and ours served for good.)
    @Test func trackingSendsOneInvalidationForTwoWritesOfAKeyInOneEventLoopIteration() async throws {
        try await withRedisServer { server in
            let cache = try await Self.instance(server, coherence: .tracking)
            let writer = try await Self.instance(server, coherence: .tracking)
            let key = writer.redis.keyspace.key("k")
            // A tracking connection lost meanwhile (a PING late on a loaded machine) empties L1 and wakes the barrier
            // early; such an attempt counts nothing, so it is made again.
            var counted: UInt64?
            for _ in 0..<5 where counted == nil {
                let before = cache.receivedInvalidationKeys
                let flushes = cache.nearCacheStatistics.flushes
                // MULTI runs both writes in one iteration.
                let replies = try await writer.redis.runPipeline(
                    [RedisCommand("MULTI"), RedisCommand("SET", key, "a"), RedisCommand("SET", key, "b"), RedisCommand("EXEC")], key: "k"
                )
                #expect(replies.count == 4)
                try await Self.barrier(cache, after: writer)
                // The barrier's waiter wakes when its key leaves L1, just before the tracker counts the message's keys;
                // the invalidations of k came before it on the same connection, so once the barrier's key is counted,
                // so are they.
                _ = await eventually { cache.receivedInvalidationKeys - before >= 2 }
                if cache.nearCacheStatistics.flushes == flushes { counted = cache.receivedInvalidationKeys - before }
            }
            #expect(counted == 2, "one for both writes of k, one for the barrier")
            try await cache.close()
            try await writer.close()
        }
    }

    @Test func anOwnWriteStaysInL1WithPubSubCoherenceUntilAnotherInstanceWrites() async throws {
        try await withRedisServer { server in
            let cache = try await Self.instance(server, coherence: .pubSub)
            let other = try await Self.instance(server, coherence: .pubSub)
            try await cache.set("k", to: "mine", ttl: .seconds(60))
            #expect(try Self.nearValue(cache, "k") == "mine")
            let roundTrips = cache.redis.roundTrips
            for _ in 0..<20 { #expect(try await cache.get("k", as: String.self) == "mine") }
            #expect(cache.redis.roundTrips == roundTrips, "served by L1")
            // Its own message comes back on the channel and is ignored: the value is still there after it.
            try await Self.barrier(cache, after: other)
            try await other.set("k", to: "theirs", ttl: .seconds(60))
            let dropped = await eventually { (try? Self.nearValue(cache, "k")) == nil }
            #expect(dropped)
            #expect(try await cache.get("k", as: String.self) == "theirs")
            try await cache.close()
            try await other.close()
        }
    }

    @Test func anOwnWriteTakesTheL1TTLOfItsRedisTTLAndTheCap() async throws {
        try await withRedisServer { server in
            let cache = try await Self.instance(server, coherence: .pubSub)
            try await cache.set("short", to: "v", ttl: .milliseconds(300))
            try await cache.set("forever", to: "v", ttl: .noExpiry)
            let short = try #require(try cache.near.memory.peekValue("short")?.remainingNanoseconds)
            let forever = try #require(try cache.near.memory.peekValue("forever")?.remainingNanoseconds)
            #expect(short <= 300_000_000)
            #expect(forever <= 300_000_000_000 && forever > 200_000_000_000, "capped by maxTTL (300 s)")
            try await Task.sleep(for: .milliseconds(400))
            #expect(try await cache.get("short", as: String.self) == nil)
            try await cache.close()
        }
    }

    /// Two instances, three writer tasks each, writing the same two keys while readers read them; after quiescence
    /// (every invalidation applied) no L1 holds anything but what Redis holds. Many short rounds, since what is checked
    /// is the race of each round's last writes. Run with both coherence mechanisms, since own writes enter L1 under both
    /// (and stay there under pub/sub, where this instance's concurrent writes acknowledged out of order would leave the
    /// older value without the fill gate).
    @Test(arguments: [NearCacheConfiguration.Coherence.tracking, .pubSub])
    func concurrentWritesLeaveOnlyTheNewestValueInEveryL1(coherence: NearCacheConfiguration.Coherence) async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server, coherence: coherence)
            let b = try await Self.instance(server, coherence: coherence)
            let direct = try await RedisCache.connect(configuration: server.cacheConfiguration(namespace: "shared"), logger: quietLogger)
            let keys = ["k0", "k1"]
            for round in 0..<20 {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (name, cache) in [("a", a), ("b", b)] {
                        for writer in 0..<3 {
                            group.addTask {
                                for i in 0..<8 {
                                    try await cache.set(keys[(i + writer) % 2], to: "\(round)\(name)\(writer)-\(i)", ttl: .seconds(60))
                                    _ = try await cache.get(keys[i % 2], as: String.self)
                                }
                            }
                        }
                        group.addTask {
                            for i in 0..<16 { _ = try await cache.get(keys[i % 2], as: String.self) }
                        }
                    }
                    try await group.waitForAll()
                }
                try await Self.barrier(a, after: b)
                try await Self.barrier(b, after: a)
                let truth = try await keys.asyncMap { try await direct.get($0, as: String.self) }
                for (name, cache) in [("a", a), ("b", b)] {
                    for (index, key) in keys.enumerated() {
                        let held = try Self.nearValue(cache, key)
                        #expect(held == nil || held == truth[index], "round \(round): \(name)'s L1 holds \(held ?? "nil") for \(key), Redis \(truth[index] ?? "nil")")
                        #expect(try await cache.get(key, as: String.self) == truth[index])
                    }
                }
            }
            try await direct.close()
            try await a.close()
            try await b.close()
        }
    }

    // MARK: shared misses

    @Test func concurrentMissesOfAKeyShareOneRead() async throws {
        try await withRedisServer { server in
            let cache = try await Self.instance(server, coherence: .tracking)
            let writer = try await Self.instance(server, coherence: .tracking)
            try await writer.set("k", to: "v", ttl: .seconds(60))
            try await Self.barrier(cache, after: writer)
            let roundTrips = cache.redis.roundTrips
            // The first read holds its result until the nine others have missed too (and joined it).
            cache.setFillHook { _ in
                _ = await eventually { cache.missFlights.waitingCount >= 9 }
            }
            let values = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<10 { group.addTask { try await cache.get("k", as: String.self) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            cache.setFillHook(nil)
            #expect(values == Array(repeating: "v", count: 10))
            #expect(cache.redis.roundTrips - roundTrips == 1)
            #expect(cache.nearCacheStatistics.coalescedMisses == 9)
            #expect(try Self.nearValue(cache, "k") == "v")
            try await cache.close()
            try await writer.close()
        }
    }

    /// A read that starts after an invalidation of its key may not take the result of a read that started before:
    /// that result may be older than the value the invalidation announced.
    @Test func aMissAfterAnInvalidationDoesNotJoinAReadStartedBeforeIt() async throws {
        try await withRedisServer { server in
            let cache = try await Self.instance(server, coherence: .tracking)
            let writer = try await Self.instance(server, coherence: .tracking)
            try await writer.set("k", to: "old", ttl: .seconds(60))
            try await Self.barrier(cache, after: writer)
            let hooked = Atomic<Bool>(false)
            // nil until the second read returns; then what it returned.
            let later = Locked<String??>(nil)
            cache.setFillHook { key in
                guard key == "k", !hooked.exchange(true, ordering: .relaxed) else { return }
                // The first read has "old"; another instance writes, its invalidation is applied, and a second read
                // of this instance starts while the first is still in flight.
                try? await writer.set("k", to: "new", ttl: .seconds(60))
                try? await Self.barrier(cache, after: writer)
                Task {
                    let value = try? await cache.get("k", as: String.self)
                    later.withLock { $0 = .some(value) }
                }
                // Bounded: had the second read joined the first, it would wait for this hook to return.
                let done = await eventually(timeout: .seconds(3)) { later.withLock { $0 != nil } }
                #expect(done, "the second read waited for the first")
            }
            #expect(try await cache.get("k", as: String.self) == "old", "what Redis held when the first read ran")
            cache.setFillHook(nil)
            let settled = await eventually { later.withLock { $0 != nil } }
            #expect(settled)
            #expect(later.withLock { $0 } == .some("new"))
            #expect(try Self.nearValue(cache, "k") != "old")
            try await cache.close()
            try await writer.close()
        }
    }
}
