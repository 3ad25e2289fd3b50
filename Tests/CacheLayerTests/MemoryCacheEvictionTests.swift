import CommonSupport
@testable import CacheLayer
import Testing

@Suite("MemoryCache eviction")
struct MemoryCacheEvictionTests {
    /// Ten-byte values: a string of eight characters plus quotes.
    static func tenBytes(_ index: Int) -> String {
        let digits = String(index)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    @Test(arguments: EvictionStrategy.allCases, [1, 4])
    func byteLimitIsNeverExceededUnderARandomWorkload(strategy: EvictionStrategy, shardCount: Int) async throws {
        let limit = 64 * 1024
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(maxMemorySize: limit, strategy: strategy, shardCount: shardCount, clock: clock)
        var random = SeededGenerator(seed: 0xC0FFEE)
        let maxValueLength = limit / shardCount / 4
        for step in 0..<20_000 {
            // Yield now and then: a long synchronous loop would hold a cooperative thread and starve tests
            // that need the pool (the background sweeper test), especially under the thread sanitizer.
            if step % 200 == 0 { await Task.yield() }
            let key = "key:\(Int.random(in: 0..<2_000, using: &random))"
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<50:
                let length = Int.random(in: 0...maxValueLength, using: &random)
                let ttl: Duration? = Bool.random(using: &random) ? .milliseconds(Int.random(in: 1...500, using: &random)) : nil
                try cache.setValue(key, String(repeating: "v", count: length), ttl: ttl)
            case 50..<85:
                if let value = try cache.getValue(key, as: String.self) {
                    // Checking the length, not every character: debug builds make a per-character scan slow.
                    #expect(value.utf8.count <= maxValueLength)
                }
            case 85..<95:
                try cache.deleteValue(key)
            case 95..<99:
                clock.advance(by: .milliseconds(Int.random(in: 1...50, using: &random)))
            default:
                cache.sweepExpired()
            }
            let stats = cache.currentStats()
            guard stats.size <= limit, stats.size >= 0 else {
                Issue.record("size \(stats.size) outside 0...\(limit) after step \(step)")
                return
            }
        }
        let stats = cache.currentStats()
        #expect(stats.evictions > 0)
        #expect(stats.expirations > 0)
    }

    @Test func sizeMatchesTheSumOfStoredValues() throws {
        let cache = try makeTestMemoryCache(maxMemorySize: 10_000, strategy: .lru)
        var random = SeededGenerator(seed: 7)
        var model: [String: Int] = [:]
        for _ in 0..<5_000 {
            let key = "k\(Int.random(in: 0..<50, using: &random))"
            if Bool.random(using: &random) {
                let value = String(repeating: "x", count: Int.random(in: 0..<100, using: &random))
                try cache.setValue(key, value, ttl: nil)
                model[key] = value.count + 2
            } else {
                try cache.deleteValue(key)
                model[key] = nil
            }
        }
        // 50 keys of at most 101 bytes never exceed the limit, so nothing was evicted and the sizes must agree.
        #expect(cache.currentStats().evictions == 0)
        #expect(cache.currentStats().size == model.values.reduce(0, +))
        #expect(cache.currentStats().entryCount == model.count)
    }

    @Test func expiryOrderEvictsTheSoonestExpiringFirst() throws {
        let cache = try makeTestMemoryCache(maxMemorySize: 30, strategy: .expiry)
        try cache.setValue("late", Self.tenBytes(1), ttl: .seconds(300))
        try cache.setValue("soon", Self.tenBytes(2), ttl: .seconds(100))
        try cache.setValue("forever", Self.tenBytes(3), ttl: .noExpiry)
        // Reading does not protect an entry under this policy.
        _ = try cache.getValue("soon", as: String.self)
        try cache.setValue("new", Self.tenBytes(4), ttl: .seconds(200))
        #expect(try cache.getValue("soon", as: String.self) == nil)
        #expect(try cache.getValue("late", as: String.self) != nil)
        try cache.setValue("newer", Self.tenBytes(5), ttl: .seconds(400))
        #expect(try cache.getValue("new", as: String.self) == nil)
        #expect(try cache.getValue("late", as: String.self) != nil)
        #expect(try cache.getValue("forever", as: String.self) != nil)
        #expect(cache.currentStats().evictions == 2)
    }

