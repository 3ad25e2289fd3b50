import CommonSupport
@testable import CacheLayer
import Testing

@Suite("MemoryCache tags and prefix invalidation")
struct MemoryCacheInvalidationTests {
    /// A string that encodes to exactly 10 JSON bytes.
    static func tenBytes(_ digit: Int) -> String { String(repeating: "\(digit)", count: 8) }

    /// The tag index's size as [distinct tags, (tag, entry) pairs].
    func tagIndex(_ cache: MemoryCache) -> [Int] {
        let size = cache.tagIndexSize
        return [size.tags, size.memberships]
    }

    @Test(arguments: [1, 4])
    func invalidatingATagRemovesExactlyTheTaggedKeys(shardCount: Int) async throws {
        let cache = try makeTestMemoryCache(maxMemorySize: 1 << 24, shardCount: shardCount)
        for index in 0..<100 {
            let tags: Set<String> = index % 3 == 0 ? ["three", "all"] : ["all-but-three"]
            try await cache.set("key:\(index)", to: index, ttl: nil, tags: tags)
        }
        try cache.setValue("untagged", 1)
        try await cache.invalidate(tag: "three")
        for index in 0..<100 {
            #expect(try cache.containsValue("key:\(index)") == (index % 3 != 0))
        }
        #expect(try cache.containsValue("untagged"))
        #expect(cache.currentStats().deletes == 34)
        // "all" lost all its members with them, so only "all-but-three" remains.
        #expect(cache.tagIndexSize.tags == 1)
        #expect(cache.tagIndexSize.memberships == 66)
        try await cache.invalidate(tag: "all-but-three")
        #expect(cache.tagIndexSize.tags == 0)
        #expect(cache.currentStats().entryCount == 1)
        try await cache.invalidate(tag: "never-used")
    }

    @Test func overwritingReplacesTheTags() async throws {
        let cache = try makeTestMemoryCache()
        try await cache.set("a", to: 1, ttl: nil, tags: ["x", "y"])
        try await cache.set("a", to: 2, ttl: nil, tags: ["y", "z"])
        #expect(tagIndex(cache) == [2, 2])
        try await cache.invalidate(tag: "x")
        #expect(try cache.getValue("a", as: Int.self) == 2)
        try await cache.set("a", to: 3, ttl: nil)
        #expect(tagIndex(cache) == [0, 0])
        try await cache.invalidate(tag: "z")
        #expect(try cache.getValue("a", as: Int.self) == 3)
    }

    @Test func deletingAndClearingForgetTheTags() async throws {
        let cache = try makeTestMemoryCache(shardCount: 4)
        try await cache.set("a", to: 1, ttl: nil, tags: ["t"])
        try await cache.set("b", to: 2, ttl: nil, tags: ["t", "u"])
        try await cache.delete("a")
        #expect(tagIndex(cache) == [2, 2])
        try await cache.clear()
        #expect(tagIndex(cache) == [0, 0])
        // A key stored again after its tagged entry went is not invalidated by the old tag.
        try await cache.set("b", to: 3, ttl: nil)
        try await cache.invalidate(tag: "t")
        #expect(try cache.getValue("b", as: Int.self) == 3)
    }

