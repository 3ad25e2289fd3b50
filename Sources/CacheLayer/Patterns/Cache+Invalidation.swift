extension Cache {
    /// The default implementation: stores untagged values; tags need a backend that supports them.
    public func set<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?, tags: Set<String>) async throws {
        guard tags.isEmpty else {
            throw CacheError(
                code: .unsupported, key: key,
                message: "This cache (\(Self.self)) does not support tags. Use the memory or Redis cache, or invalidate by key or prefix instead."
            )
        }
        try await set(key, to: value, ttl: ttl)
    }

    /// The default implementation: throws ``CacheError/Code/unsupported``.
    public func invalidate(tag: String) async throws {
        throw CacheError(
            code: .unsupported,
            message: "This cache (\(Self.self)) does not support tags, so it cannot invalidate tag \"\(tag)\". Use the memory or Redis cache, or delete the keys with deleteMany."
        )
    }

    /// The default implementation: throws ``CacheError/Code/unsupported``.
    public func invalidate(prefix: String) async throws {
        throw CacheError(
            code: .unsupported,
            message: "This cache (\(Self.self)) cannot invalidate keys by prefix. Use the memory or Redis cache, or delete the keys with deleteMany."
        )
    }
}
