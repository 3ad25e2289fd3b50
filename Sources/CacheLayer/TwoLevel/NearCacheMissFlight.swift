/// Which L1 misses of a ``TwoLevelCache`` may share one read of Redis: those of the same key, value type and fill-gate
/// ``NearCacheFillGate/Stamp``.
///
/// Without it, every task that misses a hot key reads Redis itself: right after a write of a hot key (which removes it
/// from L1, and whose echo refuses the fills of reads already in flight), dozens of tasks pay a round trip each for the
/// same value, and Redis's work grows with the concurrency.
///
/// Why sharing cannot return a value older than a read of one's own would: a task joins a read only when its stamp
/// equals the one the read took before sending its command, so between the two stamps no invalidation of the key's
/// stripe and no flush was applied here. Whatever a joining task must see had therefore been applied before the read
/// took its stamp, hence before its command was sent, and Redis answered it after: this instance's own writes
/// (``TwoLevelCache/set(_:to:ttl:)`` removes the key from L1, advancing the stripe's generation, before it returns) and
/// every invalidation delivered so far. A task arriving after any such change carries another stamp and starts a read
/// of its own. The shared read fills L1 under the gate's usual check.
struct NearCacheMissFlight: Hashable, Sendable {
    let key: String
    /// Tasks asking for other types decode the bytes differently, so they read on their own.
    let valueType: ObjectIdentifier
    let stamp: NearCacheFillGate.Stamp
}
