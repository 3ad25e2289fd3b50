import CacheLayer
/// Adaptive Replacement Cache (Megiddo and Modha, FAST'03), sized in bytes: a comparison policy for
/// `cachelayer replay`, not a memory-cache strategy.
///
/// Two resident LRU lists, T1 (seen once recently) and T2 (seen at least twice), and two ghost lists of
/// hashes, B1 and B2, of the entries they last evicted. A miss that hits B1 says T1 was too small and moves
/// the target size of T1 (`p`) up; a miss in B2 moves it down. A key found in a ghost list is stored in T2.
/// With unit weights this is the paper's algorithm; with weights, sizes and steps are counted in bytes.
package struct ARCPolicy: EvictionPolicy {
    /// The lists of the slot table.
    private static let t1 = 0
    private static let t2 = 1

    package let capacity: Int
    package var weightedSize: Int { table.weightedSize }

    private var table = SlotTable(listCount: 2)
    private var t1WeightedSize: Int { table.listWeights[Self.t1] }
    private var t2WeightedSize: Int { table.listWeights[Self.t2] }
    private var b1 = GhostList()
    private var b2 = GhostList()
    /// The target size of T1, in bytes.
    package private(set) var target = 0

    package init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    package mutating func recordHit(_ slot: Int, keyHash: UInt64) {
        switch table.list(of: slot) {
        case Self.t1: table.move(slot, to: Self.t2)
        case Self.t2: table.moveToBack(slot)
        default: break
        }
    }

    package mutating func recordMiss(keyHash: UInt64) {}

    package mutating func recordInsertion(_ entry: PolicyEntry, victims: inout [Int]) {
        let slot = entry.slot, keyHash = entry.keyHash, weight = entry.weight
        guard table.prepareIfItFits(entry, capacity: capacity, victims: &victims) else { return }
        let queue: Int
        if b1.contains(keyHash) {
            let step = max(b2.weightedSize / max(1, b1.weightedSize), 1) * weight
            target = min(capacity, target + step)
            b1.remove(keyHash)
            makeRoom(for: weight, ghostInB2: false, &victims)
            queue = Self.t2
        } else if b2.contains(keyHash) {
            let step = max(b1.weightedSize / max(1, b2.weightedSize), 1) * weight
            target = max(0, target - step)
            b2.remove(keyHash)
            makeRoom(for: weight, ghostInB2: true, &victims)
            queue = Self.t2
        } else {
            // The directory (resident and ghosts) holds at most twice the capacity, L1 = T1 ∪ B1 at most once.
            if t1WeightedSize + b1.weightedSize + weight > capacity {
                while t1WeightedSize + b1.weightedSize + weight > capacity, b1.weightedSize > 0 { b1.removeOldest() }
                while t1WeightedSize + weight > capacity, let oldest = table.first(Self.t1) {
                    evict(oldest, toGhost: false, &victims)
                }
            } else {
                while t1WeightedSize + t2WeightedSize + b1.weightedSize + b2.weightedSize + weight > 2 * capacity,
                    b2.weightedSize > 0
                {
                    b2.removeOldest()
                }
            }
            makeRoom(for: weight, ghostInB2: false, &victims)
            queue = Self.t1
        }
        table.link(slot, to: queue)
    }

    package mutating func recordUpdate(_ entry: PolicyEntry, victims: inout [Int]) {
        let slot = entry.slot
        guard table.list(of: slot) != nil else {
            recordInsertion(entry, victims: &victims)
            return
        }
        table.remove(slot)
        recordInsertion(entry, victims: &victims)
    }

    package mutating func recordRemoval(_ slot: Int) {
        guard table.list(of: slot) != nil else { return }
        table.remove(slot)
    }

    package mutating func removeAll() {
        table.removeAll()
    }

    /// The paper's REPLACE, repeated until `weight` more bytes fit: evict from T1 when it exceeds its target
    /// (or meets it and the key came from B2), else from T2; the evicted key goes to the matching ghost.
    private mutating func makeRoom(for weight: Int, ghostInB2: Bool, _ victims: inout [Int]) {
        while weightedSize + weight > capacity {
            let fromT1 =
                t1WeightedSize > 0
                && (t1WeightedSize > target || (ghostInB2 && t1WeightedSize == target) || t2WeightedSize == 0)
            guard let oldest = table.first(fromT1 ? Self.t1 : Self.t2) else { return }
            evict(oldest, toGhost: true, &victims)
        }
    }

    private mutating func evict(_ slot: Int, toGhost: Bool, _ victims: inout [Int]) {
        let queue = table.remove(slot)
        if toGhost {
            if queue == Self.t1 {
                b1.remember(table.hashes[slot], weight: table.weights[slot])
            } else {
                b2.remember(table.hashes[slot], weight: table.weights[slot])
            }
        }
        victims.append(slot)
    }
}
