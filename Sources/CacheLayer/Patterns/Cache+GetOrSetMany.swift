extension Cache {
    /// Batch cache-aside: the values under `keys`, loading the missing ones with one call of `loader`.
    ///
    /// ```swift
    /// let users = try await cache.getOrSetMany(ids.map { "user:\($0)" }, as: User.self, ttl: .seconds(3600)) { missing in
    ///     try await database.users(keys: missing)   // [key: User]
    /// }
    /// ```
    ///
    /// Makes one ``getMany(_:as:)``, then, when keys are missing, one `loader` call with exactly the missing keys
    /// (each once, in the order given) and one ``setMany(_:ttl:)`` of what it returned. Keys the loader does not
    /// return are left out of the result and not cached; entries it returns for keys it was not asked for are
    /// ignored. A loader error is thrown and nothing is cached; a failed `setMany` is logged and counted in
    /// ``CachePatternCounters/cacheWriteFailures`` and the loaded values are returned anyway.
    ///
    /// Unlike ``getOrSet(_:as:ttl:factory:)`` there is no single flight: concurrent calls may load the same keys.
    public func getOrSetMany<Value: Codable & Sendable>(
        _ keys: [String],
        as type: Value.Type = Value.self,
        ttl: Duration? = nil,
        loader: @Sendable ([String]) async throws -> [String: Value]
    ) async throws -> [String: Value] {
        let keys = distinct(keys)
        for key in keys { try CacheKey.validate(key) }
        if let ttl, ttl <= .zero, let first = keys.first { throw CacheError.invalidTTL(key: first, ttl: ttl) }
        var values = keys.isEmpty ? [:] : try await getMany(keys, as: Value.self)
        let missing = keys.filter { values[$0] == nil }
        guard !missing.isEmpty else { return values }

        let state = patterns
        let loaded = try await state.callFactory { try await loader(missing) }
        var fresh: [String: Value] = [:]
        for key in missing {
            if let value = loaded[key] { fresh[key] = value }
        }
        guard !fresh.isEmpty else { return values }
        do {
            try await setMany(fresh, ttl: ttl)
        } catch {
            state.recordCacheWriteFailure("getOrSetMany", key: nil, error: error)
        }
        values.merge(fresh) { _, loaded in loaded }
        return values
    }
}
