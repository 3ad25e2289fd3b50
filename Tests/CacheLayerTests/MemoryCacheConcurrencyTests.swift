import CommonSupport
@testable import CacheLayer
import Testing

@Suite("MemoryCache concurrency")
struct MemoryCacheConcurrencyTests {
    struct Counts: Sendable {
        var hits: UInt64 = 0
        var misses: UInt64 = 0
        var sets: UInt64 = 0
        var deletes: UInt64 = 0

        static func + (lhs: Counts, rhs: Counts) -> Counts {
            Counts(hits: lhs.hits + rhs.hits, misses: lhs.misses + rhs.misses, sets: lhs.sets + rhs.sets, deletes: lhs.deletes + rhs.deletes)
        }
    }

    @Test(arguments: EvictionStrategy.allCases)
    func hundredTasksMixingOperationsLeaveConsistentStats(strategy: EvictionStrategy) async throws {
        let limit = 256 * 1024
        let cache = try makeTestMemoryCache(maxMemorySize: limit, strategy: strategy, shardCount: 8)
        let totals = try await withThrowingTaskGroup(of: Counts.self) { group in
            for task in 0..<100 {
                group.addTask {
                    var random = SeededGenerator(seed: UInt64(task))
                    var counts = Counts()
                    for _ in 0..<1_000 {
                        let key = "key:\(Int.random(in: 0..<500, using: &random))"
                        switch Int.random(in: 0..<10, using: &random) {
                        case 0..<6:
                            if let value = try await cache.get(key, as: String.self) {
                                // Every value stored under a key starts with that key.
                                #expect(value.hasPrefix(key))
                                counts.hits += 1
                            } else {
                                counts.misses += 1
                            }
                        case 6..<9:
                            let padding = String(repeating: "p", count: Int.random(in: 0..<2_000, using: &random))
                            try await cache.set(key, to: key + padding, ttl: nil)
                            counts.sets += 1
                        default:
                            try await cache.delete(key)
                            counts.deletes += 1
                        }
                    }
                    return counts
                }
            }
            return try await group.reduce(Counts(), +)
        }
        let stats = await cache.stats()
        #expect(stats.hits == totals.hits)
        #expect(stats.misses == totals.misses)
        #expect(stats.sets == totals.sets)
        #expect(stats.deletes == totals.deletes)
        #expect(stats.hits + stats.misses + stats.sets + stats.deletes == 100_000)
        #expect(stats.size <= limit)
        #expect(stats.entryCount <= 500)
    }
}
