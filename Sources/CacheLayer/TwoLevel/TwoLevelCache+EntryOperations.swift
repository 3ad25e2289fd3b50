extension TwoLevelCache {
    /// `SET NX PX` in Redis (atomic across instances); L1 forgets the key, as after any write.
    @discardableResult
    public func setIfAbsent<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?) async throws -> Bool {
        try checkOpen(key)
        return try await changing(.keys([key])) {
            let stored = try await redis.setIfAbsent(key, to: value, ttl: ttl)
            if stored { recordSets(1) }
            return stored
        }
    }

    /// `SET KEEPTTL` in Redis; L1 forgets the key.
    public func setKeepingTTL<Value: Codable & Sendable>(_ key: String, to value: Value) async throws {
        try checkOpen(key)
        try await changing(.keys([key])) {
            try await redis.setKeepingTTL(key, to: value)
            recordSets(1)
        }
    }

    /// The remaining TTL in Redis (L1 may hold the value for less).
    public func ttl(_ key: String) async throws -> Duration? {
        try checkOpen(key)
        return try await redis.ttl(key)
    }

    /// The value and its remaining TTL from Redis, in one round trip (L1 does not know Redis' TTL exactly); the key
    /// leaves L1, which may hold an older value than the one returned.
    public func getWithTTL<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> (value: Value, ttl: Duration)? {
        try checkOpen(key)
        let entry = try await redis.getWithTTL(key, as: type)
        near.readReturned(key)
        recordHits(entry == nil ? 0 : 1, misses: entry == nil ? 1 : 0)
        return entry
    }

    /// The bytes stored in Redis as they are; L1 forgets the key.
    public func setBytes(_ key: String, to bytes: [UInt8], ttl: Duration?) async throws {
        try checkOpen(key)
        try await changing(.keys([key])) {
            try await redis.setBytes(key, to: bytes, ttl: ttl)
            recordSets(1)
        }
    }

    /// The bytes stored in Redis, as they are; the key leaves L1, as after ``getWithTTL(_:as:)``.
    public func getBytes(_ key: String) async throws -> [UInt8]? {
        try checkOpen(key)
        let bytes = try await redis.getBytes(key)
        near.readReturned(key)
        recordHits(bytes == nil ? 0 : 1, misses: bytes == nil ? 1 : 0)
        return bytes
    }
}
