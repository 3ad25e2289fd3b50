/// S3-FIFO (Yang et al., SOSP 2023), sized in bytes: a small FIFO, a main FIFO and a ghost FIFO.
///
/// New keys enter the *small* queue (10% of the bytes). Most objects are requested once and leave from
/// there quickly; their key hashes are remembered in the *ghost* queue. A key leaving the small queue after
/// being hit twice moves to *main* with its count (as libCacheSim's reference implementation, whose figures
/// this reproduces on the ARC traces), and a key that misses while its hash is still in the ghost queue goes
/// straight to main. Main is a FIFO with a 2-bit frequency: an entry with a non-zero count at the head is reinserted
/// at the tail with its count decremented (CLOCK), otherwise evicted.
///
/// A hit only saturating-increments the entry's counter, with no list move, which is what makes the policy
/// cheap under concurrency.
package struct S3FIFOPolicy: EvictionPolicy {
    /// The lists of the slot table.
    private static let small = 0
    private static let main = 1

    /// The share of the capacity given to the small queue (the paper's 10%).
    package let smallShare: Double
    /// Hits needed in the small queue to be moved to main instead of evicted.
    package let moveToMainThreshold: UInt8
    /// Whether an entry keeps its hit count when it moves from small to main.
    package let carriesFrequency: Bool

    package let capacity: Int
    package var weightedSize: Int { table.weightedSize }

    private var table = SlotTable(listCount: 2)
    private var frequencies: [UInt8] = []
    private let smallMaximum: Int

    /// Hashes evicted from the small queue.
    private var ghost: GhostList

    package init(capacity: Int) {
        self.init(capacity: capacity, smallShare: 0.1, moveToMainThreshold: 2, carriesFrequency: true, ghostShare: 0.9)
    }

    /// A policy with explicit knobs, for measurement.
    package init(
        capacity: Int,
        smallShare: Double,
        moveToMainThreshold: UInt8,
        carriesFrequency: Bool,
        ghostShare: Double
    ) {
        self.capacity = max(0, capacity)
        self.carriesFrequency = carriesFrequency
        self.smallShare = smallShare
        self.moveToMainThreshold = moveToMainThreshold
        smallMaximum = max(1, Int(Double(self.capacity) * smallShare))
        // The paper's ghost remembers about as many bytes of keys as main holds (90%).
        ghost = GhostList(maximum: Int(Double(self.capacity) * ghostShare))
    }

    // MARK: EvictionPolicy

    package mutating func recordHit(_ slot: Int, keyHash: UInt64) {
        if frequencies[slot] < 3 { frequencies[slot] += 1 }
    }

    package mutating func recordMiss(keyHash: UInt64) {}

    package mutating func recordInsertion(_ entry: PolicyEntry, victims: inout [Int]) {
        let slot = entry.slot, keyHash = entry.keyHash, weight = entry.weight
        guard table.prepareIfItFits(entry, capacity: capacity, victims: &victims) else { return }
        table.extend(&frequencies, with: 0)
        frequencies[slot] = 0
        let remembered = ghost.remove(keyHash)
        // Make room before inserting, as the paper does: otherwise a full small queue would evict the new
        // entry itself before it had any chance of a hit. Seen recently enough to be remembered: it was
        // evicted too early, so it skips probation.
        evictEntries(toFit: weight, &victims)
        table.link(slot, to: remembered ? Self.main : Self.small)
    }

    package mutating func recordUpdate(_ entry: PolicyEntry, victims: inout [Int]) {
        let slot = entry.slot, weight = entry.weight
        guard table.list(of: slot) != nil else {
            recordInsertion(entry, victims: &victims)
            return
        }
        guard weight <= capacity else {
            table.remove(slot)
            victims.append(slot)
            return
        }
        table.setWeight(slot, weight)
        if frequencies[slot] < 3 { frequencies[slot] += 1 }
        evictEntries(toFit: 0, &victims)
    }

    package mutating func recordRemoval(_ slot: Int) {
        guard table.list(of: slot) != nil else { return }
        table.remove(slot)
    }

    package mutating func removeAll() {
        table.removeAll()
        ghost.removeAll()
    }

    // MARK: Queues

    private mutating func evictEntries(toFit incoming: Int, _ victims: inout [Int]) {
        while weightedSize + incoming > capacity, weightedSize > 0 {
            if table.listWeights[Self.small] >= smallMaximum || table.counts[Self.main] == 0 {
                evictFromSmall(&victims)
            } else {
                evictFromMain(&victims)
            }
        }
    }

    /// Evicts the small queue's oldest entry that was not hit, promoting the hit ones on the way.
    private mutating func evictFromSmall(_ victims: inout [Int]) {
        while let slot = table.first(Self.small) {
            if frequencies[slot] >= moveToMainThreshold {
                if !carriesFrequency { frequencies[slot] = 0 }
                table.move(slot, to: Self.main)
            } else {
                table.remove(slot)
                victims.append(slot)
                ghost.remember(table.hashes[slot], weight: table.weights[slot])
                return
            }
        }
    }

    /// Evicts main's oldest entry that was not hit since it was last passed over (CLOCK with 2-bit counts).
    private mutating func evictFromMain(_ victims: inout [Int]) {
        while let slot = table.first(Self.main) {
            if frequencies[slot] > 0 {
                frequencies[slot] -= 1
                table.moveToBack(slot)
            } else {
                table.remove(slot)
                victims.append(slot)
                return
            }
        }
    }
}
