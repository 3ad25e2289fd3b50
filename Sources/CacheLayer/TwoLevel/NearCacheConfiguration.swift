/// Settings of the in-process tier (L1) of a ``TwoLevelCache``: a ``MemoryCache`` in front of Redis.
///
/// ```swift
/// var configuration = CacheConfiguration.production(redisAddress: "redis.internal:6379")
/// configuration.namespace = "myapp"
/// configuration.nearCache = NearCacheConfiguration(maxMemorySize: 32 * 1024 * 1024, maxTTL: .seconds(60))
/// let cache = try await makeCache(configuration)   // a TwoLevelCache
/// ```
public struct NearCacheConfiguration: Sendable, Equatable, Hashable {
    /// How the near cache learns that another instance (or application) changed a key in Redis.
    public enum Coherence: String, Sendable, Equatable, Hashable, CaseIterable {
        /// Redis server-assisted client-side caching: a dedicated RESP3 connection with
        /// `CLIENT TRACKING ON BCAST PREFIX <namespace>:` receives an invalidation for every write, expiry and
        /// eviction of a key under the namespace, whoever made it. Needs Redis 6 or later and RESP3. An entry is
        /// stale at most for the time the invalidation takes to arrive (about a millisecond on a LAN).
        case tracking
        /// No invalidations from other instances: an entry may be stale for up to ``NearCacheConfiguration/maxTTL``
        /// after another instance changed it. This instance's own writes, deletes and invalidations still apply at
        /// once. For data that is allowed to lag, or Redis servers without `CLIENT TRACKING`.
        case ttlOnly
        /// A pub/sub backplane, for servers where client tracking is unavailable (Redis < 6, managed services that
        /// disable `CLIENT TRACKING`): every write, delete, clear and invalidation of a ``TwoLevelCache`` publishes an
        /// invalidation on ``NearCacheConfiguration/pubSubChannel`` and every instance subscribed to it removes the
        /// keys from its near cache. Works with RESP2. Sees only the changes made through ``TwoLevelCache`` instances
        /// on that channel: not writes by other applications, nor expiries and evictions in Redis (an entry still
        /// never outlives its Redis TTL at the time it was read, nor ``NearCacheConfiguration/maxTTL``).
        case pubSub
    }

    /// The most bytes the near cache holds, counted by encoded value size as in ``MemoryCache``. Default: 64 MiB.
    public var maxMemorySize: Int
    /// The longest an entry stays in the near cache; it never outlives its remaining TTL in Redis either.
    /// With ``Coherence/tracking`` it bounds the damage of a bug or a lost invalidation; with
    /// ``Coherence/ttlOnly`` it is the staleness you accept. Default: 5 minutes.
    public var maxTTL: Duration
    /// How the near cache stays coherent with Redis. Default: ``Coherence/tracking``.
    public var coherence: Coherence
    /// With ``Coherence/tracking`` or ``Coherence/pubSub``: how often the tracking (or subscriber) connection is
    /// checked with `PING`; a reply later than this counts as a lost connection (the near cache is emptied and the
    /// connection set up again). Default: 1 s.
    public var trackingPingInterval: Duration
    /// With ``Coherence/pubSub``: the channel the invalidations are published on; every instance that shares the
    /// namespace must use the same. `nil` (the default): `"<namespace>:__cachelayer:invalidations"`.
    public var pubSubChannel: String?

    /// Creates near-cache settings.
    public init(
        maxMemorySize: Int = 64 * 1024 * 1024,
        maxTTL: Duration = .seconds(300),
        coherence: Coherence = .tracking,
        trackingPingInterval: Duration = .seconds(1),
        pubSubChannel: String? = nil
    ) {
        self.maxMemorySize = maxMemorySize
        self.maxTTL = maxTTL
        self.coherence = coherence
        self.trackingPingInterval = trackingPingInterval
        self.pubSubChannel = pubSubChannel
    }

    /// The backplane channel for keys under `prefix` (`"<namespace>:"` or empty).
    func backplaneChannel(prefix: String) -> String {
        pubSubChannel ?? "\(prefix)__cachelayer:invalidations"
    }

    /// Checks the values.
    ///
    /// - Throws: ``CacheError/Code/invalidConfiguration`` naming the field and the accepted range.
    public func validate() throws(CacheError) {
        if maxMemorySize <= 0 {
            throw CacheError.invalidConfiguration("nearCache.maxMemorySize is \(maxMemorySize). Set a positive number of bytes, e.g. 64 * 1024 * 1024.")
        }
        if maxTTL <= .zero || maxTTL.isNoExpiry {
            throw CacheError.invalidConfiguration("nearCache.maxTTL is \(maxTTL). Use a positive, finite duration such as .seconds(300).")
        }
        if trackingPingInterval < .milliseconds(10) {
            throw CacheError.invalidConfiguration("nearCache.trackingPingInterval is \(trackingPingInterval). Use at least 10 ms, e.g. .seconds(1).")
        }
        if let pubSubChannel, pubSubChannel.isEmpty {
            throw CacheError.invalidConfiguration("nearCache.pubSubChannel is empty. Use a channel name such as \"myapp:invalidations\", or nil for the default.")
        }
    }
}
