@testable import CacheLayer
import Testing

/// When a value this instance wrote may enter its L1 (`NearCache.storeWritten`), decided by the fill gate; no server
/// needed. The orders below are those the integration tests can only hope to hit: an invalidation (or the write's own
/// echo) handled before the acknowledgement, and two writes of this instance acknowledged out of order.
///
/// Results are bound to names before `#expect`: a failed expectation that mentions the near cache itself would make
/// swift-testing reflect its lock, which crashes the test process instead of reporting the failure.
@Suite("NearCache own writes")
struct NearCacheOwnWriteTests {
    static func nearCache(maxTTL: Duration = .seconds(300), isCoherent: Bool = true) throws -> NearCache {
        NearCache(memory: try makeTestMemoryCache(), maxTTL: maxTTL, isCoherent: isCoherent)
    }

    static func held(_ near: NearCache, _ key: String) throws -> String? {
        try near.memory.peekValue(key)?.value as? String
    }

    @Test func anAcknowledgedWriteEntersL1() throws {
        let near = try Self.nearCache()
        let stored = near.storeWritten("k", "v", stamp: near.stamp("k"), ttl: .seconds(60))
        let held = try Self.held(near, "k")
        #expect(stored)
        #expect(held == "v")
    }

    @Test func anInvalidationHandledWhileTheWriteWasUnderWayKeepsItOutAndRemovesTheKey() throws {
        let near = try Self.nearCache()
        _ = near.storeWritten("k", "older", stamp: near.stamp("k"), ttl: .seconds(60))
        let stamp = near.stamp("k")
        // Another client's write that ran after ours, or our own echo: either way, not safe to keep ours.
        near.invalidate("k")
        let stored = near.storeWritten("k", "v", stamp: stamp, ttl: .seconds(60))
        let held = try Self.held(near, "k")
        #expect(!stored)
        #expect(held == nil)
    }

    @Test func ofTwoOverlappingWritesOnlyTheFirstAcknowledgedMayFillAndTheOtherRemovesIt() throws {
        let near = try Self.nearCache()
        let first = near.stamp("k")
        let second = near.stamp("k")
        // Redis ran `first` then `second`, but `second`'s acknowledgement is handled first.
        let secondStored = near.storeWritten("k", "second", stamp: second, ttl: .seconds(60))
        let firstStored = near.storeWritten("k", "first", stamp: first, ttl: .seconds(60))
        let held = try Self.held(near, "k")
        #expect(secondStored)
        #expect(!firstStored)
        #expect(held == nil, "the older value must not stay")
    }

    // Writes sent on the tracking connection carry their send sequence: Redis ran them in that order.

    @Test func ofTwoOverlappingSequencedWritesAcknowledgedInOrderTheLastSentStays() throws {
        let near = try Self.nearCache()
        let first = near.stamp("k")
        let second = near.stamp("k")
        let firstStored = near.storeWritten("k", "first", stamp: first, sequence: 1, ttl: .seconds(60))
        let secondStored = near.storeWritten("k", "second", stamp: second, sequence: 2, ttl: .seconds(60))
        let held = try Self.held(near, "k")
        #expect(firstStored)
        #expect(secondStored, "the first write of this instance, run before it, does not refuse it")
        #expect(held == "second")
    }

    @Test func aSequencedWriteAcknowledgedAfterALaterOneOfTheSameKeyLeavesItsValue() throws {
        let near = try Self.nearCache()
        let first = near.stamp("k")
        let second = near.stamp("k")
        let secondStored = near.storeWritten("k", "second", stamp: second, sequence: 2, ttl: .seconds(60))
        let firstStored = near.storeWritten("k", "first", stamp: first, sequence: 1, ttl: .seconds(60))
        let held = try Self.held(near, "k")
        let invalidated = near.counters().invalidatedKeys
        #expect(secondStored)
        #expect(!firstStored)
        #expect(held == "second", "the older value must not come back, the newer may stay")
        #expect(invalidated == 0)
    }

