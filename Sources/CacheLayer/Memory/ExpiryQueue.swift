import HeapModule

/// The entries of one shard that have a TTL, soonest expiry first: a min-heap with lazy deletion.
///
/// Updating or removing an entry does not touch the heap; it bumps the slot's generation instead, and a
/// record whose generation no longer matches is skipped when it surfaces. The owner rebuilds the heap
/// when stale records outnumber live ones (``needsCompaction(liveCount:)``), so it stays O(live entries).
struct ExpiryQueue {
    struct Record: Comparable {
        var expiresAt: UInt64
        var slot: Int32
        var generation: UInt32

        static func < (lhs: Record, rhs: Record) -> Bool {
            (lhs.expiresAt, lhs.slot) < (rhs.expiresAt, rhs.slot)
        }
    }

    private var heap = Heap<Record>()

    var count: Int { heap.count }

    mutating func insert(expiresAt: UInt64, slot: Int, generation: UInt32) {
        heap.insert(Record(expiresAt: expiresAt, slot: Int32(truncatingIfNeeded: slot), generation: generation))
    }

    /// Removes and returns the soonest record if it is due at `now`. It may be stale; the caller checks.
    mutating func popDue(now: UInt64) -> Record? {
        guard let top = heap.min, top.expiresAt <= now else { return nil }
        return heap.popMin()
    }

    func needsCompaction(liveCount: Int) -> Bool {
        heap.count > 64 && heap.count > 2 * liveCount
    }

    mutating func replace(with records: [Record]) {
        heap = Heap(records)
    }

    mutating func removeAll() {
        heap = Heap()
    }
}