    @Test func expiryOrderEvictsEntriesWithoutTTLLastAndOldestFirst() throws {
        let cache = try makeTestMemoryCache(maxMemorySize: 30, strategy: .expiry)
        try cache.setValue("first", Self.tenBytes(1), ttl: .noExpiry)
        try cache.setValue("ttl", Self.tenBytes(2), ttl: .seconds(1000))
        try cache.setValue("second", Self.tenBytes(3), ttl: .noExpiry)
        try cache.setValue("third", Self.tenBytes(4), ttl: .noExpiry)
        #expect(try cache.getValue("ttl", as: String.self) == nil)
        try cache.setValue("fourth", Self.tenBytes(5), ttl: .noExpiry)
        #expect(try cache.getValue("first", as: String.self) == nil)
        #expect(try cache.getValue("second", as: String.self) != nil)
        #expect(try cache.getValue("third", as: String.self) != nil)
        #expect(try cache.getValue("fourth", as: String.self) != nil)
    }

    @Test func lruEvictsTheLeastRecentlyReadFirst() throws {
        let cache = try makeTestMemoryCache(maxMemorySize: 30, strategy: .lru)
        try cache.setValue("a", Self.tenBytes(1), ttl: nil)
        try cache.setValue("b", Self.tenBytes(2), ttl: nil)
        try cache.setValue("c", Self.tenBytes(3), ttl: nil)
        _ = try cache.getValue("a", as: String.self)
        try cache.setValue("d", Self.tenBytes(4), ttl: nil)
        #expect(try cache.containsValue("b") == false)
        #expect(try cache.containsValue("a"))
        _ = try cache.getValue("c", as: String.self)
        try cache.setValue("e", Self.tenBytes(5), ttl: nil)
        #expect(try cache.containsValue("a") == false)
        #expect(try cache.containsValue("c"))
        #expect(try cache.containsValue("d"))
        #expect(cache.currentStats().evictions == 2)
    }

    @Test func lruTreatsAnOverwriteAsAUse() throws {
        let cache = try makeTestMemoryCache(maxMemorySize: 30, strategy: .lru)
        try cache.setValue("a", Self.tenBytes(1), ttl: nil)
        try cache.setValue("b", Self.tenBytes(2), ttl: nil)
        try cache.setValue("c", Self.tenBytes(3), ttl: nil)
        try cache.setValue("a", Self.tenBytes(9), ttl: nil)
        try cache.setValue("d", Self.tenBytes(4), ttl: nil)
        #expect(try cache.getValue("a", as: String.self) == Self.tenBytes(9))
        #expect(try cache.containsValue("b") == false)
    }

    @Test(arguments: EvictionStrategy.allCases)
    func expiredEntriesAreEvictedBeforeLiveOnes(strategy: EvictionStrategy) throws {
        let clock = ManualClock()
        let cache = try makeTestMemoryCache(maxMemorySize: 30, strategy: strategy, clock: clock)
        try cache.setValue("live1", Self.tenBytes(1), ttl: .noExpiry)
        try cache.setValue("expiring", Self.tenBytes(2), ttl: .seconds(10))
        try cache.setValue("live2", Self.tenBytes(3), ttl: .noExpiry)
        // Make "expiring" the most recently used so LRU alone would keep it.
        _ = try cache.getValue("expiring", as: String.self)
        clock.advance(by: .seconds(11))
        try cache.setValue("new", Self.tenBytes(4), ttl: .noExpiry)
        let stats = cache.currentStats()
        #expect(stats.expirations == 1)
        #expect(stats.evictions == 0)
        #expect(try cache.containsValue("live1"))
        #expect(try cache.containsValue("live2"))
        #expect(try cache.containsValue("new"))
    }

    @Test(arguments: EvictionStrategy.allCases)
    func growingAnEntryEvictsOthersButKeepsIt(strategy: EvictionStrategy) throws {
        let cache = try makeTestMemoryCache(maxMemorySize: 30, strategy: strategy)
        try cache.setValue("a", Self.tenBytes(1), ttl: nil)
        try cache.setValue("b", Self.tenBytes(2), ttl: nil)
        try cache.setValue("c", Self.tenBytes(3), ttl: nil)
        try cache.setValue("c", String(repeating: "z", count: 18), ttl: nil)
        #expect(try cache.getValue("c", as: String.self)?.count == 18)
        #expect(cache.currentStats().size <= 30)
        #expect(cache.currentStats().entryCount == 2)
    }
}
