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
    private let writeSequences = Atomic<UInt64>(0)

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
    ///
    /// After a read from Redis, L1 holds the value it returned or nothing: a value not stored (refused, expiring, too
    /// large) removes the key, since what L1 held may be older than what the caller has just been given, e.g. a write
    /// of this instance decided while the read was in flight, overtaken in Redis by another instance's whose
    /// invalidation has not arrived yet.
    @discardableResult
    func fill<Value: Codable & Sendable>(_ key: String, _ value: Value, stamp: NearCacheFillGate.Stamp, remainingMilliseconds: Int64?) -> Bool {
        var ttl = maxTTL
        if let remainingMilliseconds { ttl = min(ttl, .milliseconds(remainingMilliseconds)) }
        ttl -= ttlMargin
        let stored = gate.withLock { gate -> Bool in
            gate.recordRead(key)
            // Too large for L1, or L1 closed: the value is simply not cached here.
            if ttl > .zero, gate.allowsFill(stamp), (try? memory.setValue(key, value, ttl: ttl)) != nil { return true }
            _ = try? memory.deleteValue(key)
            return false
        }
        if stored { fills.add(1, ordering: .relaxed) } else { refusedFills.add(1, ordering: .relaxed) }
        return stored
    }

    /// Records that a read of `key` returned from Redis without filling L1 (a miss, a fail-safe envelope, a read that
    /// needed the exact TTL): as a refused ``fill(_:_:stamp:remainingMilliseconds:)``, the key leaves L1, and no write
    /// of this instance stamped before may enter it.
    func readReturned(_ key: String) {
        readsReturned(CollectionOfOne(key))
    }

    /// ``readReturned(_:)`` for every key of `keys`, under one lock.
    func readsReturned<Keys: Sequence<String>>(_ keys: Keys) {
        gate.withLock { gate in
            for key in keys {
                gate.recordRead(key)
                _ = try? memory.deleteValue(key)
            }
        }
    }

    /// After this instance wrote `value` under `key` (acknowledged by Redis), stores it in L1 for at most `ttl` (and
    /// ``maxTTL``) if nothing that concerns `key` happened since `stamp` was taken, before the write was sent;
    /// otherwise removes `key`, or, when a write of `key` that this instance sent after this one was decided first,
    /// leaves L1 as that one left it. Either way the key's stripe advances, so reads in flight of `key` may no longer
    /// fill L1. `sequence` is the write's place in the send order of the tracking connection (`nil`: sent through the
    /// pool). Returns whether the value was stored.
    ///
    /// Why this never leaves an older value in L1, for a write W1 of this instance, given the gate's rule (an
    /// invalidation or flush applied since a stamp refuses the fill under it) and that every write of the key that
    /// Redis runs after W1 is announced to this instance after it ran, or the connection that would announce it is
    /// lost, which empties L1 and advances the epoch (see the last paragraphs):
    /// - a write W2 by another instance (or, with tracking, anyone) that ran after W1 is announced after W1 ran,
    ///   hence after `stamp`: applied before this call, it refuses the fill; applied after, it removes the value.
    /// - a write that ran before W1 left nothing newer than `value`; its announcement arriving late only removes
    ///   `value` (a spurious miss).
    /// - concurrent writes of this instance sent on the tracking connection (`sequence`, their send order, which is the
    ///   order Redis ran them in): each is refused only by invalidations and flushes applied since its stamp, not by
    ///   the earlier ones of this instance that got here first, whose values are older. One that gets here after a
    ///   later one of the same key leaves L1 as that one left it (nothing older is put back); after a later one of
    ///   another key of its stripe, it removes the key. So a hot key written by several tasks at once stays in L1
    ///   with the last value sent, instead of being removed by every overlap
    ///   (``NearCacheFillGate/decideOwnWrite(_:stamp:sequence:)``).
    /// - concurrent writes of this instance otherwise (through the pool, `sequence` `nil`): the first to get here fills
    ///   and counts as an invalidation, so every other one whose stamp is older (all that overlapped it) is refused and
    ///   removes the key, whichever ran last in Redis.
    /// - a read in flight that got an older value: its stamp predates this call's advance, so it cannot fill.
    ///
    /// Whether the write's own invalidation (its echo) comes back depends on the coherence and on how it was sent. With
    /// pub/sub coherence an instance ignores its own messages, so the value stays until another instance's write.
    ///
    /// With tracking on a single Redis server, W1 is sent on the tracking connection, whose tracking has `NOLOOP`
    /// (`InvalidationTracker.write(_:key:)`). With BCAST, Redis remembers for each key changed in an event-loop
    /// iteration the last client that changed it, and does not announce the key to that client when it has `NOLOOP`.
    /// So nothing is announced to us exactly when W1 was the last write of the key in its iteration (our value is then
    /// the newest), and every write that runs after W1 — another client's, in the same iteration or a later one, or
    /// this instance's through the pool — is announced on the connection that carried W1, after W1's reply: the first
    /// rule above holds as it is. If that connection is lost, what it would have announced is lost with it, but the
    /// loss empties L1 and advances the epoch (``setCoherent(_:)``): a value stored before is removed, one whose stamp
    /// predates the loss is refused. A write in flight on it when it is lost fails (`unavailable`; a `timeout` closes
    /// the connection too), so the caller removes the key: L1 never holds a value Redis may not have. A write sent while
    /// there is no live tracking connection goes through the pool as before: its echo arrives, or the connection is
    /// being lost and its loss empties L1.
    ///
    /// On a Redis Cluster, writes go through the cluster's pools, and the echo removes the value again a fraction of a
    /// millisecond later: Redis sends one invalidation per key per event-loop iteration (BCAST coalesces the writes of a
    /// key in one iteration, whoever made them), so an echo cannot be told apart from the invalidation of another
    /// client's write that ran just after W1, and may not be consumed as ours. `NOLOOP` would need the writes on the
    /// tracking connection of the node that serves the key, outside the cluster client's routing and redirections.
    @discardableResult
    func storeWritten<Value: Codable & Sendable>(
        _ key: String, _ value: Value, stamp: NearCacheFillGate.Stamp?, sequence: UInt64? = nil, ttl: Duration
    ) -> Bool {
        let ttl = min(ttl, maxTTL) - ttlMargin
        let decision = gate.withLock { gate -> NearCacheFillGate.OwnWriteDecision in
            let decision = gate.decideOwnWrite(key, stamp: stamp, sequence: sequence)
            // Too large for L1, or L1 closed: the key is then simply not cached here.
            if decision == .store, ttl > .zero, (try? memory.setValue(key, value, ttl: ttl)) != nil { return .store }
            if decision == .superseded { return .superseded }
            _ = try? memory.deleteValue(key)
            return .remove
        }
        switch decision {
        case .store: fills.add(1, ordering: .relaxed)
        case .remove: invalidatedKeys.add(1, ordering: .relaxed)
        case .superseded: break
        }
        changeWaiters.changed(CollectionOfOne(key))
        return decision == .store
    }

    /// The next number of the send order of this instance's writes on the tracking connection (see
    /// ``storeWritten(_:_:stamp:sequence:ttl:)``); taken on the connection's event loop just before each is sent.
    func nextWriteSequence() -> UInt64 {
        writeSequences.wrappingAdd(1, ordering: .relaxed).newValue
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

    /// Records whether invalidations are received; losing them empties L1. Either change wakes every flight waiter
    /// (``changeWaiters``): while invalidations may be missed, one that would have woken them may be lost, so each
    /// looks again at once instead of sleeping out its poll interval.
    func setCoherent(_ coherent: Bool) {
        gate.withLock { gate in
            gate.setCoherent(coherent)
            if !coherent { _ = try? memory.removeAllValues() }
        }
        if !coherent { flushes.add(1, ordering: .relaxed) }
        changeWaiters.changedAll()
    }

    /// The counters of fills, refusals, invalidations and flushes.
    func counters() -> (fills: UInt64, refusedFills: UInt64, invalidatedKeys: UInt64, flushes: UInt64) {
        (fills.load(ordering: .relaxed), refusedFills.load(ordering: .relaxed),
         invalidatedKeys.load(ordering: .relaxed), flushes.load(ordering: .relaxed))
    }
}
