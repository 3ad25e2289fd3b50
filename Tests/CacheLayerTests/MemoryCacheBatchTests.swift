@testable import CacheLayer
import Testing

@Suite("MemoryCache batches")
struct MemoryCacheBatchTests {
    @Test func getManyReturnsTheLiveValuesOnceEachAndCountsOneReadPerDistinctKey() async throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(clock: clock)
        try await cache.setMany(["a": "1", "b": "2"], ttl: nil)
        try await cache.set("soon", to: "3", ttl: .seconds(1))
        clock.advance(by: .seconds(1))
        let found = try await cache.getMany(["a", "b", "a", "absent", "soon"], as: String.self)
        #expect(found == ["a": "1", "b": "2"])
        let stats = await cache.stats()
        #expect(stats.hits == 2)
        #expect(stats.misses == 2)
    }

    @Test func setManyAppliesTheTimeToLiveAndDeleteManyRemovesWhatIsThere() async throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(clock: clock)
        try await cache.setMany(["a": 1, "b": 2, "c": 3], ttl: .seconds(10))
        #expect(try await cache.getMany(["a", "b", "c"], as: Int.self).count == 3)
        try await cache.deleteMany(["a", "b", "never-stored"])
        #expect(try await cache.getMany(["a", "b", "c"], as: Int.self) == ["c": 3])
        clock.advance(by: .seconds(10))
        #expect(try await cache.getMany(["c"], as: Int.self).isEmpty)
    }

    @Test func aBatchReportsAnotherTypeAnInvalidKeyAndAClosedCache() async throws {
        let cache = try makeTestMemoryCache()
        try await cache.set("n", to: 3)
        let mismatch = await #expect(throws: CacheError.self) { try await cache.getMany(["n"], as: String.self) }
        #expect(mismatch?.code == .typeMismatch)
        let invalid = await #expect(throws: CacheError.self) { try await cache.setMany(["": 1], ttl: nil) }
        #expect(invalid?.code == .invalidKey)
        try await cache.close()
        for error in [
            await #expect(throws: CacheError.self) { try await cache.getMany(["n"], as: Int.self) },
            await #expect(throws: CacheError.self) { try await cache.setMany(["n": 1], ttl: nil) },
            await #expect(throws: CacheError.self) { try await cache.deleteMany(["n"]) },
        ] {
            #expect(error?.code == .closed)
        }
    }
}