    @Test func aSequencedWriteAcknowledgedAfterALaterOneOfAnotherKeyOfItsStripeRemovesItsKey() throws {
        let near = try Self.nearCache()
        let gate = NearCacheFillGate(isCoherent: true)
        let other = try #require((0..<100_000).lazy.map { "other-\($0)" }.first { gate.stripe(of: $0) == gate.stripe(of: "k") })
        _ = near.storeWritten("k", "older", stamp: near.stamp("k"), sequence: 1, ttl: .seconds(60))
        let mine = near.stamp("k")
        let later = near.stamp(other)
        _ = near.storeWritten(other, "x", stamp: later, sequence: 3, ttl: .seconds(60))
        // A later write of "k" may have been decided before the write of `other`: nothing tells, so "k" goes.
        let stored = near.storeWritten("k", "mine", stamp: mine, sequence: 2, ttl: .seconds(60))
        let held = try Self.held(near, "k")
        #expect(!stored)
        #expect(held == nil)
    }

    @Test func anInvalidationHandledWhileASequencedWriteWasUnderWayStillRefusesIt() throws {
        let near = try Self.nearCache()
        let first = near.stamp("k")
        let second = near.stamp("k")
        _ = near.storeWritten("k", "first", stamp: first, sequence: 1, ttl: .seconds(60))
        // Another client's write that ran after ours.
        near.invalidate("k")
        let stored = near.storeWritten("k", "second", stamp: second, sequence: 2, ttl: .seconds(60))
        let held = try Self.held(near, "k")
        #expect(!stored)
        #expect(held == nil)
    }

    @Test func aWriteThroughThePoolRefusesSequencedWritesStampedBeforeIt() throws {
        let near = try Self.nearCache()
        let sequenced = near.stamp("k")
        let pooled = near.stamp("k")
        // Sent while the tracking connection was down: its place in Redis's order is unknown.
        _ = near.storeWritten("k", "pooled", stamp: pooled, ttl: .seconds(60))
        let stored = near.storeWritten("k", "sequenced", stamp: sequenced, sequence: 1, ttl: .seconds(60))
        let held = try Self.held(near, "k")
        #expect(!stored)
        #expect(held == nil)
    }

    @Test func aSequencedWriteRefusesTheFillOfAReadInFlight() throws {
        let near = try Self.nearCache()
        let read = try #require(near.stamp("k"))
        _ = near.storeWritten("k", "new", stamp: near.stamp("k"), sequence: 1, ttl: .seconds(60))
        let filled = near.fill("k", "old", stamp: read, remainingMilliseconds: nil)
        let held = try Self.held(near, "k")
        #expect(!filled)
        // The read cannot tell whether its value ran before the write or after it (another instance's newer write):
        // the key leaves L1 (aReadRefusedAfterAWriteEnteredL1RemovesTheWrite).
        #expect(held == nil)
    }

    @Test func aFlushRefusesSequencedWritesStampedBeforeIt() throws {
        let near = try Self.nearCache()
        let stamp = near.stamp("k")
        near.flush()
        let stored = near.storeWritten("k", "v", stamp: stamp, sequence: 1, ttl: .seconds(60))
        let held = try Self.held(near, "k")
        #expect(!stored)
        #expect(held == nil)
    }

    @Test func aWriteRefusesTheFillOfAReadInFlight() throws {
        let near = try Self.nearCache()
        let read = try #require(near.stamp("k"))
        _ = near.storeWritten("k", "new", stamp: near.stamp("k"), ttl: .seconds(60))
        // The read got the value Redis held before the write.
        let filled = near.fill("k", "old", stamp: read, remainingMilliseconds: nil)
        let held = try Self.held(near, "k")
        #expect(!filled)
        #expect(held == nil, "a refused read leaves nothing older behind, and cannot know its value is the older")
    }

    @Test func nothingEntersL1WhileInvalidationsAreNotReceived() throws {
        let near = try Self.nearCache(isCoherent: false)
        let whileIncoherent = near.storeWritten("k", "v", stamp: near.stamp("k"), ttl: .seconds(60))
        near.setCoherent(true)
        let stamp = near.stamp("k")
        near.setCoherent(false)
        let afterLoss = near.storeWritten("k", "v", stamp: stamp, ttl: .seconds(60))
        let held = try Self.held(near, "k")
        #expect(!whileIncoherent)
        #expect(!afterLoss)
        #expect(held == nil)
    }

