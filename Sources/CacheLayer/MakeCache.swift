import Logging

/// Creates the cache that `configuration` describes.
///
/// ```swift
/// let cache = try await makeCache(.development)
/// ```
///
/// - `.memory`: a ``MemoryCache``.
/// - `.redis`: a ``RedisCache``, after checking that Redis answers and accepts the credentials.
/// - `.redis` with ``CacheConfiguration/nearCache``: a ``TwoLevelCache`` (a near cache in front of Redis), once Redis
///   answers and client tracking is set up.
/// - `.redis` with ``CacheConfiguration/enableFallback``: a ``FallbackCache`` over a ``RedisCache`` and a
///   ``MemoryCache`` of ``CacheConfiguration/maxMemorySize``, probing Redis with `PING`. When Redis is unreachable at
///   creation the cache still starts, serving from memory until Redis answers; refused credentials still throw.
/// - `.redis` with both: a ``FallbackCache`` over a ``TwoLevelCache`` (L1 hits at memory speed while Redis is up,
///   the fallback's memory copy while it is down; see <doc:FallbackAndRecovery>). It starts as above when Redis is
///   unreachable, and without L1 until client tracking is set up.
///
/// - Throws: ``CacheError/Code/invalidConfiguration`` for an invalid configuration;
///   ``CacheError/Code/authenticationFailed`` when Redis refuses the credentials; without fallback,
///   ``CacheError/Code/unavailable`` or ``CacheError/Code/timeout`` when Redis cannot be reached.
public func makeCache(
    _ configuration: CacheConfiguration,
    codec: any CacheCodec = JSONCacheCodec(),
    logger: Logger = Logger(label: "cachelayer")
) async throws -> any Cache {
    try configuration.validate()
    switch configuration.backend {
    case .memory:
        return try MemoryCache(configuration: configuration, codec: codec, logger: logger)
    case .redis:
        guard configuration.enableFallback else {
            if configuration.nearCache != nil {
                return try await TwoLevelCache.connect(configuration: configuration, codec: codec, logger: logger)
            }
            return try await RedisCache.connect(configuration: configuration, codec: codec, logger: logger)
        }
        // With a near cache, the fallback wraps the two-level cache: one fallback design for both (see FallbackCache).
        let primary: any Cache
        let redis: RedisCache
        if configuration.nearCache != nil {
            let twoLevel = try TwoLevelCache(configuration: configuration, codec: codec, logger: logger)
            primary = twoLevel
            redis = twoLevel.redis
        } else {
            redis = try RedisCache(configuration: configuration, codec: codec, logger: logger)
            primary = redis
        }
        do {
            try await redis.checkReachable()
            // Until tracking is set up reads go to Redis (L1 unused): not worth failing for.
            if let twoLevel = primary as? TwoLevelCache { try await twoLevel.waitUntilCoherent(timeout: configuration.connectTimeout) }
        } catch let error as CacheError where FallbackCache.isAvailabilityFailure(error) {
            logger.warning(
                "Redis is unreachable at start: serving from memory until it answers",
                metadata: ["cachelayer.cache": "\(configuration.name)", "cachelayer.failure": "\(keylessDescription(of: error))"]
            )
        } catch {
            try? await primary.close()
            throw error
        }
        do {
            let memory = try MemoryCache(configuration: configuration, codec: codec, logger: logger)
            return try FallbackCache(
                primary: primary, local: memory, configuration: configuration.fallbackConfiguration,
                name: configuration.name, defaultTTL: configuration.defaultTTL, flightTimeout: configuration.flightTimeout, logger: logger,
                probe: { try await redis.ping() }
            )
        } catch {
            try? await primary.close()
            throw error
        }
    }
}
