/// Which entries the memory cache drops first when it reaches its byte limit.
///
/// Expired entries always go first, whatever the strategy.
public struct EvictionStrategy: Hashable, Sendable, CaseIterable, CustomStringConvertible {
    package enum Kind: String, Hashable, Sendable, CaseIterable {
        case expiry
        case lru
        case tinyLFU = "tinylfu"
        case s3fifo
    }

    package let kind: Kind

    package init(kind: Kind) { self.kind = kind }

    /// Soonest expiry first (entries without a TTL last, oldest first among equals): the classic policy of
    /// simple caches.
    public static let expiry = EvictionStrategy(kind: .expiry)
    /// Least recently used first.
    public static let lru = EvictionStrategy(kind: .lru)

    /// Window TinyLFU with an adaptive window (Caffeine's policy): an LRU window for new entries, and a
    /// main space that admits an entry only if a frequency sketch has seen it more often than the entry it
    /// would replace. Resists scans and one-hit wonders. Small simulations on a sample of the keys choose
    /// the window size (1% to 30%) that hits most on the current workload, and turn the frequency filter off
    /// where past popularity misleads (a feed whose newest keys are the hot ones). Costs about 80 bytes per entry
    /// (sketch and ghost list) and 1 to 8 MB for the simulations (one to sixteen shards), none of it counted in the
    /// byte limit; see the eviction policies article for the bounds.
    public static let tinyLFU = EvictionStrategy(kind: .tinyLFU)
    /// S3-FIFO (SOSP 2023): a small FIFO that filters one-hit wonders, a main FIFO with 2-bit counters and
    /// a ghost list of recently evicted keys. Reads only bump a counter.
    public static let s3fifo = EvictionStrategy(kind: .s3fifo)

    /// The strategy with the best measured hit ratios (see `cachelayer replay`).
    public static let `default` = EvictionStrategy.tinyLFU

    public var description: String { kind.rawValue }

    /// Every strategy, for benchmarks and trace replay.
    public static var allCases: [EvictionStrategy] { Kind.allCases.map(EvictionStrategy.init(kind:)) }

    /// The strategy with this name (`expiry`, `lru`, `tinylfu`, `s3fifo`), or `nil`.
    public init?(name: String) {
        guard let kind = Kind(rawValue: name) else { return nil }
        self.kind = kind
    }
}
