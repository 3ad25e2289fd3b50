import ServiceLifecycle

/// One API over every cache backend: in-process memory, Redis, and Redis with memory fallback.
///
/// Values are any `Codable & Sendable` type. A read of an absent or expired key returns `nil`;
/// use ``require(_:as:)`` to get ``CacheError/Code/miss`` thrown instead.
///
/// ```swift
/// let cache = try await makeCache(.development)
/// try await cache.set("greeting", to: "hello", ttl: .seconds(60))
/// let greeting = try await cache.get("greeting", as: String.self)   // "hello"
/// try await cache.close()
/// ```
///
/// ## Writing a conformance
///
/// Implement the single-key operations, ``stats()`` and ``close()``; batches, tags, prefix invalidation, `getOrSet`
/// and ``run()`` have default implementations (override them to do better). In addition:
///
/// - Create one ``CachePatternsState`` per instance and return it from ``patterns``.
/// - Make plain reads see through values that fail-safe and early refresh stored with their times: a cache that
///   keeps Swift values calls ``CachePatternsState/value(in:as:key:)`` when the stored value is not of the
///   requested type; a cache that keeps bytes encodes and decodes with ``CachePatternsState/encode(_:with:)`` and
///   ``CachePatternsState/decode(_:from:with:)``.
/// - Run background work (sweepers, probes) from ``run()``, holding the cache weakly in tasks of its own.
public protocol Cache: Sendable {
    /// The value stored under `key`, or `nil` when it is absent or expired.
    ///
    /// Throws ``CacheError/Code/typeMismatch`` when a value of another type is stored there.
    func get<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> Value?

