/// The shards of a memory cache, chosen by key hash.
///
/// The byte limit is split evenly: each shard has `maxMemorySize / shardCount` bytes (the remainder goes to
/// the first shards) and its own policy with that capacity, so no cross-shard coordination is needed and the
/// shards' sizes always sum to at most the limit.
final class ShardedMemoryStorage: Sendable {
    private let shards: [MemoryCacheShard]
    /// The same shards, unretained, for the hot paths: a shard read from ``shards`` is retained and released
    /// around every call, and two threads doing so on one shard contend for its reference count's cache line.
    private let unretainedShards: [Unmanaged<MemoryCacheShard>]
    private let mask: UInt64

    /// - Parameter shardCount: a power of two, at most `maxMemorySize`.
    init(maxMemorySize: Int, shardCount: Int, policy: EvictionStrategy.Kind) {
        precondition(shardCount > 0 && shardCount & (shardCount - 1) == 0 && shardCount <= maxMemorySize)
        let base = maxMemorySize / shardCount
        let remainder = maxMemorySize % shardCount
        shards = (0..<shardCount).map {
            MemoryCacheShard(budget: base + ($0 < remainder ? 1 : 0), policy: policy, shardCount: shardCount)
        }
        unretainedShards = shards.map { Unmanaged.passUnretained($0) }
        mask = UInt64(shardCount - 1)
    }

    var shardCount: Int { shards.count }

    @inline(__always)
    private func shard(for key: HashedKey) -> MemoryCacheShard {
        // The key table inside the shard takes its buckets from the low bits of the same hash, so the shard
        // comes from high bits: otherwise every key of a shard would share its low bits and crowd its buckets.
        shards[shardIndex(for: key)]
    }

    @inline(__always)
    private func shardIndex(for key: HashedKey) -> Int {
        Int(truncatingIfNeeded: (key.hash >> 40) & mask)
    }

    @inline(__always)
    func get(_ key: HashedKey, clock: CacheClockSource, type: ObjectIdentifier) -> ShardRead {
        unretainedShards[shardIndex(for: key)]._withUnsafeGuaranteedRef { $0.get(key, clock: clock, type: type) }
    }

    @inline(__always)
    func set(_ key: HashedKey, value: any Sendable, size: Int, expiresAt: UInt64, tags: Set<String>, clock: CacheClockSource) -> ShardWrite {
        unretainedShards[shardIndex(for: key)]._withUnsafeGuaranteedRef {
            $0.set(key, value: value, size: size, expiresAt: expiresAt, tags: tags, clock: clock)
        }
    }

    func delete(_ key: HashedKey) -> Bool {
        shard(for: key).delete(key)
    }

    func contains(_ key: HashedKey, now: UInt64) -> Bool {
        shard(for: key).contains(key, now: now)
    }

    func peek(_ key: HashedKey, now: UInt64) -> (value: any Sendable, expiresAt: UInt64)? {
        shard(for: key).peek(key, now: now)
    }

    func setIfAbsent(_ key: HashedKey, value: any Sendable, size: Int, expiresAt: UInt64, clock: CacheClockSource) -> ShardWrite? {
        shard(for: key).setIfAbsent(key, value: value, size: size, expiresAt: expiresAt, clock: clock)
    }

    func setKeepingExpiry(_ key: HashedKey, value: any Sendable, size: Int, clock: CacheClockSource) -> ShardWrite {
        shard(for: key).setKeepingExpiry(key, value: value, size: size, clock: clock)
    }

    func getWithExpiry(_ key: HashedKey, clock: CacheClockSource, type: ObjectIdentifier) -> (read: ShardRead, expiresAt: UInt64) {
        shard(for: key).getWithExpiry(key, clock: clock, type: type)
    }

    func removeAll() {
        for shard in shards { shard.removeAll() }
    }

    func recountHitAsMiss(_ key: HashedKey) {
        shard(for: key).recountHitAsMiss()
    }

    func sweepExpired(now: UInt64) -> Int {
        shards.reduce(0) { $0 + $1.sweepExpired(now: now) }
    }

    /// Removes every entry tagged `tag`, shard by shard; returns how many.
    func invalidate(tag: String) -> Int {
        shards.reduce(0) { $0 + $1.invalidate(tag: tag) }
    }

    /// Removes every entry whose key starts with `prefix`: a scan of every shard, one lock at a time.
    func invalidate(prefix: String) -> Int {
        shards.reduce(0) { $0 + $1.invalidate(prefix: prefix) }
    }

    /// The tag index over all shards: distinct tags, and (tag, entry) pairs.
    func tagIndexSize() -> (tags: Int, memberships: Int) {
        var tags = Set<String>()
        var memberships = 0
        for shard in shards {
            let contents = shard.tagIndexContents()
            tags.formUnion(contents.tags)
            memberships += contents.memberships
        }
        return (tags.count, memberships)
    }

    /// Records in the shards' expiry queues, stale ones included.
    func expiryRecordCount() -> Int {
        shards.reduce(0) { $0 + $1.expiryRecordCount() }
    }

    func stats() -> CacheStats {
        var stats = CacheStats()
        for shard in shards { shard.addStats(to: &stats) }
        return stats
    }
}
