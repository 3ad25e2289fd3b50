@testable import CacheLayer
import Foundation
import Synchronization
import Testing

@Suite("MemoryCache: add if absent, TTLs and bytes")
struct MemoryCacheEntryOperationsTests {
    @Test func setIfAbsentStoresOnlyWhileNoLiveValueIsStored() async throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(clock: clock)
        #expect(try await cache.setIfAbsent("k", to: "first", ttl: .seconds(10)))
        #expect(try await cache.setIfAbsent("k", to: "second", ttl: .seconds(10)) == false)
        #expect(try await cache.get("k", as: String.self) == "first")
        // An expired value is as good as absent.
        clock.advance(by: .seconds(10))
        #expect(try await cache.setIfAbsent("k", to: "third", ttl: .seconds(10)))
        #expect(try await cache.get("k", as: String.self) == "third")
        let stats = await cache.stats()
        #expect(stats.sets == 2)
        #expect(stats.expirations == 1)
        #expect(stats.entryCount == 1)
    }

    @Test func setIfAbsentStoresExactlyOnceUnderConcurrency() async throws {
        let cache = try makeTestMemoryCache(shardCount: 4)
        for round in 0..<20 {
            let key = "race:\(round)"
            let winners = try await withThrowingTaskGroup(of: Bool.self) { group in
                for writer in 0..<16 {
                    group.addTask { try await cache.setIfAbsent(key, to: writer, ttl: nil) }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(winners == 1)
        }
    }

    @Test func setIfAbsentRefusesValuesLargerThanTheCache() async throws {
        let cache = try makeTestMemoryCache(maxMemorySize: 64)
        await expectCacheError(.valueTooLarge) { try await cache.setIfAbsent("k", to: String(repeating: "x", count: 100), ttl: nil) }
        #expect(try await cache.exists("k") == false)
    }

    @Test func setKeepingTTLKeepsTheExpiryOfTheReplacedValue() async throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(defaultTTL: .seconds(3600), clock: clock)
        try await cache.set("k", to: 1, ttl: .seconds(10))
        clock.advance(by: .seconds(4))
        try await cache.setKeepingTTL("k", to: 2)
        #expect(try await cache.ttl("k") == .seconds(6))
        #expect(try await cache.get("k", as: Int.self) == 2)
        clock.advance(by: .seconds(6))
        #expect(try await cache.get("k", as: Int.self) == nil)
    }

    @Test func setKeepingTTLWithoutALiveValueStoresWithoutExpiry() async throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(defaultTTL: .seconds(60), clock: clock)
        try await cache.setKeepingTTL("absent", to: 1)
        #expect(try await cache.ttl("absent") == .noExpiry)
        try await cache.set("expired", to: 1, ttl: .seconds(1))
        clock.advance(by: .seconds(1))
        try await cache.setKeepingTTL("expired", to: 2)
        #expect(try await cache.ttl("expired") == .noExpiry)
        #expect(try await cache.get("expired", as: Int.self) == 2)
    }

    @Test func ttlIsComputedFromTheExpiryAndCountsNoRead() async throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(clock: clock)
        #expect(try await cache.ttl("absent") == nil)
        try await cache.set("forever", to: 1, ttl: .noExpiry)
        #expect(try await cache.ttl("forever") == .noExpiry)
        try await cache.set("k", to: 1, ttl: .milliseconds(1500))
        clock.advance(by: .milliseconds(500))
        #expect(try await cache.ttl("k") == .seconds(1))
        clock.advance(by: .seconds(1))
        #expect(try await cache.ttl("k") == nil)
        let stats = await cache.stats()
        #expect(stats.hits == 0 && stats.misses == 0)
    }

    @Test func getWithTTLReadsValueAndTTLTogether() async throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(clock: clock)
        #expect(try await cache.getWithTTL("k", as: String.self) == nil)
        try await cache.set("k", to: "v", ttl: .seconds(30))
        clock.advance(by: .seconds(10))
        let entry = try #require(try await cache.getWithTTL("k", as: String.self))
        #expect(entry.value == "v")
        #expect(entry.ttl == .seconds(20))
        try await cache.set("forever", to: "w", ttl: .noExpiry)
        #expect(try await cache.getWithTTL("forever", as: String.self)?.ttl == .noExpiry)
        await expectCacheError(.typeMismatch) { try await cache.getWithTTL("k", as: Int.self) }
        let stats = await cache.stats()
        #expect(stats.hits == 2 && stats.misses == 1)
    }

    @Test func bytesAreKeptAsTheyAreAndChargedByCount() async throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(clock: clock)
        let bytes: [UInt8] = [0, 1, 2, 255, 10, 13]
        try await cache.setBytes("b", to: bytes, ttl: .seconds(5))
        #expect(try await cache.getBytes("b") == bytes)
        #expect(await cache.stats().size == bytes.count)
        #expect(try await cache.ttl("b") == .seconds(5))
        clock.advance(by: .seconds(5))
        #expect(try await cache.getBytes("b") == nil)
    }

    @Test func bytesOfATypedValueAreItsEncoding() async throws {
        let cache = try makeTestMemoryCache()
        try await cache.set("s", to: "hi", ttl: nil)
        #expect(try await cache.getBytes("s") == Array(#""hi""#.utf8))
        // A `[UInt8]` value stored with `set` is a typed value like any other, distinct from raw bytes.
        try await cache.set("array", to: [UInt8]([1, 2]), ttl: nil)
        #expect(try await cache.getBytes("array") == Array("[1,2]".utf8))
    }

    @Test func closedCacheRefusesTheNewOperations() async throws {
        let cache = try makeTestMemoryCache()
        try await cache.close()
        await expectCacheError(.closed) { try await cache.setIfAbsent("k", to: 1, ttl: nil) }
        await expectCacheError(.closed) { try await cache.setKeepingTTL("k", to: 1) }
        await expectCacheError(.closed) { try await cache.ttl("k") }
        await expectCacheError(.closed) { try await cache.getWithTTL("k", as: Int.self) }
        await expectCacheError(.closed) { try await cache.setBytes("k", to: [1], ttl: nil) }
        await expectCacheError(.closed) { try await cache.getBytes("k") }
    }
}
