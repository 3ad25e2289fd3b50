import CommonSupport
import Synchronization

/// The L1 of a ``TwoLevelCache``: a ``MemoryCache`` whose every change passes the ``NearCacheFillGate`` under one
/// lock. Shared by the cache (reads fill it, writes invalidate it) and the ``InvalidationTracker`` (invalidations and
/// flushes), which is why it is an object of its own: the tracker holds it without holding the cache.
///
/// Lock order: the gate's lock, then a memory shard's lock; never the other way round.
final class NearCache: Sendable {
    /// The entries. Read without the gate's lock (a hit is a plain memory-cache read); changed only under it.
    let memory: MemoryCache
    /// The longest an entry stays.
    let maxTTL: Duration
    /// Taken off every entry's TTL: how far L1's clock may lag (``MemoryCache/clockResolution``), so that an entry is
    /// never served past the TTL it was given.
    private let ttlMargin: Duration
    private let gate: Locked<NearCacheFillGate>
    /// Distributed single flight's waiters, woken by invalidations.
    let changeWaiters = KeyChangeWaiters()
    private let fills = Atomic<UInt64>(0)
    private let refusedFills = Atomic<UInt64>(0)
    private let invalidatedKeys = Atomic<UInt64>(0)
    private let flushes = Atomic<UInt64>(0)

    init(memory: MemoryCache, maxTTL: Duration, isCoherent: Bool) {
        self.memory = memory
        self.maxTTL = maxTTL
        self.ttlMargin = memory.clockResolution
        self.gate = Locked(NearCacheFillGate(isCoherent: isCoherent))
    }

    /// Whether fills are allowed now.
    var isCoherent: Bool { gate.withLock { $0.isCoherent } }

    /// Taken by a read before it sends its command to Redis; `nil` when its result may not be cached.
    func stamp(_ key: String) -> NearCacheFillGate.Stamp? {
        gate.withLock { $0.stamp(key) }
    }

    /// Stores `value`, read from Redis with `remainingMilliseconds` left to live there (`nil`: no expiry), unless
    /// something that concerns `key` happened since `stamp` was taken. Returns whether it was stored.
    @discardableResult
    func fill<Value: Codable & Sendable>(_ key: String, _ value: Value, stamp: NearCacheFillGate.Stamp, remainingMilliseconds: Int64?) -> Bool {
        var ttl = maxTTL
        if let remainingMilliseconds {
            guard remainingMilliseconds > 0 else { return false }
            ttl = min(ttl, .milliseconds(remainingMilliseconds))
        }
        ttl -= ttlMargin
        let stored = gate.withLock { gate -> Bool in
            guard ttl > .zero, gate.allowsFill(stamp) else { return false }
            // Too large for L1, or L1 closed: the value is simply not cached here.
            return (try? memory.setValue(key, value, ttl: ttl)) != nil
        }
        if stored { fills.add(1, ordering: .relaxed) } else { refusedFills.add(1, ordering: .relaxed) }
        return stored
    }

