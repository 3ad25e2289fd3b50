import CommonSupport

/// The outcome of a read in a shard.
enum ShardRead: Sendable {
    /// A live value of the requested type.
    case hit(any Sendable)
    case miss
    /// A value of another type is stored; carries that type (an envelope of the requested type reads through).
    case typeMismatch(stored: any Any.Type)
}

/// The outcome of a write in a shard.
enum ShardWrite: Sendable {
    /// Stored; `evicted` live entries and `expired` expired ones were removed to make room.
    case stored(evicted: Int, expired: Int)
    /// The value is larger than the shard's whole budget; nothing changed.
    case tooLarge(budget: Int)
}

/// One lock's worth of the memory cache: a key table, per-slot records, an expiry queue, an eviction policy,
/// a tag index and counters, all behind one lock (`Locked`, which ThreadSanitizer can see).
///
/// Every operation finishes its bookkeeping (eviction included) before it releases the lock, so the shard's
/// byte size never exceeds its budget at any moment another thread can observe.
final class MemoryCacheShard: Sendable {
    private let state: Locked<State>

    init(budget: Int, policy: EvictionStrategy.Kind, shardCount: Int = 1) {
        state = Locked(State(budget: budget, policy: policy, shardCount: shardCount))
    }

    /// `clock` is read only when the entry found has a finite expiry, so hits on entries without a TTL and
    /// misses read no clock at all.
    @inline(__always)
    func get(_ key: HashedKey, clock: CacheClockSource, type: ObjectIdentifier) -> ShardRead {
        state.withLock { state in
            state.get(key, clock: clock, type: type)
        }
    }

    @inline(__always)
    func set(_ key: HashedKey, value: any Sendable, size: Int, expiresAt: UInt64, tags: Set<String>, clock: CacheClockSource) -> ShardWrite {
        state.withLock { state in
            state.set(key, value: value, size: size, expiresAt: expiresAt, tags: tags, clock: clock)
        }
    }

    func delete(_ key: HashedKey) -> Bool {
        state.withLock { $0.delete(key) }
    }

    func contains(_ key: HashedKey, now: UInt64) -> Bool {
        state.withLock { $0.contains(key, now: now) }
    }

    /// The live value and its expiry, without counting a hit or touching the policy.
    func peek(_ key: HashedKey, now: UInt64) -> (value: any Sendable, expiresAt: UInt64)? {
        state.withLock { state in
            guard let slot = state.slot(of: key), state.slots[slot].expiresAt > now else { return nil }
            return (state.slots[slot].value, state.slots[slot].expiresAt)
        }
    }

    /// Stores the value only when no live entry is under `key` (an expired one is removed first), checked and
    /// written under one lock; `nil` when a live entry is there.
    func setIfAbsent(_ key: HashedKey, value: any Sendable, size: Int, expiresAt: UInt64, clock: CacheClockSource) -> ShardWrite? {
        state.withLock { state in
            guard !state.contains(key, now: clock.now()) else { return nil }
            return state.set(key, value: value, size: size, expiresAt: expiresAt, tags: [], clock: clock)
        }
    }

    /// Stores the value with the expiry of the live entry it replaces, or none when there is no live entry.
    func setKeepingExpiry(_ key: HashedKey, value: any Sendable, size: Int, clock: CacheClockSource) -> ShardWrite {
        state.withLock { state in
            var expiresAt = UInt64.max
            if let slot = state.slot(of: key), state.slots[slot].expiresAt != .max, state.slots[slot].expiresAt > clock.now() {
                expiresAt = state.slots[slot].expiresAt
            }
            return state.set(key, value: value, size: size, expiresAt: expiresAt, tags: [], clock: clock)
        }
    }

    /// A read as ``get(_:clock:type:)`` with the entry's expiry (`UInt64.max`: never), under one lock.
    func getWithExpiry(_ key: HashedKey, clock: CacheClockSource, type: ObjectIdentifier) -> (read: ShardRead, expiresAt: UInt64) {
        state.withLock { state in
            let read = state.get(key, clock: clock, type: type)
            guard case .hit = read, let slot = state.slot(of: key) else { return (read, .max) }
            return (read, state.slots[slot].expiresAt)
        }
    }

