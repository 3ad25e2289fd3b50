import CacheLayer
import Hummingbird
import ServiceLifecycle

/// A Hummingbird `PersistDriver` over any cache of swift-cache-layer: memory, Redis, or Redis with memory fallback.
///
/// ```swift
/// let cache = try await makeCache(configuration)
/// let persist = CachePersistDriver(cache: cache)
/// let app = Application(router: router, services: [persist])   // runs the cache, closes it on shutdown
/// ```
///
/// Hummingbird's semantics, on any backend:
/// - `create` stores only when the key holds no live value (``Cache/setIfAbsent(_:to:ttl:)``: `SET NX` on Redis,
///   atomic across instances) and throws `PersistError.duplicate` otherwise.
/// - `set` with `expires: nil` keeps the existing value's TTL (``Cache/setKeepingTTL(_:to:)``: `SET KEEPTTL`); a new
///   value then never expires. `create` with `expires: nil` stores a value that never expires.
/// - An `expires` of zero or less stores nothing (the value would be expired at once): `set` removes the key,
///   `create` only checks for a duplicate.
/// - `get` of a value stored as another type throws `PersistError.invalidConversion`.
/// - `getWithTTL` reads the value and its TTL in one round trip (`nil` TTL: never expires).
/// - `run()` runs the cache's background work (see ``CacheService``) and closes the cache on graceful shutdown.
///
/// With a ``FallbackCache`` whose Redis is down, `create` throws ``CacheError/Code/unavailable``: memory alone
/// cannot know whether another instance created the key.
public struct CachePersistDriver: PersistDriver {
    /// The cache values are stored in.
    public let cache: any Cache
    private let service: CacheService

    /// A driver storing values in `cache`.
    ///
    /// - Parameters:
    ///   - cache: The cache; the driver closes it when it shuts down.
    ///   - metricsInterval: How often ``run()`` reports the cache's metrics (as ``CacheService`` does); `nil`
    ///     reports none.
    public init(cache: any Cache, metricsInterval: Duration? = nil) {
        self.cache = cache
        self.service = CacheService(cache: cache, metricsInterval: metricsInterval)
    }

    public func create<Object: Codable & Sendable>(key: String, value: Object, expires: Duration?) async throws {
        guard let ttl = Self.ttl(for: expires) else {
            // Expired on arrival: nothing to store, but a live value is still a duplicate.
            if try await cache.exists(key) { throw PersistError.duplicate }
            return
        }
        guard try await cache.setIfAbsent(key, to: value, ttl: ttl) else {
            throw PersistError.duplicate
        }
    }

    public func set<Object: Codable & Sendable>(key: String, value: Object, expires: Duration?) async throws {
        guard let expires else {
            try await cache.setKeepingTTL(key, to: value)
            return
        }
        guard let ttl = Self.ttl(for: expires) else {
            try await cache.delete(key)
            return
        }
        try await cache.set(key, to: value, ttl: ttl)
    }

    public func get<Object: Codable & Sendable>(key: String, as type: Object.Type) async throws -> Object? {
        do {
            return try await cache.get(key, as: type)
        } catch let error as CacheError where error.code == .typeMismatch {
            throw PersistError.invalidConversion
        }
    }

    public func getWithTTL<Object: Codable & Sendable>(key: String, as type: Object.Type) async throws -> (object: Object, ttl: Duration?)? {
        do {
            guard let (value, ttl) = try await cache.getWithTTL(key, as: type) else { return nil }
            return (value, ttl.isNoExpiry ? nil : ttl)
        } catch let error as CacheError where error.code == .typeMismatch {
            throw PersistError.invalidConversion
        } catch let error as CacheError where error.code == .unsupported {
            // A cache that cannot read TTLs: the value alone, as Hummingbird's default does.
            return try await get(key: key, as: type).map { ($0, nil) }
        }
    }

    public func remove(key: String) async throws {
        try await cache.delete(key)
    }

    /// Closes the cache.
    public func shutdown() async throws {
        try await cache.close()
    }

    /// Runs the cache's background work until graceful shutdown, then closes the cache.
    public func run() async throws {
        try await service.run()
    }

    /// The cache TTL for a Hummingbird expiry: `nil` expiry never expires; `nil` result means already expired.
    static func ttl(for expires: Duration?) -> Duration? {
        guard let expires else { return .noExpiry }
        return expires > .zero ? expires : nil
    }
}