    /// After this instance wrote `value` under `key` (acknowledged by Redis), stores it in L1 for at most `ttl` (and
    /// ``maxTTL``) if nothing that concerns `key` happened since `stamp` was taken, before the write was sent;
    /// otherwise removes `key`. Either way the key's stripe advances, so reads in flight and other writes of `key`
    /// that overlapped this one may no longer fill L1. Returns whether the value was stored.
    ///
    /// Why this never leaves an older value in L1, for a write W1 of this instance, given the gate's rule (an
    /// invalidation or flush applied since a stamp refuses the fill under it) and that every write of the key that
    /// Redis runs after W1 is announced to this instance after it ran:
    /// - a write W2 by another instance (or, with tracking, anyone) that ran after W1 is announced after W1 ran,
    ///   hence after `stamp`: applied before this call, it refuses the fill; applied after, it removes the value.
    /// - a write that ran before W1 left nothing newer than `value`; its announcement arriving late only removes
    ///   `value` (a spurious miss).
    /// - concurrent writes of this instance: the first to get here fills and advances the stripe, so every other one
    ///   whose stamp is older (all that overlapped it) is refused and removes the key, whichever ran last in Redis.
    /// - a read in flight that got an older value: its stamp predates this call's advance, so it cannot fill.
    ///
    /// With tracking coherence the write's own invalidation (its echo) removes the value again when it arrives, a
    /// fraction of a millisecond later: Redis sends one invalidation per key per event-loop iteration (BCAST
    /// coalesces the writes of a key in one iteration, whoever made them), so an echo cannot be told apart from the
    /// invalidation of another client's write that ran just after W1, and may not be consumed as ours. With pub/sub
    /// coherence an instance ignores its own messages, so the value stays until another instance's write.
    ///
    /// Why not `CLIENT TRACKING … NOLOOP`, which drops the invalidation of a key whose last writer in the iteration was
    /// the tracked client itself (exactly "ours, and nobody wrote after it"): NOLOOP applies to the client that turned
    /// tracking on, and our writes go through the pool, not the tracking connection. Every pooled connection would need
    /// `BCAST REDIRECT <tracking id> NOLOOP`, and each would then redirect its own copy of every invalidation: pool-size
    /// echoes per write. A single dedicated writer connection with that mode would work, at the cost of one more
    /// connection (per cluster node) whose loss must also empty L1.
    @discardableResult
    func storeWritten<Value: Codable & Sendable>(_ key: String, _ value: Value, stamp: NearCacheFillGate.Stamp?, ttl: Duration) -> Bool {
        let ttl = min(ttl, maxTTL) - ttlMargin
        let stored = gate.withLock { gate -> Bool in
            let allowed = stamp.map { gate.allowsFill($0) } ?? false
            gate.invalidate(key)
            // Too large for L1, or L1 closed: the key is then simply not cached here.
            if allowed, ttl > .zero, (try? memory.setValue(key, value, ttl: ttl)) != nil { return true }
            _ = try? memory.deleteValue(key)
            return false
        }
        if stored { fills.add(1, ordering: .relaxed) } else { invalidatedKeys.add(1, ordering: .relaxed) }
        changeWaiters.changed(CollectionOfOne(key))
        return stored
    }

    /// Removes `key` and keeps reads of it in flight from filling it back.
    func invalidate(_ key: String) {
        gate.withLock { gate in
            gate.invalidate(key)
            _ = try? memory.deleteValue(key)
        }
        invalidatedKeys.add(1, ordering: .relaxed)
        changeWaiters.changed(CollectionOfOne(key))
    }

    /// Removes `keys` and keeps reads of them in flight from filling them back.
    func invalidate<Keys: Sequence<String>>(_ keys: Keys) {
        var count: UInt64 = 0
        gate.withLock { gate in
            for key in keys {
                gate.invalidate(key)
                _ = try? memory.deleteValue(key)
                count += 1
            }
        }
        invalidatedKeys.add(count, ordering: .relaxed)
        changeWaiters.changed(keys)
    }

    /// Removes the entries whose key starts with `prefix`; no read in flight may fill L1 afterwards.
    func invalidate(prefix: String) {
        gate.withLock { gate in
            gate.invalidateAll()
            _ = try? memory.invalidateValues(prefix: prefix)
        }
        changeWaiters.changedAll()
    }

    /// Empties L1; no read in flight may fill it afterwards.
    func flush() {
        gate.withLock { gate in
            gate.invalidateAll()
            _ = try? memory.removeAllValues()
        }
        flushes.add(1, ordering: .relaxed)
        changeWaiters.changedAll()
    }

    /// Records whether invalidations are received; losing them empties L1.
    func setCoherent(_ coherent: Bool) {
        gate.withLock { gate in
            gate.setCoherent(coherent)
            if !coherent { _ = try? memory.removeAllValues() }
        }
        if !coherent { flushes.add(1, ordering: .relaxed) }
    }

    /// The counters of fills, refusals, invalidations and flushes.
    func counters() -> (fills: UInt64, refusedFills: UInt64, invalidatedKeys: UInt64, flushes: UInt64) {
        (fills.load(ordering: .relaxed), refusedFills.load(ordering: .relaxed),
         invalidatedKeys.load(ordering: .relaxed), flushes.load(ordering: .relaxed))
    }
}
