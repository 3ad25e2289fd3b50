@testable import CacheLayer
import Foundation
import Testing

@Suite("MemoryCache")
struct MemoryCacheTests {
    // MARK: TTL

    @Test func expiredEntriesAreNeverReturnedAndCountAsMissAndExpiration() async throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(clock: clock)
        try await cache.set("k", to: "v", ttl: .seconds(10))
        #expect(try await cache.get("k", as: String.self) == "v")
        clock.advance(by: .seconds(9))
        #expect(try await cache.get("k", as: String.self) == "v")
        clock.advance(by: .seconds(1))
        #expect(try await cache.get("k", as: String.self) == nil)
        #expect(try await cache.exists("k") == false)
        let stats = await cache.stats()
        #expect(stats.hits == 2)
        #expect(stats.misses == 1)
        #expect(stats.expirations == 1)
        #expect(stats.entryCount == 0)
        #expect(stats.size == 0)
    }

    @Test func theSynchronousReadSeesThroughAFailSafeEnvelopeAsGetDoes() async throws {
        let cache = try makeTestMemoryCache()
        // Fail-safe stores the value in an envelope with its times; both reads must return the value itself.
        let stored = try await cache.getOrSet("k", as: String.self, ttl: .seconds(60), options: .failSafe(gracePeriod: .seconds(600))) { "v" }
        #expect(stored == "v")
        #expect(try await cache.get("k", as: String.self) == "v")
        #expect(try cache.getValue("k", as: String.self) == "v")
        // A value of another type is still a type mismatch for both.
        try await cache.set("n", to: 3)
        await #expect(throws: CacheError.self) { try await cache.get("n", as: String.self) }
        let error = #expect(throws: CacheError.self) { try cache.getValue("n", as: String.self) }
        #expect(error?.code == .typeMismatch)
    }

    @Test func existsReportsExpiredEntriesAsAbsentWithoutCountingReads() async throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(clock: clock)
        try await cache.set("k", to: 1, ttl: .milliseconds(5))
        #expect(try await cache.exists("k"))
        clock.advance(by: .milliseconds(5))
        #expect(try await cache.exists("k") == false)
        let stats = await cache.stats()
        #expect(stats.hits == 0 && stats.misses == 0)
        #expect(stats.expirations == 1)
    }

    @Test func sweepRemovesOnlyExpiredEntries() async throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(shardCount: 4, clock: clock)
        for index in 0..<100 {
            try await cache.set("short:\(index)", to: index, ttl: .seconds(1))
            try await cache.set("long:\(index)", to: index, ttl: .seconds(100))
            try await cache.set("forever:\(index)", to: index, ttl: .noExpiry)
        }
        #expect(cache.sweepExpired() == 0)
        clock.advance(by: .seconds(1))
        #expect(cache.sweepExpired() == 100)
        var stats = await cache.stats()
        #expect(stats.entryCount == 200)
        #expect(stats.expirations == 100)
        clock.advance(by: .seconds(1000))
        #expect(cache.sweepExpired() == 100)
        stats = await cache.stats()
        #expect(stats.entryCount == 100)
        #expect(try await cache.get("forever:7", as: Int.self) == 7)
    }

    @Test func sweepIgnoresOverwrittenExpiries() async throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(clock: clock)
        try await cache.set("k", to: "old", ttl: .seconds(1))
        try await cache.set("k", to: "new", ttl: .seconds(60))
        clock.advance(by: .seconds(2))
        #expect(cache.sweepExpired() == 0)
        #expect(try await cache.get("k", as: String.self) == "new")
    }

    @Test func backgroundSweeperRunsAndCloseStopsIt() async throws {
        let clock = ManualClock()
        var configuration = CacheConfiguration.default
        configuration.sweepInterval = .milliseconds(10)
        let cache = try MemoryCache(configuration: configuration, clock: clock, shardCount: nil, startSweeper: true)
        try await cache.set("k", to: "v", ttl: .seconds(1))
        clock.advance(by: .seconds(2))
        // Real time: other tests may keep the cooperative pool busy, so allow a generous deadline; the loop
        // normally ends after one sweep interval.
        let deadline = ContinuousClock.now + .seconds(120)
        while await cache.stats().expirations == 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(await cache.stats().expirations == 1)
        #expect(await cache.stats().entryCount == 0)

        #expect(cache.isSweeperRunning)
        try await cache.close()
        // close() awaited the task's end, so the sweeper is gone, not merely asked to stop.
        #expect(cache.isSweeperRunning == false)
        try await cache.close()
        await expectCacheError(.closed) { try await cache.get("k", as: String.self) }
    }

    @Test func nilTTLUsesTheConfiguredDefault() async throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(defaultTTL: .seconds(30), clock: clock)
        try await cache.set("k", to: "v")
        clock.advance(by: .seconds(29))
        #expect(try await cache.get("k", as: String.self) == "v")
        clock.advance(by: .seconds(1))
        #expect(try await cache.get("k", as: String.self) == nil)
    }

    @Test func nilTTLWithoutDefaultNeverExpires() async throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(defaultTTL: .noExpiry, clock: clock)
        try await cache.set("k", to: "v")
        clock.advance(by: .seconds(10_000_000))
        #expect(try await cache.get("k", as: String.self) == "v")
    }

    @Test func noExpiryOverridesTheDefault() async throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(defaultTTL: .seconds(1), clock: clock)
        try await cache.set("k", to: "v", ttl: .noExpiry)
        try await cache.set("longer", to: "v", ttl: .noExpiry * 2)
        clock.advance(by: .seconds(10_000_000))
        #expect(cache.sweepExpired() == 0)
        #expect(try await cache.get("k", as: String.self) == "v")
        #expect(try await cache.get("longer", as: String.self) == "v")
    }

    @Test(arguments: [Duration.zero, .seconds(-1), .nanoseconds(-1)])
    func zeroOrNegativeTTLIsRejected(ttl: Duration) async throws {
        let cache = try makeTestMemoryCache()
        await expectCacheError(.invalidTTL) { try await cache.set("k", to: "v", ttl: ttl) }
        #expect(await cache.stats().sets == 0)
    }

    @Test func subNanosecondTTLStillStoresTheValue() async throws {
        let cache = try makeTestMemoryCache()
        try await cache.set("k", to: "v", ttl: .nanoseconds(1) / 4)
        #expect(try await cache.get("k", as: String.self) == "v")
    }

    // MARK: Errors

    @Test func readingWithAnotherTypeThrowsTypeMismatch() async throws {
        let cache = try makeTestMemoryCache()
        try await cache.set("k", to: 42, ttl: nil)
        do {
            _ = try await cache.get("k", as: String.self)
            Issue.record("expected a type mismatch")
        } catch let error as CacheError {
            #expect(error.code == .typeMismatch)
            #expect(error.key == "k")
            #expect(error.message.contains("Int"))
            #expect(error.message.contains("String"))
        }
        #expect(try await cache.get("k", as: Int.self) == 42)
    }

    @Test func valueLargerThanTheWholeLimitIsRejected() async throws {
        let cache = try makeTestMemoryCache(maxMemorySize: 100)
        try await cache.set("small", to: "x", ttl: nil)
        await expectCacheError(.valueTooLarge) { try await cache.set("big", to: String(repeating: "a", count: 99), ttl: nil) }
        try await cache.set("exact", to: String(repeating: "a", count: 98), ttl: nil)   // 100 bytes with quotes
        #expect(try await cache.get("exact", as: String.self)?.count == 98)
        #expect(await cache.stats().size == 100)
    }

    @Test func valueLargerThanAShardButWithinTheLimitExplainsTheShards() async throws {
        let cache = try makeTestMemoryCache(maxMemorySize: 1000, shardCount: 4)
        do {
            try await cache.set("k", to: String(repeating: "a", count: 400), ttl: nil)
            Issue.record("expected valueTooLarge")
        } catch let error as CacheError {
            #expect(error.code == .valueTooLarge)
            #expect(error.message.contains("4 shards"))
        }
    }

    /// A shard records an entry's size in 32 bits, so a value of 4 GiB or more is refused even when the shard's
    /// share is larger, with a message that names that limit.
    @Test func valueOfFourGibibytesIsRejectedWhateverTheLimit() async throws {
        let cache = try makeTestMemoryCache(maxMemorySize: 1 << 34, shardCount: 1)
        do {
            try cache.setValue("k", "x", size: 1 << 32)
            Issue.record("expected valueTooLarge")
        } catch {
            #expect(error.code == .valueTooLarge)
            #expect(error.message.contains("4 GiB"))
        }
        try cache.setValue("k", "x", size: Int(UInt32.max))
        #expect(await cache.stats().size == Int(UInt32.max))
        #expect(await cache.stats().entryCount == 1)
    }

    @Test func automaticShardCountKeepsSmallCachesInOneShard() throws {
        #expect(MemoryCache.resolvedShardCount(nil, maxMemorySize: 1 << 20) == 1)
        #expect(MemoryCache.resolvedShardCount(nil, maxMemorySize: 8 << 20) == 2)
        #expect(MemoryCache.resolvedShardCount(nil, maxMemorySize: 100 << 20) == 16)
        #expect(MemoryCache.resolvedShardCount(nil, maxMemorySize: 1 << 40) == 16)
        #expect(MemoryCache.resolvedShardCount(5, maxMemorySize: 1 << 20) == 8)
        #expect(MemoryCache.resolvedShardCount(64, maxMemorySize: 10) == 8)
        #expect(MemoryCache.resolvedShardCount(0, maxMemorySize: 10) == 1)
    }

    @Test func everyOperationThrowsClosedAfterClose() async throws {
        let cache = try makeTestMemoryCache()
        try await cache.set("k", to: "v", ttl: nil)
        try await cache.close()
        try await cache.close()
        await expectCacheError(.closed) { try await cache.get("k", as: String.self) }
        await expectCacheError(.closed) { try await cache.set("k", to: "v", ttl: nil) }
        await expectCacheError(.closed) { try await cache.delete("k") }
        await expectCacheError(.closed) { try await cache.exists("k") }
        await expectCacheError(.closed) { try await cache.clear() }
        await expectCacheError(.closed) { try await cache.require("k", as: String.self) }
        #expect(await cache.stats().entryCount == 1)
    }

    @Test(arguments: ["", String(repeating: "k", count: CacheKey.maximumLength + 1)])
    func invalidKeysAreRejected(key: String) async throws {
        let cache = try makeTestMemoryCache()
        await expectCacheError(.invalidKey) { try await cache.get(key, as: String.self) }
        await expectCacheError(.invalidKey) { try await cache.set(key, to: "v", ttl: nil) }
        await expectCacheError(.invalidKey) { try await cache.delete(key) }
        await expectCacheError(.invalidKey) { try await cache.exists(key) }
        #expect(await cache.stats() == CacheStats())
    }

    @Test func keyOfMaximumLengthIsAccepted() async throws {
        let cache = try makeTestMemoryCache()
        let key = String(repeating: "k", count: CacheKey.maximumLength)
        try await cache.set(key, to: 1, ttl: nil)
        #expect(try await cache.get(key, as: Int.self) == 1)
    }

    @Test func invalidConfigurationIsRejected() {
        var configuration = CacheConfiguration.default
        configuration.maxMemorySize = 0
        #expect(throws: CacheError.self) { try MemoryCache(configuration: configuration) }
    }

    @Test func unencodableValueThrowsEncodingFailed() async throws {
        let cache = try makeTestMemoryCache()
        await expectCacheError(.encodingFailed) { try await cache.set("k", to: Double.nan, ttl: nil) }
    }

    // MARK: Stats and basic operations

    @Test func statsCountEveryOperationExactly() async throws {
        let cache = try makeTestMemoryCache()
        try await cache.set("a", to: "xyz", ttl: nil)         // 5 bytes
        try await cache.set("b", to: 12345, ttl: nil)         // 5 bytes
        try await cache.set("a", to: "xy", ttl: nil)          // overwrite: 4 bytes
        #expect(try await cache.get("a", as: String.self) == "xy")
        #expect(try await cache.get("b", as: Int.self) == 12345)
        #expect(try await cache.get("missing", as: Int.self) == nil)
        #expect(try await cache.exists("a"))
        #expect(try await cache.exists("missing") == false)
        try await cache.delete("b")
        try await cache.delete("missing")
        let stats = await cache.stats()
        #expect(stats == CacheStats(hits: 2, misses: 1, sets: 3, deletes: 2, evictions: 0, expirations: 0, size: 4, entryCount: 1))
        try await cache.clear()
        let cleared = await cache.stats()
        #expect(cleared.size == 0 && cleared.entryCount == 0 && cleared.sets == 3)
        #expect(try await cache.get("a", as: String.self) == nil)
    }

    @Test func requireThrowsMissForAbsentKeys() async throws {
        let cache = try makeTestMemoryCache()
        await expectCacheError(.miss) { try await cache.require("nothing", as: String.self) }
    }

    @Test func codableStructsRoundTripWithoutDecoding() async throws {
        struct Profile: Codable, Sendable, Equatable {
            var name: String
            var tags: [String]
        }
        let cache = try makeTestMemoryCache()
        let profile = Profile(name: "Ada", tags: ["x", "y/z"])
        try await cache.set("p", to: profile, ttl: nil)
        #expect(try await cache.get("p", as: Profile.self) == profile)
        #expect(await cache.stats().size == (try JSONCacheCodec().encode(profile).count))
    }

    @Test func customCodecSizesAreMeasuredByTheCodec() async throws {
        struct FixedSizeCodec: CacheCodec {
            func encode<Value: Encodable>(_ value: Value) throws -> [UInt8] { [UInt8](repeating: 0, count: 7) }
            func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8]) throws -> Value {
                throw CacheError(code: .decodingFailed, message: "unused")
            }
        }
        let cache = try makeTestMemoryCache(codec: FixedSizeCodec())
        try await cache.set("k", to: "a longer string than seven bytes", ttl: nil)
        #expect(await cache.stats().size == 7)
    }

    @Test func sizedSetChargesTheGivenSize() throws {
        let cache = try makeTestMemoryCache(maxMemorySize: 1000)
        try cache.setValue("k", 1, size: 600)
        try cache.setValue("j", 2, size: 600)
        #expect(cache.currentStats().size == 600)
        #expect(try cache.getValue("j", as: Int.self) == 2)
        #expect(try cache.getValue("k", as: Int.self) == nil)
    }
}

