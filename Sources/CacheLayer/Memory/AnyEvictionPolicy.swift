/// The eviction policy of one shard, whichever ``EvictionStrategy`` chose it.
///
/// One optional stored property per concrete policy, exactly one of them set, rather than
/// `any EvictionPolicy` or a generic shard: every call is a switch over a known set of value types, so the
/// hot path is fully specialised and inlinable, with no witness-table calls or generic metadata lookups (a
/// generic shard erased behind a protocol ran reads through unspecialised code, several times slower).
/// Stored properties rather than enum payloads because a payload cannot be mutated in place: taking it out
/// and putting it back moved the whole policy (530 bytes for W-TinyLFU) twice per call, 5% of a read's
/// time under eviction. `policy!.call()` mutates the stored policy where it is.
///
/// Adding a strategy: add its property, one line in ``init(kind:capacity:shardCount:)``, and one line in
/// each method's switch.
struct AnyEvictionPolicy {
    private let kind: EvictionStrategy.Kind
    private var expiry: ExpiryOrderPolicy?
    private var lru: LRUPolicy?
    private var tinyLFU: WTinyLFUPolicy?
    private var s3fifo: S3FIFOPolicy?

    /// The policy of one of `shardCount` shards with `capacity` bytes each.
    init(kind: EvictionStrategy.Kind, capacity: Int, shardCount: Int = 1) {
        self.kind = kind
        switch kind {
        case .expiry: expiry = ExpiryOrderPolicy(capacity: capacity)
        case .lru: lru = LRUPolicy(capacity: capacity)
        case .tinyLFU:
            // Every shard simulates its own sample; together they hold about as many simulated entries as one
            // shard would, so the simulations' memory does not grow with the shard count.
            var tuning = WTinyLFUPolicy.Tuning()
            tuning.simulationEntries = max(512, tuning.simulationEntries / shardCount)
            tinyLFU = WTinyLFUPolicy(capacity: capacity, tuning: tuning)
        case .s3fifo: s3fifo = S3FIFOPolicy(capacity: capacity)
        }
    }

    var weightedSize: Int {
        switch kind {
        case .expiry: expiry!.weightedSize
        case .lru: lru!.weightedSize
        case .tinyLFU: tinyLFU!.weightedSize
        case .s3fifo: s3fifo!.weightedSize
        }
    }

    @inline(__always)
    mutating func recordHit(_ slot: Int, keyHash: UInt64) {
        switch kind {
        case .expiry: expiry!.recordHit(slot, keyHash: keyHash)
        case .lru: lru!.recordHit(slot, keyHash: keyHash)
        case .tinyLFU: tinyLFU!.recordHit(slot, keyHash: keyHash)
        case .s3fifo: s3fifo!.recordHit(slot, keyHash: keyHash)
        }
    }

    @inline(__always)
    mutating func recordMiss(keyHash: UInt64) {
        switch kind {
        case .expiry: expiry!.recordMiss(keyHash: keyHash)
        case .lru: lru!.recordMiss(keyHash: keyHash)
        case .tinyLFU: tinyLFU!.recordMiss(keyHash: keyHash)
        case .s3fifo: s3fifo!.recordMiss(keyHash: keyHash)
        }
    }

    mutating func recordInsertion(_ entry: PolicyEntry, victims: inout [Int]) {
        switch kind {
        case .expiry: expiry!.recordInsertion(entry, victims: &victims)
        case .lru: lru!.recordInsertion(entry, victims: &victims)
        case .tinyLFU: tinyLFU!.recordInsertion(entry, victims: &victims)
        case .s3fifo: s3fifo!.recordInsertion(entry, victims: &victims)
        }
    }

    mutating func recordUpdate(_ entry: PolicyEntry, victims: inout [Int]) {
        switch kind {
        case .expiry: expiry!.recordUpdate(entry, victims: &victims)
        case .lru: lru!.recordUpdate(entry, victims: &victims)
        case .tinyLFU: tinyLFU!.recordUpdate(entry, victims: &victims)
        case .s3fifo: s3fifo!.recordUpdate(entry, victims: &victims)
        }
    }

    mutating func recordRemoval(_ slot: Int) {
        switch kind {
        case .expiry: expiry!.recordRemoval(slot)
        case .lru: lru!.recordRemoval(slot)
        case .tinyLFU: tinyLFU!.recordRemoval(slot)
        case .s3fifo: s3fifo!.recordRemoval(slot)
        }
    }

    mutating func removeAll() {
        switch kind {
        case .expiry: expiry!.removeAll()
        case .lru: lru!.removeAll()
        case .tinyLFU: tinyLFU!.removeAll()
        case .s3fifo: s3fifo!.removeAll()
        }
    }
}