    func removeAll() {
        state.withLock { $0.removeAll() }
    }

    func sweepExpired(now: UInt64) -> Int {
        state.withLock { $0.removeExpired(now: now, untilSizeAtMost: nil) }
    }

    /// Counts a hit as a miss after all: the value read was past its logical (fail-safe) expiry.
    func recountHitAsMiss() {
        state.withLock { state in
            state.hits -= 1
            state.misses += 1
        }
    }

    /// Removes every entry tagged `tag`; returns how many.
    func invalidate(tag: String) -> Int {
        state.withLock { $0.invalidate(tag: tag) }
    }

    /// Removes every entry whose key starts with `prefix`, byte for byte; returns how many. A scan of the shard.
    func invalidate(prefix: String) -> Int {
        state.withLock { $0.invalidate(prefix: prefix) }
    }

    /// The tags in the tag index and the number of (tag, entry) pairs.
    func tagIndexContents() -> (tags: Set<String>, memberships: Int) {
        state.withLock { state in
            let memberships = state.tagIndex.values.reduce(0) { $0 + $1.count }
            assert(state.tagsOfSlot.values.reduce(0) { $0 + $1.count } == memberships, "the tags of slots and the tag index disagree")
            return (Set(state.tagIndex.keys), memberships)
        }
    }

    /// Records in the expiry queue, stale ones included.
    func expiryRecordCount() -> Int {
        state.withLock { $0.expiryQueue.count }
    }

    func addStats(to stats: inout CacheStats) {
        state.withLock { state in
            stats.hits += state.hits
            stats.misses += state.misses
            stats.sets += state.sets
            stats.deletes += state.deletes
            stats.evictions += state.evictions
            stats.expirations += state.expirations
            stats.size += state.size
            stats.entryCount += state.table.count
        }
    }
}

/// Everything the shard keeps about one entry: what a read needs (value, expiry, key) and what removal, eviction
/// and expiry need. The slot's number names the entry to the policy, the expiry queue and the tag index; the key
/// table (``KeyTable``) holds only slot numbers. Free slots keep an empty key and an empty value.
///
/// 80 bytes: fields are ordered and sized so that the record has no padding beyond its last two bytes.
struct MemoryCacheSlot {
    /// The first stored property: ``MemoryCacheShard/State/storedType(of:)`` reads the container in place.
    var value: any Sendable
    /// Nanoseconds on the cache's clock; `UInt64.max` for never.
    var expiresAt: UInt64
    var key: String
    /// The expiry of the slot's record in the expiry queue, `UInt64.max` for none. Never later than
    /// ``expiresAt`` (which reads check): a write that pushes the expiry later keeps the record, which is moved
    /// when it comes due.
    var scheduledExpiry: UInt64
    /// The low 32 bits of the key's hash (``KeyTable/tag(of:)``), which find the slot's bucket when it is removed.
    var hashTag: UInt32
    /// Encoded size in bytes, as charged to the budget; at most ``maximumSize``.
    var size: UInt32
    /// Bumped whenever the slot's owner changes; with ``scheduledExpiry``, tells the slot's one valid expiry-queue
    /// record from stale ones.
    var generation: UInt32
    var isOccupied: Bool
    /// Whether the entry was stored with tags, which ``MemoryCacheShard/State/tagsOfSlot`` then holds: most entries
    /// have none, and a set per slot cost 8 bytes each.
    var isTagged: Bool

    /// The largest encoded size one entry can have (4 GiB - 1): a larger value is too large for any shard.
    static let maximumSize = Int(UInt32.max)

    static let free = MemoryCacheSlot(
        value: (), expiresAt: .max, key: "", scheduledExpiry: .max, hashTag: 0, size: 0, generation: 0, isOccupied: false, isTagged: false
    )
}