/// The expiry queue keeps one record per entry no later than its expiry; overwrites that push the expiry later
/// move the record only when it comes due.
@Suite("MemoryCache expiry records")
struct MemoryCacheExpiryRecordTests {
    @Test func anOverwriteWithALaterExpiryOutlivesTheFirstExpiry() async throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(clock: clock)
        try await cache.set("k", to: "first", ttl: .seconds(10))
        clock.advance(by: .seconds(5))
        try await cache.set("k", to: "second", ttl: .seconds(10))   // now expires at 15 s
        clock.advance(by: .seconds(6))                              // 11 s: the first record comes due
        #expect(cache.sweepExpired() == 0)
        #expect(try await cache.get("k", as: String.self) == "second")
        clock.advance(by: .seconds(4))                              // 15 s
        #expect(cache.sweepExpired() == 1)
        #expect(try await cache.get("k", as: String.self) == nil)
        #expect(cache.expiryRecordCount == 0)
    }

    @Test func anOverwriteWithAnEarlierExpiryExpiresThen() async throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(clock: clock)
        try await cache.set("k", to: "first", ttl: .seconds(10))
        try await cache.set("k", to: "second", ttl: .seconds(2))
        clock.advance(by: .seconds(2))
        #expect(cache.sweepExpired() == 1)
        #expect(await cache.stats().entryCount == 0)
    }

    @Test func anOverwriteWithoutExpiryNeverExpires() async throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(clock: clock)
        try await cache.set("k", to: "first", ttl: .seconds(1))
        try await cache.set("k", to: "second", ttl: .noExpiry)
        clock.advance(by: .seconds(2))
        #expect(cache.sweepExpired() == 0)
        #expect(cache.expiryRecordCount == 0)
        #expect(try await cache.get("k", as: String.self) == "second")
    }

    @Test func overwritesUnderAFixedTTLAddNoRecords() async throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(defaultTTL: .seconds(60), clock: clock)
        for round in 0..<1_000 {
            clock.advance(by: .milliseconds(10))
            try await cache.set("k\(round % 10)", to: round)
        }
        #expect(cache.expiryRecordCount == 10)
        // Each record comes due after its entry's last write has expired too.
        clock.advance(by: .seconds(61))
        #expect(cache.sweepExpired() == 10)
        #expect(cache.expiryRecordCount == 0)
    }
}

