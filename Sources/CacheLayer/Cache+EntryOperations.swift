extension Cache {
    /// The default implementation: throws ``CacheError/Code/unsupported``, since a check followed by a write would
    /// not be atomic.
    @discardableResult
    public func setIfAbsent<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?) async throws -> Bool {
        throw Self.unsupportedEntryOperation("add-if-absent (setIfAbsent)", key: key)
    }

    /// The default implementation: throws ``CacheError/Code/unsupported``.
    public func setKeepingTTL<Value: Codable & Sendable>(_ key: String, to value: Value) async throws {
        throw Self.unsupportedEntryOperation("writes that keep the TTL (setKeepingTTL)", key: key)
    }

    /// The default implementation: throws ``CacheError/Code/unsupported``.
    public func ttl(_ key: String) async throws -> Duration? {
        throw Self.unsupportedEntryOperation("reading a key's TTL", key: key)
    }

    /// The default implementation: throws ``CacheError/Code/unsupported``.
    public func getWithTTL<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> (value: Value, ttl: Duration)? {
        throw Self.unsupportedEntryOperation("reading a key's TTL (getWithTTL)", key: key)
    }

    /// The default implementation: stores the bytes as a `[UInt8]` value with ``set(_:to:ttl:)``.
    public func setBytes(_ key: String, to bytes: [UInt8], ttl: Duration?) async throws {
        try await set(key, to: bytes, ttl: ttl)
    }

    /// The default implementation: reads a `[UInt8]` value with ``get(_:as:)``.
    public func getBytes(_ key: String) async throws -> [UInt8]? {
        try await get(key, as: [UInt8].self)
    }

    /// Stores `value` under `key` with the configured default TTL only when no live value is stored there.
    @discardableResult
    public func setIfAbsent<Value: Codable & Sendable>(_ key: String, to value: Value) async throws -> Bool {
        try await setIfAbsent(key, to: value, ttl: nil)
    }

    /// The value under `key` and its remaining time to live, the value's type inferred from the context.
    public func getWithTTL<Value: Codable & Sendable>(_ key: String) async throws -> (value: Value, ttl: Duration)? {
        try await getWithTTL(key, as: Value.self)
    }

    private static func unsupportedEntryOperation(_ operation: String, key: String) -> CacheError {
        CacheError(
            code: .unsupported, key: key,
            message: "This cache (\(Self.self)) does not support \(operation). Use the memory, Redis or fallback cache."
        )
    }
}

/// Bytes stored by ``Cache/setBytes(_:to:ttl:)`` in a memory cache: kept apart from `[UInt8]` values stored with
/// `set`, so the fallback cache replays them to Redis as bytes, not as an encoded array.
package struct StoredBytes: Codable, Sendable, Equatable {
    package var bytes: [UInt8]

    package init(_ bytes: [UInt8]) { self.bytes = bytes }
}