    /// L1 reads the kernel's coarse clock, which lags by up to its resolution; TTLs are shortened by as much, so an
    /// entry is never served past the TTL it was given (its remaining TTL in Redis).
    @Test func onTheCoarseClockEveryTTLIsShortenedByItsResolution() throws {
        var configuration = CacheConfiguration.default
        configuration.name = "test"
        let memory = try MemoryCache(configuration: configuration, clock: CoarseMonotonicCacheClock(), shardCount: 1, startSweeper: false)
        let resolution = memory.clockResolution
        #if os(Linux)
        #expect(resolution > .zero && resolution <= .milliseconds(10))
        #endif
        let near = NearCache(memory: memory, maxTTL: .seconds(10), isCoherent: true)
        _ = near.storeWritten("written", "v", stamp: near.stamp("written"), ttl: .seconds(1))
        _ = near.fill("read", "v", stamp: try #require(near.stamp("read")), remainingMilliseconds: 1000)
        let written = try #require(try memory.peekValue("written")?.remainingNanoseconds)
        let read = try #require(try memory.peekValue("read")?.remainingNanoseconds)
        let bound = UInt64((Duration.seconds(1) - resolution) / .nanoseconds(1))
        #expect(written <= bound)
        #expect(read <= bound)
        if resolution > .zero {
            // Less time left than the clock can tell apart: not cached at all.
            let tooShort = near.fill("brief", "v", stamp: try #require(near.stamp("brief")), remainingMilliseconds: 1)
            #expect(!tooShort)
        }
    }

    // A read that returned from Redis while a write of this instance was in flight may carry a newer value (another
    // instance's write that ran after ours, whose invalidation follows our acknowledgement but has not arrived yet).
    // This instance has returned that value, so L1 must not hold ours afterwards, in either order of the two.

    @Test(arguments: [UInt64(1), nil] as [UInt64?])
    func aWriteDecidedAfterAReadReturnedANewerValueDoesNotEnterL1(sequence: UInt64?) throws {
        let near = try Self.nearCache()
        let write = near.stamp("k")
        let read = try #require(near.stamp("k"))
        let filled = near.fill("k", "newer", stamp: read, remainingMilliseconds: nil)
        let stored = near.storeWritten("k", "older", stamp: write, sequence: sequence, ttl: .seconds(60))
        let held = try Self.held(near, "k")
        #expect(filled)
        #expect(!stored)
        #expect(held == nil, "the write's value is older than what the read returned")
    }

    @Test func aReadRefusedAfterAWriteEnteredL1RemovesTheWrite() throws {
        let near = try Self.nearCache()
        let read = try #require(near.stamp("k"))
        let stored = near.storeWritten("k", "mine", stamp: near.stamp("k"), sequence: 1, ttl: .seconds(60))
        // The read, stamped before the write was decided, may not fill; it returns its value all the same.
        let filled = near.fill("k", "newer", stamp: read, remainingMilliseconds: nil)
        let held = try Self.held(near, "k")
        #expect(stored)
        #expect(!filled)
        #expect(held == nil, "L1 must hold what the read returned or nothing")
    }

    @Test func aReadThatDoesNotFillRemovesTheKeyAndKeepsEarlierWritesOut() throws {
        let near = try Self.nearCache()
        _ = near.storeWritten("k", "mine", stamp: near.stamp("k"), sequence: 1, ttl: .seconds(60))
        let write = near.stamp("k")
        // A miss in Redis, or a value L1 does not keep (a fail-safe envelope, a read of the exact TTL).
        near.readReturned("k")
        let afterRead = try Self.held(near, "k")
        let stored = near.storeWritten("k", "next", stamp: write, sequence: 2, ttl: .seconds(60))
        let afterWrite = try Self.held(near, "k")
        #expect(afterRead == nil)
        #expect(!stored)
        #expect(afterWrite == nil)
    }

    @Test func theValueLivesAtMostItsTTLAndTheCap() throws {
        let near = try Self.nearCache(maxTTL: .seconds(10))
        _ = near.storeWritten("short", "v", stamp: near.stamp("short"), ttl: .seconds(2))
        _ = near.storeWritten("long", "v", stamp: near.stamp("long"), ttl: .seconds(3600))
        let short = try near.memory.peekValue("short")?.remainingNanoseconds
        let long = try near.memory.peekValue("long")?.remainingNanoseconds
        #expect(short == 2_000_000_000)
        #expect(long == 10_000_000_000)
    }
}
