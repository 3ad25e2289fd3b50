import Synchronization

/// The outcome of a read in a shard.
enum ShardRead<Value: Sendable>: Sendable {
    case hit(Value)
    case miss
    /// A value of another type is stored; carries that type's name for the error.
    case typeMismatch(stored: String)
}

/// The outcome of a write in a shard.
enum ShardWrite: Sendable {
    /// Stored; `evicted` live entries and `expired` expired ones were removed to make room.
    case stored(evicted: Int, expired: Int)
    /// The value is larger than the shard's whole budget; nothing changed.
    case tooLarge(budget: Int)
}

/// One lock's worth of the memory cache: a key table, slot-indexed entries, an expiry queue, an eviction
/// policy and counters, all behind one `Mutex`.
///
/// Every operation finishes its bookkeeping (eviction included) before it releases the lock, so the shard's
/// byte size never exceeds its budget at any moment another thread can observe.
final class MemoryCacheShard<Policy: EvictionPolicy>: Sendable {
    private let state: Mutex<State>

    init(budget: Int) {
        state = Mutex(State(budget: budget))
    }

    @inline(__always)
    func get<Value: Sendable>(_ key: HashedKey, now: UInt64, as type: Value.Type) -> ShardRead<Value> {
        state.withLock { state in
            state.get(key, now: now, as: type)
        }
    }

    @inline(__always)
    func set(_ key: HashedKey, value: any Sendable, size: Int, expiresAt: UInt64, now: UInt64) -> ShardWrite {
        state.withLock { state in
            state.set(key, value: value, size: size, expiresAt: expiresAt, now: now)
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
            guard let slot = state.index[key].map(Int.init), state.entries[slot].expiresAt > now else { return nil }
            return (state.entries[slot].value, state.entries[slot].expiresAt)
        }
    }

    func removeAll() {
        state.withLock { $0.removeAll() }
    }

    func sweepExpired(now: UInt64) -> Int {
        state.withLock { $0.removeExpired(now: now, untilSizeAtMost: nil) }
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
            stats.entryCount += state.index.count
        }
    }
}

/// What a slot holds. Free slots keep an empty key and `()` as value.
struct MemoryCacheEntry {
    var key: String
    var keyHash: UInt64
    var value: any Sendable
    /// Encoded size in bytes, as charged to the budget.
    var size: Int
    /// Nanoseconds on the cache's clock; `UInt64.max` for never.
    var expiresAt: UInt64
    /// Bumped whenever the slot's value, expiry or owner changes; invalidates older expiry-queue records.
    var generation: UInt32
    var isOccupied: Bool

    static let free = MemoryCacheEntry(key: "", keyHash: 0, value: (), size: 0, expiresAt: 0, generation: 0, isOccupied: false)
}

extension MemoryCacheShard {
    struct State: ~Copyable {
        let budget: Int
        var index: [HashedKey: Int32] = [:]
        var entries: [MemoryCacheEntry] = []
        var freeSlots: [Int32] = []
        var policy: Policy
        var expiryQueue = ExpiryQueue()
        /// Occupied entries with a finite expiry: the live part of ``expiryQueue``.
        var entriesWithExpiry = 0
        var size = 0
        /// Reused for every policy call so that eviction does not allocate.
        var victims: [Int] = []

        var hits: UInt64 = 0
        var misses: UInt64 = 0
        var sets: UInt64 = 0
        var deletes: UInt64 = 0
        var evictions: UInt64 = 0
        var expirations: UInt64 = 0

        init(budget: Int) {
            self.budget = budget
            policy = Policy(capacity: budget)
        }

        // MARK: Operations

        @inline(__always)
        mutating func get<Value: Sendable>(_ key: HashedKey, now: UInt64, as type: Value.Type) -> ShardRead<Value> {
            guard let found = index[key] else {
                misses += 1
                policy.recordMiss(keyHash: key.hash)
                return .miss
            }
            let slot = Int(found)
            if entries[slot].expiresAt <= now {
                removeEntry(slot)
                policy.recordRemoval(slot)
                expirations += 1
                misses += 1
                policy.recordMiss(keyHash: key.hash)
                return .miss
            }
            guard let value = entries[slot].value as? Value else {
                return .typeMismatch(stored: String(describing: Swift.type(of: entries[slot].value)))
            }
            hits += 1
            policy.recordHit(slot, keyHash: key.hash)
            return .hit(value)
        }