extension MemoryCacheShard {
    struct State: ~Copyable {
        let budget: Int
        /// The largest value the shard takes: its budget, or ``MemoryCacheSlot/maximumSize`` if that is smaller.
        let valueLimit: Int
        var table = KeyTable()
        var slots: [MemoryCacheSlot] = []
        var freeSlots: [Int32] = []
        var policy: AnyEvictionPolicy
        var expiryQueue = ExpiryQueue()
        /// Occupied entries with a record in ``expiryQueue`` (``MemoryCacheSlot/scheduledExpiry`` set): its live part.
        var entriesWithExpiry = 0
        var size = 0
        /// Reused for every policy call so that eviction does not allocate.
        var victims: [Int] = []
        /// Tag → slots of the entries stored with it. Exact: every removal path drops the entry's memberships,
        /// and a tag with no entries left is removed.
        var tagIndex: [String: Set<Int32>] = [:]
        /// Slot → the tags its entry was stored with, for tagged entries only (``MemoryCacheSlot/isTagged``); kept
        /// exact with ``tagIndex``.
        var tagsOfSlot: [Int32: Set<String>] = [:]

        var hits: UInt64 = 0
        var misses: UInt64 = 0
        var sets: UInt64 = 0
        var deletes: UInt64 = 0
        var evictions: UInt64 = 0
        var expirations: UInt64 = 0

        init(budget: Int, policy kind: EvictionStrategy.Kind, shardCount: Int) {
            self.budget = budget
            valueLimit = min(budget, MemoryCacheSlot.maximumSize)
            policy = AnyEvictionPolicy(kind: kind, capacity: budget, shardCount: shardCount)
        }

        // MARK: Operations

        /// The slot holding `key`, if any: the hash picks the bucket and the key is compared only in slots whose
        /// hash matches.
        @inline(__always)
        func slot(of key: HashedKey) -> Int? {
            table.slot(hash: key.hash) { slots[$0].key == key.key }
        }

        /// `type` identifies the requested type; the stored value's dynamic type must be exactly it. Comparing
        /// type identities is a pointer compare, where a dynamic cast under the lock would cost far more.
        @inline(__always)
        mutating func get(_ key: HashedKey, clock: CacheClockSource, type: ObjectIdentifier) -> ShardRead {
            guard let slot = slot(of: key) else {
                misses += 1
                policy.recordMiss(keyHash: key.hash)
                return .miss
            }
            // Fields are read in place (`inout`), so the value is not copied (a retain and a release) before
            // its type is known to match.
            let (expiresAt, storedType) = Self.fields(of: &slots[slot])
            // The coarse clock: a hit reads it on every entry with a TTL, and the precise one cost a tenth of the hit.
            if expiresAt != .max && expiresAt <= clock.coarseNow() {
                removeEntry(slot)
                policy.recordRemoval(slot)
                expirations += 1
                misses += 1
                policy.recordMiss(keyHash: key.hash)
                return .miss
            }
            guard storedType == type else {
                return .typeMismatch(stored: Self.dynamicType(of: &slots[slot]))
            }
            hits += 1
            policy.recordHit(slot, keyHash: key.hash)
            return .hit(Self.value(of: &slots[slot]))
        }

        @inline(__always)
        private static func fields(of record: inout MemoryCacheSlot) -> (expiresAt: UInt64, type: ObjectIdentifier) {
            (record.expiresAt, storedType(of: &record))
        }

        /// The type the slot's value was stored as, read from its existential container in place: `type(of:)`
        /// copied the value first (a retain and a release of its storage, on every hit). The value is the record's
        /// first stored property, and the container of an `any Sendable` (a marker protocol, so laid out as
        /// `Any`) is three words of inline buffer followed by the type's metadata, a layout fixed by the Swift
        /// ABI; `MemoryCacheValueLayoutTests` checks both on every kind of value.
        @inline(__always)
        static func storedType(of record: inout MemoryCacheSlot) -> ObjectIdentifier {
            withUnsafeMutablePointer(to: &record) { pointer in
                ObjectIdentifier(UnsafeRawPointer(pointer).load(fromByteOffset: 3 * MemoryLayout<Int>.size, as: Any.Type.self))
            }
        }

        private static func dynamicType(of record: inout MemoryCacheSlot) -> any Any.Type {
            Swift.type(of: record.value)
        }

