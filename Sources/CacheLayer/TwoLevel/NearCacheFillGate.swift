/// Decides whether a value read from Redis may enter the near cache (L1): the generation check that keeps an
/// invalidation from being undone by a read that was already in flight.
///
/// The race (the one the Redis client-side caching docs warn about): instance A sends `GET k` and Redis answers
/// `v1`; B then writes `v2`, and the invalidation of `k` reaches A before A has stored `v1` in L1. Storing it would
/// keep `v1` until its TTL, since the invalidation has already been handled. So every read takes a ``Stamp`` before
/// it sends its command, and may fill L1 only if nothing that could concern its key happened since:
///
/// - an invalidation of a key in the same stripe (keys are hashed to one of `stripeCount` generation counters; two
///   keys sharing a stripe only cost a skipped fill, never a stale one);
/// - a flush: `clear()`, a prefix or tag invalidation, a `null` invalidation (FLUSHALL/FLUSHDB), the tracking
///   connection lost, its push buffer overflowed, a missed PING deadline — all advance the ``epoch``;
/// - coherence lost: while invalidations cannot be received, no stamp is handed out at all.
///
/// An acknowledged write of this instance may enter L1 under the same rules (``decideOwnWrite(_:stamp:sequence:)``),
/// and also only if no read of its stripe returned from Redis since it was stamped (``recordRead(_:)``).
///
/// The check and the fill must happen under the same lock as the invalidation and its L1 removal, otherwise an
/// invalidation could land between them; ``TwoLevelCache`` keeps this value in a lock together with those calls.
/// Pure value type: its rules are tested without Redis.
struct NearCacheFillGate: Sendable {
    /// What a read remembers before it sends its command.
    struct Stamp: Sendable, Hashable {
        let stripe: Int
        let generation: UInt64
        /// The stripe's count of invalidations only, without this instance's own acknowledged writes (see
        /// ``decideOwnWrite(_:stamp:sequence:)``). Equal generations imply equal foreign generations.
        let foreignGeneration: UInt64
        /// The stripe's count of reads returned from Redis (``recordRead(_:)``).
        let reads: UInt64
        let epoch: UInt64
    }

    /// Advanced by every invalidation of a key of the stripe and by every own write decided in it.
    private var generations: [UInt64]
    /// Advanced by invalidations only: what another writer (or a write that did not go in send order) did.
    private var foreignGenerations: [UInt64]
    /// Advanced by every read of a key of the stripe that returned from Redis, filled or not: an own write stamped
    /// before it may not enter L1 (see ``recordRead(_:)``).
    private var reads: [UInt64]
    /// The highest send sequence (``decideOwnWrite(_:stamp:sequence:)``) of an own write decided in each stripe.
    private var decidedSequences: [UInt64]
    /// The key of the write of ``decidedSequences`` in each stripe.
    private var decidedKeys: [String?]
    private let mask: Int
    /// Advanced by every flush and every change of ``isCoherent``.
    private(set) var epoch: UInt64 = 0
    /// Whether invalidations are being received (the tracking connection is set up), or not needed (TTL-only
    /// coherence). While false, nothing may enter L1.
    private(set) var isCoherent: Bool

    /// - Parameters:
    ///   - stripeCount: Generation counters, rounded up to a power of two.
    ///   - isCoherent: Whether fills are allowed from the start (TTL-only coherence) or only once tracking is set up.
    init(stripeCount: Int = 4096, isCoherent: Bool) {
        var count = 1
        while count < stripeCount { count <<= 1 }
        generations = Array(repeating: 0, count: count)
        foreignGenerations = Array(repeating: 0, count: count)
        reads = Array(repeating: 0, count: count)
        decidedSequences = Array(repeating: 0, count: count)
        decidedKeys = Array(repeating: nil, count: count)
        mask = count - 1
        self.isCoherent = isCoherent
    }

    /// The stripe of `key`.
    func stripe(of key: String) -> Int { key.hashValue & mask }

