import CacheLayer
/// Replays requests through the real ``MemoryCache`` code path: key validation, hashing, the shard's table,
/// expiry queue and eviction policy, exactly as an application's `get` then `set` on a miss.
///
/// One shard, so the policy sees the whole trace as the figures of the literature assume; a manual clock
/// that the replay moves forward, so TTLs in a trace mean the same on every run. Every value is a small
/// integer charged at the request's size (1 for traces without sizes), so the byte limit counts entries.
package struct MemoryCacheReplayTarget: ReplayTarget {
    private let cache: MemoryCache
    private let clock = ManualClock(start: 0)
    private var keyNames: [String]
    private var lastNow: UInt64 = 0

    /// A cache of `capacity` (entries, or bytes for weighted traces) with `strategy`, for keys `0..<keyCount`.
    package init(strategy: EvictionStrategy, capacity: Int, keyCount: Int) throws {
        var configuration = CacheConfiguration()
        configuration.maxMemorySize = capacity
        configuration.evictionStrategy = strategy
        // Entries live until evicted unless the trace gives a TTL.
        configuration.defaultTTL = .noExpiry
        cache = try MemoryCache(
            configuration: configuration,
            clock: clock,
            shardCount: 1,
            startSweeper: false
        )
        // Built once per replay: string keys as the cache sees them, without formatting per request.
        keyNames = (0..<keyCount).map { "k\($0)" }
    }

    package mutating func access(key: UInt32, size: Int, ttl: UInt32, now: UInt64) -> Bool {
        if now > lastNow {
            clock.advance(by: .nanoseconds(now - lastNow))
            lastNow = now
        }
        let name = keyNames[Int(key)]
        do {
            if try cache.getValue(name, as: Int.self) != nil { return true }
            try cache.setValue(name, 0, size: size, ttl: ttl == 0 ? nil : .seconds(Int(ttl)))
        } catch {
            // Keys are valid and values fit (the replayer checks sizes against the capacity); a failure here
            // is a bug in the cache, which the replay must not hide.
            preconditionFailure("replay through MemoryCache failed: \(error)")
        }
        return false
    }
}
