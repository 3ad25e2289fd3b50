/// A cache key with its 64-bit hash, computed once per operation.
///
/// The hash picks the shard (bits 40 and up), feeds the eviction policy, and *is* the key's hash in the shard's
/// dictionary (``_rawHashValue(seed:)``, bucket from the low bits), so the key's bytes are hashed once per
/// operation and the dictionary does not run a second SipHash over the 64-bit hash.
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

    /// The precomputed hash, mixed with the table's seed. `Dictionary` calls this instead of
    /// ``hash(into:)``; the hash is already a per-process-seeded SipHash of the key, so it needs no more mixing.
    func _rawHashValue(seed: Int) -> Int {
        Int(truncatingIfNeeded: hash) ^ seed
    }
}
