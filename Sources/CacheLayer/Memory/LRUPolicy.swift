/// Least recently used first: an intrusive doubly linked list over slot-indexed arrays.
///
/// Every operation is O(1) and allocation-free once the arrays have grown to the shard's slot count.
/// The head is the most recently used entry, the tail the next victim.
package struct LRUPolicy: EvictionPolicy {
    /// Marks "no slot" in the link arrays.
    private static let none: Int32 = -1

    package let capacity: Int
    package private(set) var weightedSize = 0

    /// A slot's neighbours towards the head and the tail, side by side so that relinking a slot touches
    /// one cache line per slot involved.
    private struct Links {
        var previous: Int32
        var next: Int32
    }

    private static let unlinked = Links(previous: none, next: none)

    private var links: [Links] = []
    /// Per slot: the weight, -1 when not tracked.
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

    package mutating func recordInsertion(_ entry: PolicyEntry, victims: inout [Int]) {
        let slot = entry.slot, weight = entry.weight
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

    package mutating func recordUpdate(_ entry: PolicyEntry, victims: inout [Int]) {
        recordInsertion(entry, victims: &victims)
    }

    package mutating func recordRemoval(_ slot: Int) {
        guard slot < weights.count, weights[slot] >= 0 else { return }
        weightedSize -= weights[slot]
        weights[slot] = -1
        unlink(slot)
    }

    package mutating func removeAll() {
        links.removeAll(keepingCapacity: true)
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
        links.append(contentsOf: repeatElement(Self.unlinked, count: missing))
        weights.append(contentsOf: repeatElement(-1, count: missing))
    }

    private mutating func pushFront(_ slot: Int) {
        let slot32 = Int32(slot)
        links[slot] = Links(previous: Self.none, next: head)
        if head != Self.none { links[Int(head)].previous = slot32 } else { tail = slot32 }
        head = slot32
    }

    private mutating func unlink(_ slot: Int) {
        let before = links[slot].previous
        let after = links[slot].next
        if before != Self.none { links[Int(before)].next = after } else { head = after }
        if after != Self.none { links[Int(after)].previous = before } else { tail = before }
        links[slot] = Self.unlinked
    }
}