@Suite("MemoryCache clock")
struct CacheClockTests {
    /// Reads check expiry against the coarse clock and writes compute expiries from the precise one, so an entry
    /// can only be served late (by less than a tick), never expire early: that needs coarse ≤ precise, always.
    @Test func theCoarseClockIsNeverAheadOfThePreciseOneAndAtMostATickBehind() {
        for _ in 0..<10_000 {
            let coarse = CacheClockSource.monotonic.coarseNow()
            let precise = MonotonicCacheClock.now()
            #expect(coarse <= precise)
            // Generous: a tick is at most 10 ms on any kernel configuration; the rest is scheduling slack.
            #expect(precise - coarse < 1_000_000_000)
        }
    }

    @Test func anInjectedClockReadsTheSameEitherWay() {
        let clock = ManualClock()
        let source = CacheClockSource(clock)
        #expect(source.coarseNow() == source.now())
        clock.advance(by: .nanoseconds(1))
        #expect(source.coarseNow() == clock.now())
    }

    @Test func anEntryIsServedUntilItsTTLOnTheSystemClock() async throws {
        let cache = try MemoryCache(configuration: .default, clock: MonotonicCacheClock(), shardCount: 1, startSweeper: false)
        try await cache.set("k", to: "v", ttl: .seconds(60))
        #expect(try await cache.get("k", as: String.self) == "v")
        try await cache.set("short", to: "v", ttl: .milliseconds(1))
        try await Task.sleep(for: .milliseconds(30))
        #expect(try await cache.get("short", as: String.self) == nil)
    }
}
