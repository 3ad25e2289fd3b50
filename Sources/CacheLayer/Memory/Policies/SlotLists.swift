/// Several intrusive doubly linked lists over the slots of one shard.
///
/// A slot belongs to at most one list at a time, so every list shares one pair of `previous`/`next` arrays
/// indexed by slot: moving an entry between queues (window, probation, protected; small, main) costs a few
/// array writes and no allocation, which keeps the policies' per-request work constant-time.
package struct SlotLists: Sendable {
    /// Marks the absence of a neighbour, head or tail.
    package static let none = -1

    private var previous: [Int] = []
    private var next: [Int] = []
    private var heads: [Int]
    private var tails: [Int]
    /// How many slots each list holds.
    package private(set) var counts: [Int]

    /// `listCount` empty lists, numbered from 0.
    package init(listCount: Int) {
        heads = Array(repeating: Self.none, count: listCount)
        tails = Array(repeating: Self.none, count: listCount)
        counts = Array(repeating: 0, count: listCount)
    }

    /// Grows the link arrays so that `slot` can be linked; shards hand out slots densely from 0.
    package mutating func reserve(slot: Int) {
        guard slot >= next.count else { return }
        let newCount = max(slot + 1, next.count * 2, 16)
        previous.append(contentsOf: repeatElement(Self.none, count: newCount - previous.count))
        next.append(contentsOf: repeatElement(Self.none, count: newCount - next.count))
    }

    /// The oldest slot of `list` (its head), or `nil` when the list is empty.
    package func first(_ list: Int) -> Int? {
        let head = heads[list]
        return head == Self.none ? nil : head
    }

    /// The newest slot of `list` (its tail), or `nil` when the list is empty.
    package func last(_ list: Int) -> Int? {
        let tail = tails[list]
        return tail == Self.none ? nil : tail
    }

    /// The slot after `slot` (towards the tail), or `nil`.
    package func after(_ slot: Int) -> Int? {
        let value = next[slot]
        return value == Self.none ? nil : value
    }

    /// The slot before `slot` (towards the head), or `nil`.
    package func before(_ slot: Int) -> Int? {
        let value = previous[slot]
        return value == Self.none ? nil : value
    }

    /// Links `slot` as the newest entry of `list`. The slot must not be in any list.
    package mutating func append(_ slot: Int, to list: Int) {
        let tail = tails[list]
        previous[slot] = tail
        next[slot] = Self.none
        if tail == Self.none { heads[list] = slot } else { next[tail] = slot }
        tails[list] = slot
        counts[list] += 1
    }

    /// Unlinks `slot` from `list`, which must hold it.
    package mutating func remove(_ slot: Int, from list: Int) {
        let before = previous[slot]
        let after = next[slot]
        if before == Self.none { heads[list] = after } else { next[before] = after }
        if after == Self.none { tails[list] = before } else { previous[after] = before }
        previous[slot] = Self.none
        next[slot] = Self.none
        counts[list] -= 1
    }

    /// Makes `slot`, already in `list`, its newest entry.
    package mutating func moveToBack(_ slot: Int, in list: Int) {
        guard tails[list] != slot else { return }
        remove(slot, from: list)
        append(slot, to: list)
    }

    /// Empties every list; the link arrays keep their size for reuse.
    package mutating func removeAll() {
        for index in heads.indices {
            heads[index] = Self.none
            tails[index] = Self.none
            counts[index] = 0
        }
        for index in next.indices {
            previous[index] = Self.none
            next[index] = Self.none
        }
    }
}
