/// The memory cache's storage with the eviction policy abstracted away, so that ``MemoryCache`` need not be
/// generic. One dynamic call per operation; everything below it is specialised for the concrete policy.
protocol MemoryCacheStorage: AnyObject, Sendable {
    var shardCount: Int { get }
    func get<Value: Sendable>(_ key: HashedKey, now: UInt64, as type: Value.Type) -> ShardRead<Value>
    func set(_ key: HashedKey, value: any Sendable, size: Int, expiresAt: UInt64, now: UInt64) -> ShardWrite
    func delete(_ key: HashedKey) -> Bool
    func contains(_ key: HashedKey, now: UInt64) -> Bool
    func peek(_ key: HashedKey, now: UInt64) -> (value: any Sendable, expiresAt: UInt64)?
    func removeAll()
    func sweepExpired(now: UInt64) -> Int
    func stats() -> CacheStats
}

/// Shards of one policy type, chosen by key hash.
///
/// The byte limit is split evenly: each shard has `maxMemorySize / shardCount` bytes (the remainder goes to
/// the first shards) and its own policy with that capacity, so no cross-shard coordination is needed and the
/// shards' sizes always sum to at most the limit.
final class ShardedMemoryStorage<Policy: EvictionPolicy>: MemoryCacheStorage {
    private let shards: [MemoryCacheShard<Policy>]
    private let mask: UInt64

    /// - Parameter shardCount: a power of two, at most `maxMemorySize`.
    init(maxMemorySize: Int, shardCount: Int) {
        precondition(shardCount > 0 && shardCount & (shardCount - 1) == 0 && shardCount <= maxMemorySize)
        let base = maxMemorySize / shardCount
        let remainder = maxMemorySize % shardCount
        shards = (0..<shardCount).map { MemoryCacheShard(budget: base + ($0 < remainder ? 1 : 0)) }
        mask = UInt64(shardCount - 1)
    }

    var shardCount: Int { shards.count }

    @inline(__always)
    private func shard(for key: HashedKey) -> MemoryCacheShard<Policy> {
        // The dictionary inside the shard re-mixes the hash, so using its low bits here does not skew buckets.
        shards[Int(truncatingIfNeeded: key.hash & mask)]
    }

    func get<Value: Sendable>(_ key: HashedKey, now: UInt64, as type: Value.Type) -> ShardRead<Value> {
        shard(for: key).get(key, now: now, as: type)
    }

    func set(_ key: HashedKey, value: any Sendable, size: Int, expiresAt: UInt64, now: UInt64) -> ShardWrite {
        shard(for: key).set(key, value: value, size: size, expiresAt: expiresAt, now: now)
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

    func removeAll() {
        for shard in shards { shard.removeAll() }
    }

    func sweepExpired(now: UInt64) -> Int {
        shards.reduce(0) { $0 + $1.sweepExpired(now: now) }
    }

    func stats() -> CacheStats {
        var stats = CacheStats()
        for shard in shards { shard.addStats(to: &stats) }
        return stats
    }
}