        @inline(__always)
        private static func value(of record: inout MemoryCacheSlot) -> any Sendable {
            record.value
        }

        mutating func set(
            _ key: HashedKey, value: any Sendable, size newSize: Int, expiresAt: UInt64, tags: Set<String>, clock: CacheClockSource
        ) -> ShardWrite {
            guard newSize <= valueLimit else { return .tooLarge(budget: valueLimit) }
            sets += 1
            let slot: Int
            let isUpdate: Bool
            if let found = self.slot(of: key) {
                slot = found
                isUpdate = true
                slots[slot].value = value
                slots[slot].expiresAt = expiresAt
                size += newSize - Int(slots[slot].size)
                slots[slot].size = UInt32(newSize)
                if slots[slot].isTagged || !tags.isEmpty { replaceTags(of: slot, with: tags) }
            } else {
                slot = allocateSlot()
                isUpdate = false
                let generation = slots[slot].generation &+ 1
                slots[slot] = MemoryCacheSlot(
                    value: value, expiresAt: expiresAt, key: key.key, scheduledExpiry: .max, hashTag: KeyTable.tag(of: key.hash),
                    size: UInt32(newSize), generation: generation, isOccupied: true, isTagged: false
                )
                table.insert(hash: key.hash, slot: slot)
                size += newSize
                if !tags.isEmpty { replaceTags(of: slot, with: tags) }
            }
            schedule(slot, expiresAt: expiresAt)

            // Expired entries go first: they are worthless, whatever the policy thinks of them.
            let expired = size > budget ? removeExpired(now: clock.now(), untilSizeAtMost: budget) : 0

            victims.removeAll(keepingCapacity: true)
            if isUpdate {
                policy.recordUpdate(PolicyEntry(slot: slot, keyHash: key.hash, weight: newSize, expiresAt: expiresAt), victims: &victims)
            } else {
                policy.recordInsertion(PolicyEntry(slot: slot, keyHash: key.hash, weight: newSize, expiresAt: expiresAt), victims: &victims)
            }
            for victim in victims {
                removeEntry(victim)
            }
            evictions += UInt64(victims.count)
            compactExpiryQueueIfNeeded()
            assert(size <= budget, "the eviction policy left the shard over its budget")
            return .stored(evicted: victims.count, expired: expired)
        }

        mutating func delete(_ key: HashedKey) -> Bool {
            deletes += 1
            guard let slot = slot(of: key) else { return false }
            removeEntry(slot)
            policy.recordRemoval(slot)
            return true
        }

        mutating func contains(_ key: HashedKey, now: UInt64) -> Bool {
            guard let slot = slot(of: key) else { return false }
            if slots[slot].expiresAt <= now {
                removeEntry(slot)
                policy.recordRemoval(slot)
                expirations += 1
                return false
            }
            return true
        }

        mutating func removeAll() {
            table.removeAll()
            slots.removeAll()
            freeSlots.removeAll()
            expiryQueue.removeAll()
            tagIndex.removeAll()
            tagsOfSlot.removeAll()
            entriesWithExpiry = 0
            size = 0
            policy.removeAll()
        }

        /// Removes expired entries, in the order of their records' expiries (the soonest first, unless a write
        /// pushed an entry's expiry later), until none is left or the size is within `limit`. A record that comes
        /// due for an entry whose expiry was pushed later is moved to that expiry. Returns how many were removed.
        mutating func removeExpired(now: UInt64, untilSizeAtMost limit: Int?) -> Int {
            var removed = 0
            let limit = limit ?? -1
            while limit < 0 || size > limit, let record = expiryQueue.popDue(now: now) {
                let slot = Int(record.slot)
                guard slots[slot].isOccupied, slots[slot].generation == record.generation,
                    slots[slot].scheduledExpiry == record.expiresAt
                else { continue }
                let expiresAt = slots[slot].expiresAt
                if expiresAt <= now {
                    removeEntry(slot)
                    policy.recordRemoval(slot)
                    removed += 1
                } else {
                    slots[slot].scheduledExpiry = .max
                    entriesWithExpiry -= 1
                    schedule(slot, expiresAt: expiresAt)
                }
            }
            expirations += UInt64(removed)
            compactExpiryQueueIfNeeded()
            return removed
        }

