/// How ``Cache/getOrSet(_:as:ttl:options:factory:)`` behaves beyond plain cache-aside.
///
/// Everything is off by default. Enable fail-safe to keep serving a value after it expires while its source is
/// failing or slow, and early refresh to reload hot values in the background before they expire:
///
/// ```swift
/// let options = GetOrSetOptions(gracePeriod: .seconds(3600), softTimeout: .milliseconds(100), refreshAhead: 0.8)
/// let user = try await cache.getOrSet("user:1", ttl: .seconds(60), options: options) { try await db.user(1) }
/// ```
///
/// Set ``CachePatternsState/defaultOptions`` (through ``Cache/patterns``) to apply options to every call
/// that passes none.
///
/// With fail-safe or early refresh enabled, the value is stored with the times it goes stale and is due for a
/// refresh. Plain reads (``Cache/get(_:as:)``, ``Cache/getMany(_:as:)``, ``Cache/require(_:as:)``) see through
/// this on every backend: they return the value until its time to live has passed and a miss afterwards, while
/// fail-safe keeps serving it for the grace period. Writing the key with plain ``Cache/set(_:to:ttl:)`` is harmless:
/// `getOrSet` with these options treats a value stored without times as a miss and reloads it.
public struct GetOrSetOptions: Sendable, Hashable {
    /// Fail-safe: how long after its time to live an entry is kept to be served when a reload fails or is slow.
    /// `nil` (the default) disables fail-safe.
    ///
    /// The entry physically lives `ttl + gracePeriod`; after `ttl` it is stale and `getOrSet` reloads it,
    /// returning the stale value only when the factory throws or exceeds ``softTimeout``.
    public var gracePeriod: Duration?

    /// With fail-safe, how long a caller waits for the factory before it gets the stale value instead.
    /// The factory keeps running in the background and stores its value when it succeeds. `nil`: wait for the
    /// factory (bounded by ``hardTimeout``).
    public var softTimeout: Duration?

    /// The longest a caller waits for the factory. On expiry the caller gets the stale value if fail-safe has one,
    /// and ``CacheError/Code/timeout`` otherwise. The factory keeps running and stores its value when it succeeds.
    /// `nil`: no limit.
    public var hardTimeout: Duration?

    /// Early refresh: the fraction of the time to live after which a read triggers a reload in the background,
    /// e.g. 0.8 reloads a 60-second entry when it is read after 48 seconds. Readers keep getting the current value
    /// without waiting. `nil` (the default) disables early refresh. Must be greater than 0 and less than 1.
    public var refreshAhead: Double?

    /// Distributed single flight: on a cache backed by Redis, one instance of the deployment runs the factory for a
    /// key while the others wait for its value (see ``DistributedSingleFlightOptions``). `nil` (the default): single
    /// flight per process.
    public var distributed: DistributedSingleFlightOptions?

    /// Creates options; every feature is off unless given.
    public init(
        gracePeriod: Duration? = nil,
        softTimeout: Duration? = nil,
        hardTimeout: Duration? = nil,
        refreshAhead: Double? = nil,
        distributed: DistributedSingleFlightOptions? = nil
    ) {
        self.gracePeriod = gracePeriod
        self.softTimeout = softTimeout
        self.hardTimeout = hardTimeout
        self.refreshAhead = refreshAhead
        self.distributed = distributed
    }

    /// Plain cache-aside with single flight: no fail-safe, no timeout, no early refresh.
    public static let `default` = GetOrSetOptions()

    /// Fail-safe with the given grace period and timeouts.
    public static func failSafe(
        gracePeriod: Duration, softTimeout: Duration? = nil, hardTimeout: Duration? = nil
    ) -> GetOrSetOptions {
        GetOrSetOptions(gracePeriod: gracePeriod, softTimeout: softTimeout, hardTimeout: hardTimeout)
    }

    /// Whether values are stored in an envelope (fail-safe or early refresh is on).
    var usesEnvelope: Bool { gracePeriod != nil || refreshAhead != nil }

    /// Throws ``CacheError/Code/invalidConfiguration`` naming the field that makes no sense.
    public func validate() throws(CacheError) {
        if let gracePeriod, gracePeriod <= .zero {
            throw .invalidConfiguration("gracePeriod is \(gracePeriod). Use a positive duration, or nil to disable fail-safe.")
        }
        if let softTimeout, softTimeout <= .zero {
            throw .invalidConfiguration("softTimeout is \(softTimeout). Use a positive duration, or nil to wait for the factory.")
        }
        if let hardTimeout, hardTimeout <= .zero {
            throw .invalidConfiguration("hardTimeout is \(hardTimeout). Use a positive duration, or nil for no limit.")
        }
        if let refreshAhead, !(refreshAhead > 0 && refreshAhead < 1) {
            throw .invalidConfiguration("refreshAhead is \(refreshAhead). Use a fraction of the TTL between 0 and 1 (exclusive), e.g. 0.8, or nil to disable early refresh.")
        }
        try distributed?.validate()
    }
}
