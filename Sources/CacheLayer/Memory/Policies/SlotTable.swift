/// The per-slot bookkeeping every queue-based policy needs: which queue (list) a slot is in, its key hash
/// and weight, intrusive doubly linked lists over the slots, and the bytes each list holds.
///
/// A slot belongs to at most one list at a time, so every list shares one pair of `previous`/`next` arrays
/// indexed by slot: moving an entry between queues (window, probation, protected; small, main; T1, T2) costs
/// a few array writes and no allocation, which keeps the policies' per-request work constant-time. Shards
/// hand out slots densely from 0, so the arrays grow by doubling as slots appear.
package struct SlotTable: Sendable {
    /// Marks the absence of a neighbour, head, tail or list.
    package static let none = -1
    private static let none32 = Int32(none)

    /// Neighbours as 32-bit slots (shards number their slots in `Int32`): 8 bytes per slot less than `Int`.
    private var previous: [Int32] = []
    private var next: [Int32] = []
    private var heads: [Int]
    private var tails: [Int]
    /// The list each slot is in, or ``none``.
    private var listOfSlot: [Int8] = []
    /// How many slots each list holds.
    package private(set) var counts: [Int]
    /// The bytes linked in each list.
    package private(set) var listWeights: [Int]
    /// The bytes linked in all lists.
    package private(set) var weightedSize = 0
    /// How many slots are linked in all lists.
    package private(set) var count = 0
    /// The weight of each slot, as given to ``insert(_:hash:weight:into:)`` or ``setWeight(_:_:)``.
    package private(set) var weights: [Int] = []
    /// The key hash of each slot, as given to ``insert(_:hash:weight:into:)``.
    package private(set) var hashes: [UInt64] = []

    /// `listCount` empty lists, numbered from 0.
    package init(listCount: Int) {
        heads = Array(repeating: Self.none, count: listCount)
        tails = Array(repeating: Self.none, count: listCount)
        counts = Array(repeating: 0, count: listCount)
        listWeights = Array(repeating: 0, count: listCount)
    }

    /// How many slots the arrays hold.
    package var slotCapacity: Int { listOfSlot.count }

    /// Grows a policy's own per-slot array (frequencies, flags) to the table's slot capacity.
    @inline(__always)
    package func extend<Element>(_ array: inout [Element], with value: Element) {
        if array.count < listOfSlot.count { array.append(contentsOf: repeatElement(value, count: listOfSlot.count - array.count)) }
    }

    /// Grows the arrays so that `slot` can be linked.
    package mutating func reserve(slot: Int) {
        guard slot >= listOfSlot.count else { return }
        let newCount = max(slot + 1, listOfSlot.count * 2, 16)
        let added = newCount - listOfSlot.count
        previous.append(contentsOf: repeatElement(Self.none32, count: added))
        next.append(contentsOf: repeatElement(Self.none32, count: added))
        listOfSlot.append(contentsOf: repeatElement(Int8(Self.none), count: added))
        weights.append(contentsOf: repeatElement(0, count: added))
        hashes.append(contentsOf: repeatElement(0, count: added))
    }

    /// The list `slot` is in, or `nil` when it is in none (never inserted, removed, or beyond the arrays).
    @inline(__always)
    package func list(of slot: Int) -> Int? {
        guard slot < listOfSlot.count else { return nil }
        let list = Int(listOfSlot[slot])
        return list == Self.none ? nil : list
    }

    /// Records `slot`'s key hash and weight without linking it (a policy that decides the list after making
    /// room); ``insert(_:hash:weight:into:)`` links it later.
    package mutating func prepare(_ slot: Int, hash: UInt64, weight: Int) {
        reserve(slot: slot)
        hashes[slot] = hash
        weights[slot] = weight
    }

    /// Records a new entry as ``prepare(_:hash:weight:)`` does when it fits in `capacity`; otherwise appends its slot
    /// to `victims` (an entry larger than the whole cache would flush everything for nothing) and returns `false`.
    package mutating func prepareIfItFits(_ entry: PolicyEntry, capacity: Int, victims: inout [Int]) -> Bool {
        guard entry.weight <= capacity else {
            victims.append(entry.slot)
            return false
        }
        prepare(entry.slot, hash: entry.keyHash, weight: entry.weight)
        return true
    }

    /// Records `slot`'s key hash and weight and links it as the newest entry of `list`. The slot must not be
    /// in any list.
    package mutating func insert(_ slot: Int, hash: UInt64, weight: Int, into list: Int) {
        prepare(slot, hash: hash, weight: weight)
        link(slot, to: list)
    }

    /// Links a prepared `slot` (see ``prepare(_:hash:weight:)``) as the newest entry of `list`.
    package mutating func link(_ slot: Int, to list: Int) {
        let tail = tails[list]
        previous[slot] = Int32(truncatingIfNeeded: tail)
        next[slot] = Self.none32
        if tail == Self.none { heads[list] = slot } else { next[tail] = Int32(truncatingIfNeeded: slot) }
        tails[list] = slot
        listOfSlot[slot] = Int8(list)
        counts[list] += 1
        count += 1
        listWeights[list] += weights[slot]
        weightedSize += weights[slot]
    }

    /// Unlinks `slot` from its list and returns that list. The slot must be in one.
    @discardableResult
    package mutating func remove(_ slot: Int) -> Int {
        let list = Int(listOfSlot[slot])
        let before = Int(previous[slot])
        let after = Int(next[slot])
        if before == Self.none { heads[list] = after } else { next[before] = Int32(truncatingIfNeeded: after) }
        if after == Self.none { tails[list] = before } else { previous[after] = Int32(truncatingIfNeeded: before) }
        previous[slot] = Self.none32
        next[slot] = Self.none32
        listOfSlot[slot] = Int8(Self.none)
        counts[list] -= 1
        count -= 1
        listWeights[list] -= weights[slot]
        weightedSize -= weights[slot]
        return list
    }

    /// Moves `slot` from its list to the newest end of `list`.
    package mutating func move(_ slot: Int, to list: Int) {
        remove(slot)
        link(slot, to: list)
    }

    /// Makes `slot` the newest entry of the list it is in. The hit path of LRU-ordered lists: relinks in place,
    /// without the count and weight bookkeeping of a move between lists (which is unchanged), about half the
    /// array writes of ``move(_:to:)``.
    package mutating func moveToBack(_ slot: Int) {
        let list = Int(listOfSlot[slot])
        let tail = tails[list]
        guard tail != slot else { return }
        let before = Int(previous[slot])
        // Not the tail, so it has a successor.
        let after = Int(next[slot])
        if before == Self.none { heads[list] = after } else { next[before] = Int32(truncatingIfNeeded: after) }
        previous[after] = Int32(truncatingIfNeeded: before)
        previous[slot] = Int32(truncatingIfNeeded: tail)
        next[slot] = Self.none32
        next[tail] = Int32(truncatingIfNeeded: slot)
        tails[list] = slot
    }

    /// Changes the weight of `slot`, and the byte counts of its list if it is in one.
    package mutating func setWeight(_ slot: Int, _ weight: Int) {
        if let list = list(of: slot) {
            let delta = weight - weights[slot]
            listWeights[list] += delta
            weightedSize += delta
        }
        weights[slot] = weight
    }

    /// The oldest slot of `list` (its head), or `nil` when the list is empty.
    package func first(_ list: Int) -> Int? {
        Self.slot(heads[list])
    }

    /// The newest slot of `list` (its tail), or `nil` when the list is empty.
    package func last(_ list: Int) -> Int? {
        Self.slot(tails[list])
    }

    /// The slot after `slot` (towards the tail), or `nil`.
    package func after(_ slot: Int) -> Int? {
        Self.slot(Int(next[slot]))
    }

    /// The slot before `slot` (towards the head), or `nil`.
    package func before(_ slot: Int) -> Int? {
        Self.slot(Int(previous[slot]))
    }

    /// `nil` for the `none` marker, else the slot.
    @inline(__always)
    private static func slot(_ value: Int) -> Int? {
        value == Self.none ? nil : value
    }

    /// Empties every list; the arrays keep their size for reuse.
    package mutating func removeAll() {
        for index in heads.indices {
            heads[index] = Self.none
            tails[index] = Self.none
            counts[index] = 0
            listWeights[index] = 0
        }
        for index in next.indices {
            previous[index] = Self.none32
            next[index] = Self.none32
            listOfSlot[index] = Int8(Self.none)
        }
        weightedSize = 0
        count = 0
    }
}
