/// A cache key with its 64-bit hash, computed once per operation.
///
/// The hash picks the shard (bits 40 and up), feeds the eviction policy, and finds the key in the shard's key
/// table (``KeyTable``, which keeps its low 32 bits and takes the bucket from their low bits), so the key's bytes
/// are hashed once per operation.
struct HashedKey: Sendable {
    let key: String
    let hash: UInt64

    @inline(__always)
    init(_ key: String) {
        self.key = key
        // String hashing is SipHash with a per-process seed: well mixed, and not predictable by whoever
        // chooses the keys, so colliding keys cannot be crafted to degrade a shard.
        self.hash = UInt64(UInt(bitPattern: key.hashValue))
    }
}