    /// Stores `value` under `key`.
    ///
    /// - Parameters:
    ///   - key: A non-empty key of at most ``CacheKey/maximumLength`` UTF-8 bytes.
    ///   - value: The value; it replaces any value stored under `key`.
    ///   - ttl: How long the value lives. `nil` uses the configuration's default TTL;
    ///     ``Swift/Duration/noExpiry`` keeps it until it is deleted or evicted. Zero or negative is an error.
    func set<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?) async throws

    /// Removes `key`. Removing an absent key is not an error.
    func delete(_ key: String) async throws

    /// Whether a live value is stored under `key`. Does not count as a hit or a miss.
    func exists(_ key: String) async throws -> Bool

    /// Removes every entry of this cache.
    func clear() async throws

    /// A snapshot of the counters.
    func stats() async -> CacheStats

    /// Stops background work and releases connections. Later calls throw ``CacheError/Code/closed``.
    /// Closing twice is allowed.
    func close() async throws

    /// Runs the cache's background work (sweeping expired entries, probing an unreachable backend, keeping Redis
    /// connections) until graceful shutdown, cancellation or ``close()``; it does not close the cache.
    ///
    /// ``CacheService`` calls it, so a cache in an application's `ServiceGroup` has its background work run, and
    /// stopped, by the group. A cache that nobody runs does the same work in tasks of its own until ``close()``
    /// (they hold the cache weakly, so an abandoned cache is freed). The default implementation has no work and
    /// waits for graceful shutdown or cancellation.
    func run() async throws

    // MARK: Conditional writes, TTLs and bytes
    //
    // What framework adapters (Hummingbird's `PersistDriver`, Vapor's `Cache`) need. The defaults in
    // `Cache+EntryOperations.swift` store bytes as `[UInt8]` values and throw `unsupported` for the rest.

    /// Stores `value` under `key` only when no live value is stored there; returns whether it stored.
    ///
    /// Atomic: of concurrent calls for one key, one stores (across every process sharing a Redis cache).
    /// `ttl` is as in ``set(_:to:ttl:)``. The default implementation throws ``CacheError/Code/unsupported``.
    @discardableResult
    func setIfAbsent<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?) async throws -> Bool

    /// Stores `value` under `key`, keeping the remaining time to live of the value it replaces.
    ///
    /// When no live value is stored the value never expires, as Redis' `SET KEEPTTL` does.
    /// The default implementation throws ``CacheError/Code/unsupported``.
    func setKeepingTTL<Value: Codable & Sendable>(_ key: String, to value: Value) async throws

    /// The remaining time to live of the value under `key`: `nil` when none is stored,
    /// ``Swift/Duration/noExpiry`` when it never expires. Does not count as a hit or a miss.
    ///
    /// The default implementation throws ``CacheError/Code/unsupported``.
    func ttl(_ key: String) async throws -> Duration?

    /// The value under `key` and its remaining time to live (``Swift/Duration/noExpiry`` when it never expires),
    /// read together in one round trip; `nil` when it is absent or expired.
    ///
    /// Throws ``CacheError/Code/typeMismatch`` as ``get(_:as:)`` does. The default implementation throws
    /// ``CacheError/Code/unsupported``.
    func getWithTTL<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> (value: Value, ttl: Duration)?

    /// Stores already-encoded bytes under `key`, without passing them through the codec.
    ///
    /// For callers that encode values themselves (a framework whose values are only `Encodable`). Redis stores
    /// the bytes as they are; the memory cache keeps them and charges their count. Read them with
    /// ``getBytes(_:)``. `ttl` is as in ``set(_:to:ttl:)``.
    func setBytes(_ key: String, to bytes: [UInt8], ttl: Duration?) async throws

    /// The bytes stored under `key` by ``setBytes(_:to:ttl:)``, or `nil` when absent or expired.
    ///
    /// On Redis these are the stored bytes whatever wrote them (for a typed value, the codec's encoding).
    func getBytes(_ key: String) async throws -> [UInt8]?

    // MARK: Batches
    //
    // Declared here (not only in an extension) so a backend can answer a whole batch in one round trip
    // (MGET, a pipeline of SET PX, UNLINK) and still be called through `any Cache`. The defaults in
    // `Cache+Batch.swift` call the single-key operations with bounded concurrency.

    /// The live values stored under `keys`, by key. Absent, expired and duplicate keys are left out.
    ///
    /// Throws ``CacheError/Code/typeMismatch`` when a value of another type is stored under one of them.
    func getMany<Value: Codable & Sendable>(_ keys: [String], as type: Value.Type) async throws -> [String: Value]

    /// Stores every value of `entries` under its key, all with the same time to live (as in ``set(_:to:ttl:)``).
    ///
    /// Not atomic: when it throws, some entries may have been stored.
    func setMany<Value: Codable & Sendable>(_ entries: [String: Value], ttl: Duration?) async throws

    /// Removes every key of `keys`. Absent keys are not an error.
    func deleteMany(_ keys: [String]) async throws

    // MARK: Invalidation

    /// Stores `value` under `key` and attaches it to `tags`, so ``invalidate(tag:)`` removes it.
    ///
    /// The default implementation stores untagged values and throws ``CacheError/Code/unsupported``
    /// when `tags` is not empty; the memory and Redis caches support tags.
    func set<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?, tags: Set<String>) async throws

    /// Removes every entry stored with `tag`. Removing an unknown tag is not an error.
    ///
    /// The default implementation throws ``CacheError/Code/unsupported``.
    func invalidate(tag: String) async throws

    /// Removes every entry whose key starts with `prefix` (byte for byte, within the cache's namespace).
    ///
    /// The default implementation throws ``CacheError/Code/unsupported``.
    func invalidate(prefix: String) async throws

    // MARK: Patterns

    /// The value under `key`, or the result of `factory` stored under `key` when there is none
    /// (cache-aside, lazy loading).
    ///
    /// Concurrent calls for the same key in this process run `factory` once (single flight): the others
    /// wait for its result. A factory error reaches every waiter and is not cached. See ``GetOrSetOptions``
    /// for fail-safe (stale-if-error), timeouts and early refresh.
    ///
    /// - Parameters:
    ///   - key: The key to read and, on a miss, to store the factory's value under.
    ///   - type: The value's type.
    ///   - ttl: As in ``set(_:to:ttl:)``; `nil` uses the cache's default TTL.
    ///   - options: `nil` uses ``CachePatternsState/defaultOptions``.
    ///   - factory: Loads the value from its source. It runs in a task of its own, so a caller that is
    ///     cancelled stops waiting (throwing ``CacheError/Code/cancelled``) without cancelling the load.
    ///
    /// Call the overload without `options` (or with non-optional options) in your code; this form exists so
    /// backends can replace the default implementation.
    func getOrSet<Value: Codable & Sendable>(
        _ key: String,
        as type: Value.Type,
        ttl: Duration?,
        options: GetOrSetOptions?,
        factory: @escaping @Sendable () async throws -> Value
    ) async throws -> Value

    /// The default options and the counters of ``getOrSet(_:as:ttl:options:factory:)`` and the other patterns,
    /// one per cache instance.
    ///
    /// A conforming type creates one ``CachePatternsState`` when it is created and returns it every time.
    var patterns: CachePatternsState { get }
}

extension Cache {
    /// No background work: waits for graceful shutdown or cancellation.
    public func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            // Cancelled: nothing to stop.
        }
    }

    /// The value stored under `key`; throws ``CacheError/Code/miss`` when there is none.
    public func require<Value: Codable & Sendable>(_ key: String, as type: Value.Type = Value.self) async throws -> Value {
        guard let value = try await get(key, as: type) else {
            throw CacheError.miss(key: key)
        }
        return value
    }

    /// The value stored under `key`, its type inferred from the context.
    public func get<Value: Codable & Sendable>(_ key: String) async throws -> Value? {
        try await get(key, as: Value.self)
    }

    /// Stores `value` under `key` with the configured default TTL.
    public func set<Value: Codable & Sendable>(_ key: String, to value: Value) async throws {
        try await set(key, to: value, ttl: nil)
    }
}

extension Duration {
    /// A time to live meaning "never expires": the value stays until it is deleted or evicted.
    ///
    /// Any TTL of this length or longer is treated the same way.
    public static let noExpiry: Duration = .seconds(Int64(1) << 40)

    /// Whether this TTL means "never expires".
    @inlinable
    public var isNoExpiry: Bool { self >= .noExpiry }

    /// This duration, at most ``noExpiry``: `Task.sleep(for:)` traps on durations near `Duration.seconds(.max)`.
    var boundedForSleep: Duration { min(self, .noExpiry) }
}
