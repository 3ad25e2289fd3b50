import CacheLayer
/// Adaptive Replacement Cache (Megiddo and Modha, FAST'03), sized in bytes: a comparison policy for
/// `cachelayer replay`, not a memory-cache strategy.
///
/// Two resident LRU lists, T1 (seen once recently) and T2 (seen at least twice), and two ghost lists of
/// hashes, B1 and B2, of the entries they last evicted. A miss that hits B1 says T1 was too small and moves
/// the target size of T1 (`p`) up; a miss in B2 moves it down. A key found in a ghost list is stored in T2.
/// With unit weights this is the paper's algorithm; with weights, sizes and steps are counted in bytes.
package struct ARCPolicy: EvictionPolicy {
    private enum Queue: UInt8 {
        case none = 0
        case t1 = 1
        case t2 = 2

        var list: Int { Int(rawValue) - 1 }
    }

    package let capacity: Int
    package private(set) var weightedSize = 0

    private var lists = SlotLists(listCount: 2)
    private var queues: [Queue] = []
    private var weights: [Int] = []
    private var hashes: [UInt64] = []
    private var t1WeightedSize = 0
    private var t2WeightedSize = 0
    private var b1 = GhostList()
    private var b2 = GhostList()
    /// The target size of T1, in bytes.
    package private(set) var target = 0

    package init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    package mutating func recordHit(_ slot: Int, keyHash: UInt64) {
        guard slot < queues.count else { return }
        switch queues[slot] {
        case .t1:
            lists.remove(slot, from: Queue.t1.list)
            t1WeightedSize -= weights[slot]
            lists.append(slot, to: Queue.t2.list)
            t2WeightedSize += weights[slot]
            queues[slot] = .t2
        case .t2:
            lists.moveToBack(slot, in: Queue.t2.list)
        case .none:
            break
        }
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
        reserve(slot)
        hashes[slot] = keyHash
        weights[slot] = weight
        let queue: Queue
        if b1.contains(keyHash) {
            let step = max(b2.weightedSize / max(1, b1.weightedSize), 1) * weight
            target = min(capacity, target + step)
            b1.remove(keyHash)
            makeRoom(for: weight, ghostInB2: false, &victims)
            queue = .t2
        } else if b2.contains(keyHash) {
            let step = max(b1.weightedSize / max(1, b2.weightedSize), 1) * weight
            target = max(0, target - step)
            b2.remove(keyHash)
            makeRoom(for: weight, ghostInB2: true, &victims)
            queue = .t2
        } else {
            // The directory (resident and ghosts) holds at most twice the capacity, L1 = T1 ∪ B1 at most once.
            if t1WeightedSize + b1.weightedSize + weight > capacity {
                while t1WeightedSize + b1.weightedSize + weight > capacity, b1.weightedSize > 0 { b1.removeOldest() }
                while t1WeightedSize + weight > capacity, let oldest = lists.first(Queue.t1.list) {
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
            queue = .t1
        }
        queues[slot] = queue
        lists.append(slot, to: queue.list)
        if queue == .t1 { t1WeightedSize += weight } else { t2WeightedSize += weight }
        weightedSize += weight
    }

    package mutating func recordUpdate(
        _ slot: Int,
        keyHash: UInt64,
        weight: Int,
        expiresAt: UInt64,
        victims: inout [Int]
    ) {
        guard slot < queues.count, queues[slot] != .none else {
            recordInsertion(slot, keyHash: keyHash, weight: weight, expiresAt: expiresAt, victims: &victims)
            return
        }
        unlink(slot)
        recordInsertion(slot, keyHash: keyHash, weight: weight, expiresAt: expiresAt, victims: &victims)
    }

    package mutating func recordRemoval(_ slot: Int) {
        guard slot < queues.count, queues[slot] != .none else { return }
        unlink(slot)
    }

    package mutating func removeAll() {
        lists.removeAll()
        for index in queues.indices { queues[index] = .none }
        weightedSize = 0
        t1WeightedSize = 0
        t2WeightedSize = 0
    }

    /// The paper's REPLACE, repeated until `weight` more bytes fit: evict from T1 when it exceeds its target
    /// (or meets it and the key came from B2), else from T2; the evicted key goes to the matching ghost.
    private mutating func makeRoom(for weight: Int, ghostInB2: Bool, _ victims: inout [Int]) {
        while weightedSize + weight > capacity {
            let fromT1 =
                t1WeightedSize > 0
                && (t1WeightedSize > target || (ghostInB2 && t1WeightedSize == target) || t2WeightedSize == 0)
            let list = fromT1 ? Queue.t1.list : Queue.t2.list
            guard let oldest = lists.first(list) else { return }
            evict(oldest, toGhost: true, &victims)
        }
    }

    private mutating func evict(_ slot: Int, toGhost: Bool, _ victims: inout [Int]) {
        let queue = queues[slot]
        unlink(slot)
        if toGhost {
            if queue == .t1 { b1.remember(hashes[slot], weight: weights[slot]) } else { b2.remember(hashes[slot], weight: weights[slot]) }
        }
        victims.append(slot)
    }

    private mutating func unlink(_ slot: Int) {
        let queue = queues[slot]
        lists.remove(slot, from: queue.list)
        if queue == .t1 { t1WeightedSize -= weights[slot] } else { t2WeightedSize -= weights[slot] }
        weightedSize -= weights[slot]
        queues[slot] = .none
    }

    private mutating func reserve(_ slot: Int) {
        guard slot >= queues.count else { return }
        let newCount = max(slot + 1, queues.count * 2, 16)
        queues.append(contentsOf: repeatElement(.none, count: newCount - queues.count))
        weights.append(contentsOf: repeatElement(0, count: newCount - weights.count))
        hashes.append(contentsOf: repeatElement(0, count: newCount - hashes.count))
        lists.reserve(slot: newCount - 1)
    }
}