        mutating func set(_ key: HashedKey, value: any Sendable, size newSize: Int, expiresAt: UInt64, now: UInt64) -> ShardWrite {
            guard newSize <= budget else { return .tooLarge(budget: budget) }
            sets += 1
            let slot: Int
            let isUpdate: Bool
            if let found = index[key] {
                slot = Int(found)
                isUpdate = true
                if entries[slot].expiresAt != .max { entriesWithExpiry -= 1 }
                size += newSize - entries[slot].size
                entries[slot].value = value
                entries[slot].size = newSize
                entries[slot].expiresAt = expiresAt
                entries[slot].generation &+= 1
            } else {
                slot = allocateSlot()
                isUpdate = false
                let generation = entries[slot].generation &+ 1
                entries[slot] = MemoryCacheEntry(
                    key: key.key, keyHash: key.hash, value: value, size: newSize, expiresAt: expiresAt,
                    generation: generation, isOccupied: true
                )
                index[key] = Int32(truncatingIfNeeded: slot)
                size += newSize
            }
            if expiresAt != .max {
                entriesWithExpiry += 1
                expiryQueue.insert(expiresAt: expiresAt, slot: slot, generation: entries[slot].generation)
            }

            // Expired entries go first: they are worthless, whatever the policy thinks of them.
            let expired = size > budget ? removeExpired(now: now, untilSizeAtMost: budget) : 0

            victims.removeAll(keepingCapacity: true)
            if isUpdate {
                policy.recordUpdate(slot, keyHash: key.hash, weight: newSize, expiresAt: expiresAt, victims: &victims)
            } else {
                policy.recordInsertion(slot, keyHash: key.hash, weight: newSize, expiresAt: expiresAt, victims: &victims)
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
            guard let found = index[key] else { return false }
            let slot = Int(found)
            removeEntry(slot)
            policy.recordRemoval(slot)
            return true
        }

        mutating func contains(_ key: HashedKey, now: UInt64) -> Bool {
            guard let found = index[key] else { return false }
            let slot = Int(found)
            if entries[slot].expiresAt <= now {
                removeEntry(slot)
                policy.recordRemoval(slot)
                expirations += 1
                return false
            }
            return true
        }

        mutating func removeAll() {
            index.removeAll()
            entries.removeAll()
            freeSlots.removeAll()
            expiryQueue.removeAll()
            entriesWithExpiry = 0
            size = 0
            policy.removeAll()
        }

        /// Removes expired entries, soonest expiry first, until none is left or the size is within `limit`.
        /// Returns how many were removed.
        mutating func removeExpired(now: UInt64, untilSizeAtMost limit: Int?) -> Int {
            var removed = 0
            let limit = limit ?? -1
            while limit < 0 || size > limit, let record = expiryQueue.popDue(now: now) {
                let slot = Int(record.slot)
                guard entries[slot].isOccupied, entries[slot].generation == record.generation else { continue }
                removeEntry(slot)
                policy.recordRemoval(slot)
                removed += 1
            }
            expirations += UInt64(removed)
            compactExpiryQueueIfNeeded()
            return removed
        }

        // MARK: Slots

        private mutating func allocateSlot() -> Int {
            if let slot = freeSlots.popLast() { return Int(slot) }
            entries.append(.free)
            return entries.count - 1
        }

        /// Drops the entry from the table and frees its slot. The caller informs the policy if needed.
        private mutating func removeEntry(_ slot: Int) {
            let entry = entries[slot]
            index.removeValue(forKey: HashedKey(key: entry.key, hash: entry.keyHash))
            size -= entry.size
            if entry.expiresAt != .max { entriesWithExpiry -= 1 }
            var freed = MemoryCacheEntry.free
            freed.generation = entry.generation &+ 1
            entries[slot] = freed
            freeSlots.append(Int32(truncatingIfNeeded: slot))
        }

        private mutating func compactExpiryQueueIfNeeded() {
            guard expiryQueue.needsCompaction(liveCount: entriesWithExpiry) else { return }
            var records: [ExpiryQueue.Record] = []
            records.reserveCapacity(entriesWithExpiry)
            for slot in entries.indices where entries[slot].isOccupied && entries[slot].expiresAt != .max {
                records.append(ExpiryQueue.Record(
                    expiresAt: entries[slot].expiresAt, slot: Int32(truncatingIfNeeded: slot), generation: entries[slot].generation
                ))
            }
            expiryQueue.replace(with: records)
        }
    }
}
