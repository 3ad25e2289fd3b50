import CommonSupport
import Synchronization

/// The memory side of a ``FallbackCache``: a ``MemoryCache`` that holds what this instance last wrote *or read* for a
/// key, so an outage never serves a value older than one this instance already returned.
///
/// Reads from the backend refresh it, under the generation check of the near cache (``NearCacheFillGate``): a read
/// takes a stamp before it calls the backend and may store its result only if no write, delete, clear or
/// invalidation of this instance touched the key since. Every write of this instance to memory is bracketed by
/// ``changing(_:_:)``, which advances the key's generation before and after it, so a read that was in flight cannot
/// put back the value it read before the write.
///
/// Lock order: the fallback cache's lock, then this gate's lock, then a memory shard's lock; never the other way.
final class FallbackMemory: Sendable {
    /// The entries.
    let cache: MemoryCache
    /// ``FallbackConfiguration/maxOutageAge``: the longest a copy stays after it was last written or read.
    let maxAge: Duration?
    private let gate = Locked(NearCacheFillGate(isCoherent: true))
    private let refreshWrites = Atomic<UInt64>(0)
    private let refreshDeletes = Atomic<UInt64>(0)

    /// The tag of every copy refreshed by a read. A read does not learn a key's tags, so a tag invalidation during an
    /// outage (when the backend cannot say which keys it concerns) drops every refreshed copy, besides the entries this
    /// instance wrote with the tag. No tag a user passes starts with a control character.
    static let refreshedTag = "\u{1}fallback-refreshed"

    /// Sets and deletes memory counted for refreshes, which ``FallbackCache/stats()`` does not report as the
    /// caller's.
    var refreshCounts: (sets: UInt64, deletes: UInt64) {
        (refreshWrites.load(ordering: .relaxed), refreshDeletes.load(ordering: .relaxed))
    }

    init(cache: MemoryCache, maxAge: Duration?) {
        self.cache = cache
        self.maxAge = maxAge
    }

    /// Taken before a read of `key` goes to the backend.
    func stamp(_ key: String) -> NearCacheFillGate.Stamp {
        // The gate is always coherent here (nothing turns it off), so it always hands out a stamp.
        gate.withLock { $0.stamp(key)! }
    }

    /// `ttl` capped by ``maxAge``.
    func capped(_ ttl: Duration?) -> Duration? {
        guard let maxAge else { return ttl }
        guard let ttl else { return maxAge }
        return min(ttl, maxAge)
    }

    /// Stores what a read stamped with `stamp` got from the backend (`nil`: the backend has no value, so memory drops
    /// its copy), with the backend's remaining `ttl` if known, unless this instance changed `key` since.
    ///
    /// A value read plainly through a fail-safe envelope would replace the envelope memory holds (and fail-safe could
    /// no longer serve it during an outage) with a value whose logical expiry is unknown: memory then drops its copy.
    func refresh<Value: Codable & Sendable>(_ key: String, _ value: Value?, ttl: Duration?, stamp: NearCacheFillGate.Stamp) {
        gate.withLock { gate in
            guard gate.allowsFill(stamp) else { return }
            guard let value else {
                delete(key)
                return
            }
            if !(value is any AnyCacheEnvelope), let held = try? cache.peekValue(key), held.value is any AnyCacheEnvelope {
                delete(key)
                return
            }
            do {
                try cache.setValue(key, value, ttl: capped(ttl), tags: [Self.refreshedTag])
                refreshWrites.add(1, ordering: .relaxed)
            } catch {
                // Too large for memory: an older copy must not stay behind.
                delete(key)
            }
        }
    }

    /// Drops memory's copy of `key` after a read stamped with `stamp` that cannot refresh it (`getMany`, which reads
    /// no TTLs; raw bytes), unless this instance changed `key` since.
    func drop(_ key: String, stamp: NearCacheFillGate.Stamp) {
        gate.withLock { gate in
            if gate.allowsFill(stamp) { delete(key) }
        }
    }

    /// Deletes a copy for a read, counted apart from the caller's deletes.
    private func delete(_ key: String) {
        if (try? cache.deleteValue(key)) == true { refreshDeletes.add(1, ordering: .relaxed) }
    }

    /// Drops memory's copy of `key`; reads in flight may not refill it.
    func forget(_ key: String) {
        gate.withLock { gate in
            gate.invalidate(key)
            _ = try? cache.deleteValue(key)
        }
    }

    /// Runs a write of `key` to memory so that no read in flight can overwrite it with an older value.
    func changing<T>(_ key: String, _ write: () async throws -> T) async rethrows -> T {
        gate.withLock { $0.invalidate(key) }
        defer { gate.withLock { $0.invalidate(key) } }
        return try await write()
    }

    /// Runs a change of many keys to memory (clear, invalidation) so that no read in flight can undo it.
    func changingAll<T>(_ write: () async throws -> T) async rethrows -> T {
        gate.withLock { $0.invalidateAll() }
        defer { gate.withLock { $0.invalidateAll() } }
        return try await write()
    }
}
