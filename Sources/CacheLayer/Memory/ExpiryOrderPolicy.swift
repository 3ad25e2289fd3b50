import HeapModule

/// The specification's policy: the entry that expires soonest goes first; entries without a TTL go after
/// every entry with one; among equal expiry times the oldest insertion goes first.
///
/// A min-heap ordered by (expiry, insertion sequence) with lazy deletion: removals and updates only bump the
/// slot's generation, and stale heap records are skipped when they reach the top. The heap is rebuilt when
/// stale records outnumber live ones, so memory stays O(live entries) and every operation is O(log n)
/// amortised.
package struct ExpiryOrderPolicy: EvictionPolicy {
    private struct Record: Comparable {
        var expiresAt: UInt64
        var sequence: UInt64
        var slot: Int32
        var generation: UInt32

        static func < (lhs: Record, rhs: Record) -> Bool {
            (lhs.expiresAt, lhs.sequence) < (rhs.expiresAt, rhs.sequence)
        }

        static func == (lhs: Record, rhs: Record) -> Bool {
            lhs.expiresAt == rhs.expiresAt && lhs.sequence == rhs.sequence
        }
    }

    package let capacity: Int
    package private(set) var weightedSize = 0

    private var heap = Heap<Record>()
    /// Per slot: the weight (-1 when not tracked) and the generation of its live heap record.
    private var weights: [Int] = []
    private var generations: [UInt32] = []
    private var expiries: [UInt64] = []
    private var sequences: [UInt64] = []
    private var trackedCount = 0
    private var nextSequence: UInt64 = 0

    package init(capacity: Int) {
        self.capacity = capacity
    }

    package mutating func recordHit(_ slot: Int, keyHash: UInt64) {}

    package mutating func recordMiss(keyHash: UInt64) {}

    package mutating func recordInsertion(_ entry: PolicyEntry, victims: inout [Int]) {
        let slot = entry.slot, weight = entry.weight, expiresAt = entry.expiresAt
        grow(toInclude: slot)
        if weights[slot] >= 0 {
            forget(slot)
        }
        weights[slot] = weight
        weightedSize += weight
        trackedCount += 1
        generations[slot] &+= 1
        expiries[slot] = expiresAt
        sequences[slot] = nextSequence
        heap.insert(Record(expiresAt: expiresAt, sequence: nextSequence, slot: Int32(slot), generation: generations[slot]))
        nextSequence += 1
        evict(into: &victims)
        compactIfNeeded()
    }

    package mutating func recordUpdate(_ entry: PolicyEntry, victims: inout [Int]) {
        // A new value is a new insertion: it gets a new place among entries with the same expiry.
        recordInsertion(entry, victims: &victims)
    }

    package mutating func recordRemoval(_ slot: Int) {
        guard slot < weights.count, weights[slot] >= 0 else { return }
        forget(slot)
        compactIfNeeded()
    }

    package mutating func removeAll() {
        heap = Heap()
        weights.removeAll(keepingCapacity: true)
        generations.removeAll(keepingCapacity: true)
        expiries.removeAll(keepingCapacity: true)
        sequences.removeAll(keepingCapacity: true)
        weightedSize = 0
        trackedCount = 0
    }

    // MARK: - Heap

    private mutating func forget(_ slot: Int) {
        weightedSize -= weights[slot]
        weights[slot] = -1
        trackedCount -= 1
        // Invalidates the slot's heap record; it is dropped when it reaches the top or at the next compaction.
        generations[slot] &+= 1
    }

    private mutating func evict(into victims: inout [Int]) {
        while weightedSize > capacity, let top = heap.popMin() {
            let slot = Int(top.slot)
            guard weights[slot] >= 0, generations[slot] == top.generation else { continue }
            forget(slot)
            victims.append(slot)
        }
    }

    private mutating func compactIfNeeded() {
        guard heap.count > 64, heap.count > 2 * trackedCount else { return }
        var live: [Record] = []
        live.reserveCapacity(trackedCount)
        for slot in weights.indices where weights[slot] >= 0 {
            live.append(Record(expiresAt: expiries[slot], sequence: sequences[slot], slot: Int32(slot), generation: generations[slot]))
        }
        heap = Heap(live)
    }

    private mutating func grow(toInclude slot: Int) {
        guard slot >= weights.count else { return }
        let missing = slot + 1 - weights.count
        weights.append(contentsOf: repeatElement(-1, count: missing))
        generations.append(contentsOf: repeatElement(0, count: missing))
        expiries.append(contentsOf: repeatElement(0, count: missing))
        sequences.append(contentsOf: repeatElement(0, count: missing))
    }
}