    /// What a read of `key` must remember before sending its command; `nil` when it may not fill L1 whatever happens.
    func stamp(_ key: String) -> Stamp? {
        guard isCoherent else { return nil }
        let stripe = stripe(of: key)
        return Stamp(
            stripe: stripe, generation: generations[stripe], foreignGeneration: foreignGenerations[stripe],
            reads: reads[stripe], epoch: epoch
        )
    }

    /// Whether a read stamped with `stamp` may still fill L1.
    func allowsFill(_ stamp: Stamp) -> Bool {
        isCoherent && stamp.epoch == epoch && generations[stamp.stripe] == stamp.generation
    }

    /// Records that `key` changed: reads of it in flight may no longer fill L1.
    mutating func invalidate(_ key: String) {
        let stripe = stripe(of: key)
        generations[stripe] &+= 1
        foreignGenerations[stripe] &+= 1
    }

    /// Records that a read of `key` returned from Redis. Its value may be newer than that of a write of this instance
    /// stamped before it: another instance's write that ran after ours, whose invalidation is still on its way (it
    /// follows our write's acknowledgement on the tracking connection, but the read came back on another one). That
    /// write must then not enter L1, where it would be older than what this instance has just returned.
    mutating func recordRead(_ key: String) {
        reads[stripe(of: key)] &+= 1
    }

    /// What an acknowledged write of this instance does to L1.
    enum OwnWriteDecision: Equatable {
        /// Store its value.
        case store
        /// Remove the key.
        case remove
        /// Leave the key as it is: a write of the same key sent after this one (so run after it by Redis) already
        /// decided, and whatever L1 holds for the key now is at least as new.
        case superseded
    }

    /// Decides what an acknowledged write of this instance does to L1. Reads in flight of the key's stripe may no
    /// longer fill L1 whatever the decision.
    ///
    /// - `sequence`: where the write was sent in the order of the connection that carried all such writes (the
    ///   tracking connection, `NOLOOP`), so Redis ran the writes of this instance in that order. A write is then
    ///   refused only by what was *not* one of those writes: an invalidation or flush applied since `stamp` (the
    ///   foreign generation). An earlier write of this instance decided since `stamp` does not refuse it: Redis ran
    ///   that one before, so this value is newer. A write later in the sequence that decided first in the stripe
    ///   supersedes it when it was of the same key, and makes it remove the key otherwise (the stripe remembers only
    ///   the latest decided write, and a later write of this key may have decided before that one).
    /// - `nil`: a write sent another way (through the pool): refused by anything applied since `stamp`, own writes
    ///   included, and counted as an invalidation itself, so that no write stamped before it may be stored after it.
    mutating func decideOwnWrite(_ key: String, stamp: Stamp?, sequence: UInt64?) -> OwnWriteDecision {
        let stripe = stripe(of: key)
        guard let stamp else {
            invalidate(key)
            return .remove
        }
        let noReadSince = reads[stripe] == stamp.reads
        guard let sequence else {
            let allowed = allowsFill(stamp) && noReadSince
            invalidate(key)
            return allowed ? .store : .remove
        }
        generations[stripe] &+= 1
        guard sequence > decidedSequences[stripe] else {
            return decidedKeys[stripe] == key ? .superseded : .remove
        }
        decidedSequences[stripe] = sequence
        decidedKeys[stripe] = key
        let allowed = isCoherent && stamp.epoch == epoch && foreignGenerations[stamp.stripe] == stamp.foreignGeneration
            && noReadSince
        return allowed ? .store : .remove
    }

    /// Records that anything may have changed: no read in flight may fill L1.
    mutating func invalidateAll() {
        epoch &+= 1
    }

    /// Records whether invalidations are being received; every change also counts as ``invalidateAll()``.
    mutating func setCoherent(_ coherent: Bool) {
        isCoherent = coherent
        epoch &+= 1
    }
}
