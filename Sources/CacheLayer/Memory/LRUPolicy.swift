/// Least recently used first: an intrusive doubly linked list over slot-indexed arrays.
///
/// Every operation is O(1) and allocation-free once the arrays have grown to the shard's slot count.
/// The head is the most recently used entry, the tail the next victim.
package struct LRUPolicy: EvictionPolicy {
    /// Marks "no slot" in the link arrays.
    private static let none: Int32 = -1

    package let capacity: Int
    package private(set) var weightedSize = 0

    /// Per slot: the neighbours towards the head and the tail, and the weight (-1 when not tracked).
    private var previous: [Int32] = []
    private var next: [Int32] = []
    private var weights: [Int] = []
    private var head: Int32 = LRUPolicy.none
    private var tail: Int32 = LRUPolicy.none

    package init(capacity: Int) {
        self.capacity = capacity
    }

    package mutating func recordHit(_ slot: Int, keyHash: UInt64) {
        guard slot < weights.count, weights[slot] >= 0, Int32(slot) != head else { return }
        unlink(slot)
        pushFront(slot)
    }

    package mutating func recordMiss(keyHash: UInt64) {}

    package mutating func recordInsertion(_ slot: Int, keyHash: UInt64, weight: Int, expiresAt: UInt64, victims: inout [Int]) {
        grow(toInclude: slot)
        if weights[slot] >= 0 {
            // The shard reuses a slot we still track only if it skipped recordRemoval; stay consistent anyway.
            weightedSize -= weights[slot]
            unlink(slot)
        }
        weights[slot] = weight
        weightedSize += weight
        pushFront(slot)
        evict(into: &victims)
    }

    package mutating func recordUpdate(_ slot: Int, keyHash: UInt64, weight: Int, expiresAt: UInt64, victims: inout [Int]) {
        recordInsertion(slot, keyHash: keyHash, weight: weight, expiresAt: expiresAt, victims: &victims)
    }

    package mutating func recordRemoval(_ slot: Int) {
        guard slot < weights.count, weights[slot] >= 0 else { return }
        weightedSize -= weights[slot]
        weights[slot] = -1
        unlink(slot)
    }

    package mutating func removeAll() {
        previous.removeAll(keepingCapacity: true)
        next.removeAll(keepingCapacity: true)
        weights.removeAll(keepingCapacity: true)
        head = Self.none
        tail = Self.none
        weightedSize = 0
    }

    // MARK: - List

    private mutating func evict(into victims: inout [Int]) {
        while weightedSize > capacity, tail != Self.none {
            let victim = Int(tail)
            weightedSize -= weights[victim]
            weights[victim] = -1
            unlink(victim)
            victims.append(victim)
        }
    }

    private mutating func grow(toInclude slot: Int) {
        guard slot >= weights.count else { return }
        let missing = slot + 1 - weights.count
        previous.append(contentsOf: repeatElement(Self.none, count: missing))
        next.append(contentsOf: repeatElement(Self.none, count: missing))
        weights.append(contentsOf: repeatElement(-1, count: missing))
    }

    private mutating func pushFront(_ slot: Int) {
        let slot32 = Int32(slot)
        previous[slot] = Self.none
        next[slot] = head
        if head != Self.none { previous[Int(head)] = slot32 } else { tail = slot32 }
        head = slot32
    }

    private mutating func unlink(_ slot: Int) {
        let before = previous[slot]
        let after = next[slot]
        if before != Self.none { next[Int(before)] = after } else { head = after }
        if after != Self.none { previous[Int(after)] = before } else { tail = before }
        previous[slot] = Self.none
        next[slot] = Self.none
    }
}
