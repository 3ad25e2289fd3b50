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
public protocol Cache: Sendable {
    /// The value stored under `key`, or `nil` when it is absent or expired.
    ///
    /// Throws ``CacheError/Code/typeMismatch`` when a value of another type is stored there.
    func get<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> Value?

    /// Stores `value` under `key`.
    ///
    /// - Parameter ttl: How long the value lives. `nil` uses the configuration's default TTL;
    ///   ``Swift/Duration/noExpiry`` keeps it until it is deleted or evicted. Zero or negative is an error.
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
}

extension Cache {
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
}
