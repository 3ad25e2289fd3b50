/// Decides which entries one memory-cache shard keeps when its byte budget is exceeded.
///
/// One instance per shard; every call happens under that shard's lock, so implementations need no
/// synchronisation of their own. Entries are named by a *slot*: a small integer the shard assigns when it
/// stores a new key and reuses after the key is gone. Policies keep their bookkeeping in arrays indexed by
/// slot instead of hashing keys again. `keyHash` is a well-mixed 64-bit hash of the key (stable for the
/// life of the process) for frequency sketches and ghost lists.
///
/// Expiry is the shard's business: before it asks the policy to make room, the shard removes expired
/// entries itself (soonest expiry first) and reports them with ``recordRemoval(_:)``.
package protocol EvictionPolicy: Sendable {
    /// A policy for a shard holding at most `capacity` bytes.
    init(capacity: Int)

    /// The byte budget.
    var capacity: Int { get }

    /// Bytes charged to the entries the policy currently tracks.
    var weightedSize: Int { get }

    /// A read found the entry in `slot`.
    mutating func recordHit(_ slot: Int, keyHash: UInt64)

    /// A read found nothing under a key with this hash. Frequency-aware policies count it; others ignore it.
    mutating func recordMiss(keyHash: UInt64)

    /// A new entry was stored in `entry.slot`.
    ///
    /// Append to `victims` the slots the shard must drop so that ``weightedSize`` is within ``capacity``.
    /// This may include `slot` itself when the policy declines to admit the new entry. The policy has already
    /// forgotten every slot it appends: the shard removes them from its table without calling
    /// ``recordRemoval(_:)``.
    ///
    mutating func recordInsertion(_ entry: PolicyEntry, victims: inout [Int])

    /// The entry in `entry.slot` got a new value, weight or expiry; victims as for ``recordInsertion(_:victims:)``.
    mutating func recordUpdate(_ entry: PolicyEntry, victims: inout [Int])

    /// The shard removed the entry in `slot` (deleted or expired); forget it.
    mutating func recordRemoval(_ slot: Int)

    /// The shard was cleared; forget every entry (frequency history may be kept).
    mutating func removeAll()
}

/// What a policy is told about an entry the shard stored or changed.
package struct PolicyEntry: Sendable {
    /// Where the shard keeps the entry.
    package var slot: Int
    /// A well-mixed 64-bit hash of the key.
    package var keyHash: UInt64
    /// The bytes charged to the entry.
    package var weight: Int
    /// Nanoseconds on the cache's clock, `UInt64.max` for never.
    package var expiresAt: UInt64

    package init(slot: Int, keyHash: UInt64, weight: Int, expiresAt: UInt64 = .max) {
        self.slot = slot
        self.keyHash = keyHash
        self.weight = weight
        self.expiresAt = expiresAt
    }
}
