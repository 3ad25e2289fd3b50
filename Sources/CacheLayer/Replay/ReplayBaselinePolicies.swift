import HeapModule

/// Least recently used first, as a baseline for trace replay.
///
/// The memory cache's own LRU and expiry policies live with `MemoryCache`; these two exist so the replay
/// tool can measure baselines through the same slot-driving code as the frequency-aware policies.
package struct ReplayLRUPolicy: EvictionPolicy {
    package let capacity: Int
    package private(set) var weightedSize = 0
    private var lists = SlotLists(listCount: 1)
    private var weights: [Int] = []
    private var linked: [Bool] = []

    package init(capacity: Int) { self.capacity = max(0, capacity) }

    package mutating func recordHit(_ slot: Int, keyHash: UInt64) {
        lists.moveToBack(slot, in: 0)
    }

    package mutating func recordMiss(keyHash: UInt64) {}

    package mutating func recordInsertion(
        _ slot: Int,
        keyHash: UInt64,
        weight: Int,
        expiresAt: UInt64,
        victims: inout [Int]
    ) {
        guard weight <= capacity else {
            victims.append(slot)
            return
        }
        if slot >= linked.count {
            let newCount = max(slot + 1, linked.count * 2, 16)
            linked.append(contentsOf: repeatElement(false, count: newCount - linked.count))
            weights.append(contentsOf: repeatElement(0, count: newCount - weights.count))
            lists.reserve(slot: newCount - 1)
        }
        weights[slot] = weight
        linked[slot] = true
        lists.append(slot, to: 0)
        weightedSize += weight
        evict(&victims)
    }

    package mutating func recordUpdate(
        _ slot: Int,
        keyHash: UInt64,
        weight: Int,
        expiresAt: UInt64,
        victims: inout [Int]
    ) {
        recordRemoval(slot)
        recordInsertion(slot, keyHash: keyHash, weight: weight, expiresAt: expiresAt, victims: &victims)
    }

    package mutating func recordRemoval(_ slot: Int) {
        guard slot < linked.count, linked[slot] else { return }
        lists.remove(slot, from: 0)
        linked[slot] = false
        weightedSize -= weights[slot]
    }

    package mutating func removeAll() {
        lists.removeAll()
        for index in linked.indices { linked[index] = false }
        weightedSize = 0
    }

    private mutating func evict(_ victims: inout [Int]) {
        while weightedSize > capacity, let slot = lists.first(0) {
            recordRemoval(slot)
            victims.append(slot)
        }
    }
}

/// Soonest expiry first, entries without expiry last and oldest first among equals: the specification's
/// policy, as a baseline for trace replay. Without TTLs it is FIFO.
package struct ReplayExpiryPolicy: EvictionPolicy {
    private struct Item: Comparable {
        var expiresAt: UInt64
        var sequence: UInt64
        var slot: Int

        static func < (lhs: Item, rhs: Item) -> Bool {
            (lhs.expiresAt, lhs.sequence) < (rhs.expiresAt, rhs.sequence)
        }
    }

    package let capacity: Int
    package private(set) var weightedSize = 0
    private var heap = Heap<Item>()
    /// The sequence number of each slot's live heap item; 0 when the slot is empty. Older items are stale.
    private var sequences: [UInt64] = []
    private var weights: [Int] = []
    private var nextSequence: UInt64 = 0

    package init(capacity: Int) { self.capacity = max(0, capacity) }

    package mutating func recordHit(_ slot: Int, keyHash: UInt64) {}

    package mutating func recordMiss(keyHash: UInt64) {}

    package mutating func recordInsertion(
        _ slot: Int,
        keyHash: UInt64,
        weight: Int,
        expiresAt: UInt64,
        victims: inout [Int]
    ) {
        guard weight <= capacity else {
            victims.append(slot)
            return
        }
        if slot >= sequences.count {
            let newCount = max(slot + 1, sequences.count * 2, 16)
            sequences.append(contentsOf: repeatElement(0, count: newCount - sequences.count))
            weights.append(contentsOf: repeatElement(0, count: newCount - weights.count))
        }
        nextSequence += 1
        sequences[slot] = nextSequence
        weights[slot] = weight
        weightedSize += weight
        heap.insert(Item(expiresAt: expiresAt, sequence: nextSequence, slot: slot))
        while weightedSize > capacity, let item = heap.popMin() {
            guard sequences[item.slot] == item.sequence else { continue }
            sequences[item.slot] = 0
            weightedSize -= weights[item.slot]
            victims.append(item.slot)
        }
        // Stale items would otherwise pile up under updates and removals.
        if heap.count > 4 * max(16, sequences.count) { compact() }
    }

    package mutating func recordUpdate(
        _ slot: Int,
        keyHash: UInt64,
        weight: Int,
        expiresAt: UInt64,
        victims: inout [Int]
    ) {
        recordRemoval(slot)
        recordInsertion(slot, keyHash: keyHash, weight: weight, expiresAt: expiresAt, victims: &victims)
    }

    package mutating func recordRemoval(_ slot: Int) {
        guard slot < sequences.count, sequences[slot] != 0 else { return }
        sequences[slot] = 0
        weightedSize -= weights[slot]
    }

    package mutating func removeAll() {
        heap = Heap()
        for index in sequences.indices { sequences[index] = 0 }
        weightedSize = 0
    }

    private mutating func compact() {
        heap = Heap(heap.unordered.filter { sequences[$0.slot] == $0.sequence })
    }
}
