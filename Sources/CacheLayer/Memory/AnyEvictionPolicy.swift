/// The eviction policy of one shard, whichever ``EvictionStrategy`` chose it.
///
/// An enum of the concrete policies rather than `any EvictionPolicy` or a generic shard: every call is a
/// switch over a known set of value types, so the hot path is fully specialised and inlinable, with no
/// witness-table calls or generic metadata lookups (a generic shard erased behind a protocol ran reads
/// through unspecialised code, several times slower).
///
/// Adding a strategy: add its case here, one line in ``init(kind:capacity:)``, and one line in each method's
/// switch. Each method consumes `self` before mutating the payload so the policy's arrays stay uniquely
/// referenced and are never copied.
enum AnyEvictionPolicy {
    case expiry(ExpiryOrderPolicy)
    case lru(LRUPolicy)
    case tinyLFU(WTinyLFUPolicy)
    case s3fifo(S3FIFOPolicy)

    /// The policy of one of `shardCount` shards with `capacity` bytes each.
    init(kind: EvictionStrategy.Kind, capacity: Int, shardCount: Int = 1) {
        switch kind {
        case .expiry: self = .expiry(ExpiryOrderPolicy(capacity: capacity))
        case .lru: self = .lru(LRUPolicy(capacity: capacity))
        case .tinyLFU:
            // Every shard simulates its own sample; together they hold about as many simulated entries as one
            // shard would, so the simulations' memory does not grow with the shard count.
            var tuning = WTinyLFUPolicy.Tuning()
            tuning.simulationEntries = max(512, tuning.simulationEntries / shardCount)
            self = .tinyLFU(WTinyLFUPolicy(capacity: capacity, tuning: tuning))
        case .s3fifo: self = .s3fifo(S3FIFOPolicy(capacity: capacity))
        }
    }

    var weightedSize: Int {
        switch self {
        case .expiry(let policy): policy.weightedSize
        case .lru(let policy): policy.weightedSize
        case .tinyLFU(let policy): policy.weightedSize
        case .s3fifo(let policy): policy.weightedSize
        }
    }

    @inline(__always)
    mutating func recordHit(_ slot: Int, keyHash: UInt64) {
        switch consume self {
        case .expiry(var policy): policy.recordHit(slot, keyHash: keyHash); self = .expiry(policy)
        case .lru(var policy): policy.recordHit(slot, keyHash: keyHash); self = .lru(policy)
        case .tinyLFU(var policy): policy.recordHit(slot, keyHash: keyHash); self = .tinyLFU(policy)
        case .s3fifo(var policy): policy.recordHit(slot, keyHash: keyHash); self = .s3fifo(policy)
        }
    }

    @inline(__always)
    mutating func recordMiss(keyHash: UInt64) {
        switch consume self {
        case .expiry(var policy): policy.recordMiss(keyHash: keyHash); self = .expiry(policy)
        case .lru(var policy): policy.recordMiss(keyHash: keyHash); self = .lru(policy)
        case .tinyLFU(var policy): policy.recordMiss(keyHash: keyHash); self = .tinyLFU(policy)
        case .s3fifo(var policy): policy.recordMiss(keyHash: keyHash); self = .s3fifo(policy)
        }
    }

    mutating func recordInsertion(_ slot: Int, keyHash: UInt64, weight: Int, expiresAt: UInt64, victims: inout [Int]) {
        switch consume self {
        case .expiry(var policy):
            policy.recordInsertion(slot, keyHash: keyHash, weight: weight, expiresAt: expiresAt, victims: &victims)
            self = .expiry(policy)
        case .lru(var policy):
            policy.recordInsertion(slot, keyHash: keyHash, weight: weight, expiresAt: expiresAt, victims: &victims)
            self = .lru(policy)
        case .tinyLFU(var policy):
            policy.recordInsertion(slot, keyHash: keyHash, weight: weight, expiresAt: expiresAt, victims: &victims)
            self = .tinyLFU(policy)
        case .s3fifo(var policy):
            policy.recordInsertion(slot, keyHash: keyHash, weight: weight, expiresAt: expiresAt, victims: &victims)
            self = .s3fifo(policy)
        }
    }

    mutating func recordUpdate(_ slot: Int, keyHash: UInt64, weight: Int, expiresAt: UInt64, victims: inout [Int]) {
        switch consume self {
        case .expiry(var policy):
            policy.recordUpdate(slot, keyHash: keyHash, weight: weight, expiresAt: expiresAt, victims: &victims)
            self = .expiry(policy)
        case .lru(var policy):
            policy.recordUpdate(slot, keyHash: keyHash, weight: weight, expiresAt: expiresAt, victims: &victims)
            self = .lru(policy)
        case .tinyLFU(var policy):
            policy.recordUpdate(slot, keyHash: keyHash, weight: weight, expiresAt: expiresAt, victims: &victims)
            self = .tinyLFU(policy)
        case .s3fifo(var policy):
            policy.recordUpdate(slot, keyHash: keyHash, weight: weight, expiresAt: expiresAt, victims: &victims)
            self = .s3fifo(policy)
        }
    }

    mutating func recordRemoval(_ slot: Int) {
        switch consume self {
        case .expiry(var policy): policy.recordRemoval(slot); self = .expiry(policy)
        case .lru(var policy): policy.recordRemoval(slot); self = .lru(policy)
        case .tinyLFU(var policy): policy.recordRemoval(slot); self = .tinyLFU(policy)
        case .s3fifo(var policy): policy.recordRemoval(slot); self = .s3fifo(policy)
        }
    }

    mutating func removeAll() {
        switch consume self {
        case .expiry(var policy): policy.removeAll(); self = .expiry(policy)
        case .lru(var policy): policy.removeAll(); self = .lru(policy)
        case .tinyLFU(var policy): policy.removeAll(); self = .tinyLFU(policy)
        case .s3fifo(var policy): policy.removeAll(); self = .s3fifo(policy)
        }
    }
}