    @Test func expiryForgetsTheTags() async throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(clock: clock)
        try await cache.set("read", to: 1, ttl: .seconds(1), tags: ["t"])
        try await cache.set("swept", to: 2, ttl: .seconds(1), tags: ["t", "u"])
        try await cache.set("kept", to: 3, ttl: .seconds(10), tags: ["t"])
        clock.advance(by: .seconds(2))
        #expect(try cache.getValue("read", as: Int.self) == nil)
        #expect(tagIndex(cache) == [2, 3])
        #expect(cache.sweepExpired() == 1)
        #expect(tagIndex(cache) == [1, 1])
        try await cache.invalidate(tag: "t")
        #expect(try cache.containsValue("kept") == false)
        #expect(tagIndex(cache) == [0, 0])
    }

    @Test(arguments: EvictionStrategy.allCases)
    func evictionForgetsTheTags(strategy: EvictionStrategy) async throws {
        let cache = try makeTestMemoryCache(maxMemorySize: 30, strategy: strategy)
        for index in 0..<20 {
            try await cache.set("key:\(index)", to: Self.tenBytes(index % 10), ttl: nil, tags: ["all", "key:\(index)"])
        }
        let stats = cache.currentStats()
        #expect(stats.evictions == 17)
        // Only the three live entries are indexed: each under "all" and its own tag.
        #expect(tagIndex(cache) == [4, 6])
        try await cache.invalidate(tag: "all")
        #expect(cache.currentStats().entryCount == 0)
        #expect(tagIndex(cache) == [0, 0])
    }

    @Test func randomWorkloadKeepsTheTagIndexExact() async throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(maxMemorySize: 2_000, shardCount: 2, clock: clock)
        var random = SeededGenerator(seed: 7)
        for step in 0..<5_000 {
            let key = "key:\(Int.random(in: 0..<200, using: &random))"
            switch Int.random(in: 0..<10, using: &random) {
            case 0: try await cache.delete(key)
            case 1: try await cache.invalidate(tag: "tag:\(Int.random(in: 0..<5, using: &random))")
            case 2: clock.advance(by: .milliseconds(Int64.random(in: 0..<500, using: &random)))
            case 3: cache.sweepExpired()
            case 4: _ = try cache.getValue(key, as: String.self)
            default:
                let tags = Set((0..<Int.random(in: 0..<3, using: &random)).map { _ in "tag:\(Int.random(in: 0..<5, using: &random))" })
                try await cache.set(key, to: String(repeating: "x", count: step % 40), ttl: .seconds(1), tags: tags)
            }
        }
        clock.advance(by: .seconds(2))
        cache.sweepExpired()
        #expect(cache.currentStats().entryCount == 0)
        #expect(tagIndex(cache) == [0, 0])
    }

    @Test(arguments: [1, 4])
    func invalidatingAPrefixRemovesExactlyThePrefixedKeys(shardCount: Int) async throws {
        let cache = try makeTestMemoryCache(shardCount: shardCount)
        let keys = ["user:1", "user:1:profile", "user:10", "user:2", "users", "résumé:1", "re:1", "USER:1"]
        for key in keys { try cache.setValue(key, key) }
        try await cache.invalidate(prefix: "user:1")
        #expect(try keys.filter { try cache.containsValue($0) } == ["user:2", "users", "résumé:1", "re:1", "USER:1"])
        // Byte for byte in UTF-8: "ré" matches "résumé:1" but not "re:1".
        try await cache.invalidate(prefix: "ré")
        #expect(try keys.filter { try cache.containsValue($0) } == ["user:2", "users", "re:1", "USER:1"])
        #expect(cache.currentStats().deletes == 4)
        try await cache.invalidate(prefix: "")
        #expect(cache.currentStats().entryCount == 0)
    }

    @Test func prefixInvalidationForgetsTheTags() async throws {
        let cache = try makeTestMemoryCache()
        try await cache.set("user:1", to: 1, ttl: nil, tags: ["users"])
        try await cache.set("order:1", to: 2, ttl: nil, tags: ["orders"])
        try await cache.invalidate(prefix: "user:")
        #expect(tagIndex(cache) == [1, 1])
    }

    @Test func invalidationOnAClosedCacheThrows() async throws {
        let cache = try makeTestMemoryCache()
        try await cache.close()
        await expectCacheError(.closed) { try await cache.invalidate(tag: "t") }
        await expectCacheError(.closed) { try await cache.invalidate(prefix: "p") }
        await expectCacheError(.closed) { try await cache.set("k", to: 1, ttl: nil, tags: ["t"]) }
    }
}
