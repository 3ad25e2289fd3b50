/// Which entries the memory cache drops first when it reaches its byte limit.
///
/// Expired entries always go first, whatever the strategy.
public struct EvictionStrategy: Hashable, Sendable, CustomStringConvertible {
    package enum Kind: String, Hashable, Sendable, CaseIterable {
        case expiry
        case lru
    }

    package let kind: Kind

    package init(kind: Kind) { self.kind = kind }

    /// Soonest expiry first (entries without a TTL last, oldest first among equals): the classic policy of
    /// simple caches.
    public static let expiry = EvictionStrategy(kind: .expiry)
    /// Least recently used first.
    public static let lru = EvictionStrategy(kind: .lru)

    /// The strategy with the best measured hit ratios.
    public static let `default` = EvictionStrategy.lru

    public var description: String { kind.rawValue }

    /// Every strategy, for benchmarks and trace replay.
    public static var allCases: [EvictionStrategy] { Kind.allCases.map(EvictionStrategy.init(kind:)) }

    /// The strategy with this name (`expiry`, `lru`, …), or `nil`.
    public init?(name: String) {
        guard let kind = Kind(rawValue: name) else { return nil }
        self.kind = kind
    }
}
