/// A snapshot of a cache's counters.
///
/// Counters start at zero when the cache is created and only grow, except ``size`` and ``entryCount``,
/// which describe what the cache holds now.
public struct CacheStats: Sendable, Equatable, Hashable, Codable {
    /// Reads that found a live value.
    public var hits: UInt64
    /// Reads that found nothing (absent or expired).
    public var misses: UInt64
    /// Values stored.
    public var sets: UInt64
    /// Keys removed by `delete` (whether or not they existed).
    public var deletes: UInt64
    /// Live entries removed to stay within the memory limit.
    public var evictions: UInt64
    /// Entries removed because their time to live ran out.
    public var expirations: UInt64
    /// Bytes currently accounted for stored values (their encoded size).
    public var size: Int
    /// Entries currently stored.
    public var entryCount: Int
    /// Operations a fallback cache served or absorbed with its memory cache because the backend failed
    /// or its circuit breaker was open. Zero for other caches.
    public var fallbacks: UInt64
    /// Times a fallback cache lost its backend (its circuit breaker opened).
    public var outages: UInt64
    /// Times a fallback cache got its backend back (writes replayed, breaker closed).
    public var recoveries: UInt64

    /// Creates a snapshot; every counter defaults to zero.
    public init(
        hits: UInt64 = 0, misses: UInt64 = 0, sets: UInt64 = 0, deletes: UInt64 = 0,
        evictions: UInt64 = 0, expirations: UInt64 = 0, size: Int = 0, entryCount: Int = 0,
        fallbacks: UInt64 = 0, outages: UInt64 = 0, recoveries: UInt64 = 0
    ) {
        self.hits = hits
        self.misses = misses
        self.sets = sets
        self.deletes = deletes
        self.evictions = evictions
        self.expirations = expirations
        self.size = size
        self.entryCount = entryCount
        self.fallbacks = fallbacks
        self.outages = outages
        self.recoveries = recoveries
    }

    /// Hits divided by all reads, from 0 to 1; 0 when nothing was read yet.
    public var hitRate: Double {
        let reads = hits + misses
        return reads == 0 ? 0 : Double(hits) / Double(reads)
    }
}
