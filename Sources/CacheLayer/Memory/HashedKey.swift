/// A cache key with its 64-bit hash, computed once per operation.
///
/// The hash picks the shard, feeds the eviction policy, and stands in for the string when the shard's
/// dictionary hashes the key, so the key's bytes are hashed once per operation instead of twice.
struct HashedKey: Hashable, Sendable {
    let key: String
    let hash: UInt64

    @inline(__always)
    init(_ key: String) {
        self.key = key
        // String hashing is SipHash with a per-process seed: well mixed, and not predictable by whoever
        // chooses the keys, so colliding keys cannot be crafted to degrade a shard.
        self.hash = UInt64(UInt(bitPattern: key.hashValue))
    }

    init(key: String, hash: UInt64) {
        self.key = key
        self.hash = hash
    }

    static func == (lhs: HashedKey, rhs: HashedKey) -> Bool {
        lhs.hash == rhs.hash && lhs.key == rhs.key
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(hash)
    }
}
