import NIOCore

extension TwoLevelCache {
    /// Stores `value` in Redis attached to `tags` (as ``RedisCache/set(_:to:ttl:tags:)``), then removes `key` from L1.
    public func set<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?, tags: Set<String>) async throws {
        try checkOpen(key)
        try await changing(.keys([key])) {
            try await redis.set(key, to: value, ttl: ttl, tags: tags)
            recordSets(1)
        }
    }

    /// Removes the keys stored with `tag` from Redis, then the same keys from L1.
    public func invalidate(tag: String) async throws {
        _ = try await removeTagged(tag)
    }

    /// ``invalidate(tag:)``, returning the keys removed (without the namespace), so a ``FallbackCache`` in front drops
    /// its copies of exactly those.
    func removeTagged(_ tag: String) async throws -> [String] {
        try checkOpen(nil)
        let removed: [ByteBuffer]
        do {
            removed = try await redis.removeTagged(tag)
        } catch {
            // Which keys went is unknown: empty L1 (every instance's) rather than keep one that may be gone from Redis.
            await changed(.all)
            throw error
        }
        let prefix = redis.keyspace.prefix
        let keys = removed.compactMap { buffer -> String? in
            let key = String(buffer: buffer)
            return key.hasPrefix(prefix) ? String(key.dropFirst(prefix.count)) : nil
        }
        await changed(.keys(keys))
        return keys
    }

    /// Removes every key starting with `prefix` from Redis, then from L1.
    public func invalidate(prefix: String) async throws {
        try checkOpen(nil)
        try await changing(.prefix(prefix)) { try await redis.invalidate(prefix: prefix) }
    }
}
