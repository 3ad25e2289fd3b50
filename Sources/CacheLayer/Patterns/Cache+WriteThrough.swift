extension Cache {
    /// Write-through: updates the source of truth, then the cache.
    ///
    /// ```swift
    /// try await cache.writeThrough("user:\(user.id)", value: user, ttl: .seconds(3600)) {
    ///     try await database.update(user)
    /// }
    /// ```
    ///
    /// When `update` throws, the cache is left alone and the error is rethrown. When `update` succeeds but the
    /// cache write fails, the update still counts: nothing is thrown, the failure is logged and counted in
    /// ``CachePatternCounters/cacheWriteFailures``, and the key is deleted (best effort) so the cache does not keep
    /// serving the value from before the update.
    ///
    /// - Returns: Whether the cache holds the new value.
    @discardableResult
    public func writeThrough<Value: Codable & Sendable>(
        _ key: String,
        value: Value,
        ttl: Duration? = nil,
        tags: Set<String> = [],
        update: @Sendable () async throws -> Void
    ) async throws -> Bool {
        try await update()
        do {
            if tags.isEmpty {
                try await set(key, to: value, ttl: ttl)
            } else {
                try await set(key, to: value, ttl: ttl, tags: tags)
            }
            return true
        } catch {
            patterns.recordCacheWriteFailure("writeThrough", key: key, error: error)
            try? await delete(key)
            return false
        }
    }
}
