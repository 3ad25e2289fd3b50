import DequeModule

/// The hashes of keys a policy recently let go, with the bytes each stood for, oldest first, within a byte
/// budget: the ghost lists of S3-FIFO, ARC, and W-TinyLFU's rejected candidates. A key that comes back while
/// its hash is remembered was let go too early.
///
/// A record forgotten out of order (the key came back) stays in the queue until it reaches the front, where
/// its stale sequence number gives it away; its bytes stop counting at once. The queue is compacted when
/// stale records outnumber live ones, so it never grows beyond about twice what is remembered.
package struct GhostList: Sendable {
    private var order: Deque<(hash: UInt64, sequence: UInt64)> = []
    private var live: [UInt64: (sequence: UInt64, weight: Int)] = [:]
    private var sequence: UInt64 = 0
    /// Bytes remembered.
    package private(set) var weightedSize = 0
    /// The most bytes remembered; ``remember(_:weight:)`` forgets the oldest records beyond it.
    package let maximum: Int

    /// An empty list that remembers at most `maximum` bytes (no limit by default: the owner trims).
    package init(maximum: Int = .max) {
        self.maximum = maximum
    }

    /// Records in the queue, stale ones included (for tests of the compaction).
    package var queuedRecords: Int { order.count }

    /// Whether `hash` is remembered.
    package func contains(_ hash: UInt64) -> Bool { live[hash] != nil }

    /// Remembers `hash` as the newest record (replacing an older record of it), then forgets the oldest
    /// records beyond ``maximum``.
    package mutating func remember(_ hash: UInt64, weight: Int) {
        sequence &+= 1
        if let old = live.updateValue((sequence, weight), forKey: hash) { weightedSize -= old.weight }
        order.append((hash, sequence))
        weightedSize += weight
        while weightedSize > maximum { removeOldest() }
        if order.count > 2 * live.count + 16 { compact() }
    }

    /// Forgets `hash`; returns whether it was remembered.
    @discardableResult
    package mutating func remove(_ hash: UInt64) -> Bool {
        guard let record = live.removeValue(forKey: hash) else { return false }
        weightedSize -= record.weight
        return true
    }

    /// Forgets the oldest record.
    package mutating func removeOldest() {
        while let oldest = order.popFirst() {
            guard let record = live[oldest.hash], record.sequence == oldest.sequence else { continue }
            live.removeValue(forKey: oldest.hash)
            weightedSize -= record.weight
            return
        }
    }

    /// Forgets everything.
    package mutating func removeAll() {
        order.removeAll()
        live.removeAll()
        weightedSize = 0
    }

    private mutating func compact() {
        let live = self.live
        order = Deque(order.filter { live[$0.hash]?.sequence == $0.sequence })
    }
}
