/// A shard's key table: the slot number of every entry, found by the key's precomputed 64-bit hash.
///
/// Open addressing with linear probing in one array of 8-byte buckets, each holding the low 32 bits of the key's
/// hash beside the slot number, so a probe compares hashes without touching the slot's record and the record is
/// read only for a likely match (the caller's `isMatch` compares the key). The keys themselves live in the slots.
/// A `Dictionary` keyed by the key and its hash spent 72 to 80 bytes a bucket on a copy of the key, the value and
/// the expiry; this spends 8.
///
/// Removal shifts the following buckets back (no tombstones), so probe chains never lengthen with churn. The
/// table grows past 3/4 full and halves when under 1/8 full, so a table that grew and was emptied gives its
/// memory back (down to ``minimumCapacity`` buckets).
///
/// Slot numbers must be below `UInt32.max` and the hash's low bits pick the home bucket, so capacities stay at
/// most 2^32 buckets; a shard's slot numbers are `Int32`.
struct KeyTable {
    /// `0` for an empty bucket; otherwise the low 32 bits of the key's hash in the high half and the slot number
    /// plus one in the low half.
    private var buckets: [UInt64] = []
    /// The number of slots in the table.
    private(set) var count = 0

    /// The fewest buckets of a table that holds anything.
    static let minimumCapacity = 16

    /// The number of buckets, a power of two (or zero before the first insert).
    var capacity: Int { buckets.count }

    /// The low 32 bits of a key's hash, as the table keeps them; the home bucket is taken from their low bits.
    @inline(__always)
    static func tag(of hash: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: hash)
    }

    /// The slot of the first entry with `hash` for which `isMatch` holds; `nil` if none.
    @inline(__always)
    func slot(hash: UInt64, where isMatch: (Int) -> Bool) -> Int? {
        guard !buckets.isEmpty else { return nil }
        let mask = buckets.count - 1
        let tag = Self.tag(of: hash)
        var position = Int(truncatingIfNeeded: tag) & mask
        while true {
            let bucket = buckets[position]
            if bucket == 0 { return nil }
            if UInt32(truncatingIfNeeded: bucket >> 32) == tag {
                let slot = Int(truncatingIfNeeded: bucket & 0xFFFF_FFFF) - 1
                if isMatch(slot) { return slot }
            }
            position = (position + 1) & mask
        }
    }

    /// Adds `slot` under `hash`. The caller makes sure its key is not in the table already.
    mutating func insert(hash: UInt64, slot: Int) {
        precondition(slot >= 0 && slot < Int(UInt32.max), "slot numbers are below UInt32.max")
        if (count + 1) * 4 > buckets.count * 3 {
            resize(to: Swift.max(Self.minimumCapacity, buckets.count * 2))
        }
        Self.place(Self.bucket(tag: Self.tag(of: hash), slot: slot), in: &buckets)
        count += 1
    }

    /// Removes `slot`, which was inserted under `hash`; returns whether it was there.
    @discardableResult
    mutating func remove(hash: UInt64, slot: Int) -> Bool {
        guard !buckets.isEmpty else { return false }
        let mask = buckets.count - 1
        let wanted = Self.bucket(tag: Self.tag(of: hash), slot: slot)
        var hole = Int(truncatingIfNeeded: Self.tag(of: hash)) & mask
        while buckets[hole] != wanted {
            if buckets[hole] == 0 { return false }
            hole = (hole + 1) & mask
        }
        // Backward shift: a later bucket of the run moves into the hole unless its home lies after the hole
        // (cyclically), where the move would put it before its home and out of its probe sequence.
        var next = (hole + 1) & mask
        while buckets[next] != 0 {
            let home = Int(truncatingIfNeeded: buckets[next] >> 32) & mask
            if (next &- home) & mask >= (next &- hole) & mask {
                buckets[hole] = buckets[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        buckets[hole] = 0
        count -= 1
        if buckets.count > Self.minimumCapacity && count * 8 < buckets.count {
            resize(to: buckets.count / 2)
        }
        return true
    }

    mutating func removeAll() {
        buckets = []
        count = 0
    }

    @inline(__always)
    private static func bucket(tag: UInt32, slot: Int) -> UInt64 {
        UInt64(tag) << 32 | UInt64(truncatingIfNeeded: slot + 1)
    }

    /// Puts `bucket` in the first empty bucket of its probe sequence; there must be one.
    private static func place(_ bucket: UInt64, in buckets: inout [UInt64]) {
        let mask = buckets.count - 1
        var position = Int(truncatingIfNeeded: bucket >> 32) & mask
        while buckets[position] != 0 {
            position = (position + 1) & mask
        }
        buckets[position] = bucket
    }

    private mutating func resize(to newCapacity: Int) {
        var resized = [UInt64](repeating: 0, count: newCapacity)
        for bucket in buckets where bucket != 0 {
            Self.place(bucket, in: &resized)
        }
        buckets = resized
    }
}