        /// Removes every entry stored with `tag`, whether expired or not. Counted as deletes.
        mutating func invalidate(tag: String) -> Int {
            guard let members = tagIndex[tag] else { return 0 }
            for slot in members {
                removeEntry(Int(slot))
                policy.recordRemoval(Int(slot))
            }
            deletes += UInt64(members.count)
            return members.count
        }

        /// Removes every entry whose key's UTF-8 bytes start with `prefix`'s. Counted as deletes.
        mutating func invalidate(prefix: String) -> Int {
            var matching: [Int32] = []
            for slot in slots.indices where slots[slot].isOccupied && slots[slot].key.utf8.starts(with: prefix.utf8) {
                matching.append(Int32(truncatingIfNeeded: slot))
            }
            for slot in matching {
                removeEntry(Int(slot))
                policy.recordRemoval(Int(slot))
            }
            deletes += UInt64(matching.count)
            return matching.count
        }

        // MARK: Slots

        /// Keeps a record in the expiry queue no later than the entry's expiry `expiresAt`. A record that is early
        /// enough stays, so a write that pushes the expiry later (every overwrite under a fixed TTL) costs no heap
        /// insert and leaves no stale record behind; an entry that no longer expires keeps its record until it
        /// comes due.
        private mutating func schedule(_ slot: Int, expiresAt: UInt64) {
            let scheduled = slots[slot].scheduledExpiry
            guard expiresAt < scheduled else { return }
            if scheduled == .max { entriesWithExpiry += 1 }
            slots[slot].scheduledExpiry = expiresAt
            expiryQueue.insert(expiresAt: expiresAt, slot: slot, generation: slots[slot].generation)
        }

        private mutating func allocateSlot() -> Int {
            if let slot = freeSlots.popLast() { return Int(slot) }
            slots.append(.free)
            return slots.count - 1
        }

        /// Drops the entry from the table and the tag index and frees its slot. The caller informs the policy
        /// if needed.
        private mutating func removeEntry(_ slot: Int) {
            let removed = table.remove(hash: UInt64(slots[slot].hashTag), slot: slot)
            assert(removed, "an occupied slot is not in the key table")
            size -= Int(slots[slot].size)
            if slots[slot].scheduledExpiry != .max { entriesWithExpiry -= 1 }
            if slots[slot].isTagged { replaceTags(of: slot, with: []) }
            var freed = MemoryCacheSlot.free
            freed.generation = slots[slot].generation &+ 1
            slots[slot] = freed
            freeSlots.append(Int32(truncatingIfNeeded: slot))
        }

        /// Makes `tags` the slot's tags, keeping ``tagIndex`` exact.
        private mutating func replaceTags(of slot: Int, with tags: Set<String>) {
            let slot32 = Int32(truncatingIfNeeded: slot)
            let old = tagsOfSlot[slot32] ?? []
            for tag in old where !tags.contains(tag) {
                if tagIndex[tag]?.remove(slot32) != nil, tagIndex[tag]?.isEmpty == true {
                    tagIndex[tag] = nil
                }
            }
            for tag in tags where !old.contains(tag) {
                tagIndex[tag, default: []].insert(slot32)
            }
            tagsOfSlot[slot32] = tags.isEmpty ? nil : tags
            slots[slot].isTagged = !tags.isEmpty
        }

        private mutating func compactExpiryQueueIfNeeded() {
            guard expiryQueue.needsCompaction(liveCount: entriesWithExpiry) else { return }
            var records: [ExpiryQueue.Record] = []
            records.reserveCapacity(entriesWithExpiry)
            for slot in slots.indices where slots[slot].isOccupied && slots[slot].scheduledExpiry != .max {
                records.append(ExpiryQueue.Record(
                    expiresAt: slots[slot].scheduledExpiry, slot: Int32(truncatingIfNeeded: slot), generation: slots[slot].generation
                ))
            }
            expiryQueue.replace(with: records)
        }
    }
}
