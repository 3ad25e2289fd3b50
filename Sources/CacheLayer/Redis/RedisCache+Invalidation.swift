import NIOCore
import RedisClient

extension RedisCache {
    /// Stores `value` and adds `key` to the Redis set of each tag, in one pipeline.
    ///
    /// A tag set lives as long as its longest-lived member (`PEXPIRE … NX` then `GT`; no expiry when a member has
    /// none), so tags of expired keys do not pile up. A key stays attached to a tag until the tag is invalidated or
    /// its set expires, even if the key is later stored again without that tag.
    public func set<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?, tags: Set<String>) async throws {
        guard !tags.isEmpty else { return try await set(key, to: value, ttl: ttl) }
        try checkUsable(key)
        let set = try setCommand(key, value, ttl: ttl)
        let expiration = try expiration(for: ttl, key: key)
        var commands = [set.command]
        commands.reserveCapacity(1 + tags.count * 3)
        for tag in tags.sorted() {
            let tagKey = keyspace.tagKey(tag)
            commands.append(RedisCommand("SADD", tagKey, keyspace.key(key)))
            switch expiration {
            case .after(let ttl):
                let milliseconds = max(1, Int(ttl.milliseconds))
                commands.append(RedisCommand("PEXPIRE", tagKey, milliseconds, "NX"))
                commands.append(RedisCommand("PEXPIRE", tagKey, milliseconds, "GT"))
            case .none, .keepTTL:
                commands.append(RedisCommand("PERSIST", tagKey))
            }
        }
        _ = try await runPipeline(commands, key: key)
        recordSets(1, bytes: set.bytes)
    }

    /// Removes the keys stored with `tag` and the tag's set.
    ///
    /// The set is read and removed atomically (`MULTI SMEMBERS UNLINK EXEC`), so a key tagged meanwhile lands in a
    /// new set and is not lost; its members are then unlinked in batches of 1,000.
    public func invalidate(tag: String) async throws {
        try await removeTagged(tag)
    }

    /// What ``invalidate(tag:)`` does; returns the Redis keys (namespace included) it removed.
    @discardableResult
    func removeTagged(_ tag: String) async throws(CacheError) -> [ByteBuffer] {
        try checkOpen(nil)
        let tagKey = keyspace.tagKey(tag)
        let replies = try await runPipeline(
            [RedisCommand("MULTI"), RedisCommand("SMEMBERS", tagKey), RedisCommand("UNLINK", tagKey), RedisCommand("EXEC")],
            key: nil
        )
        guard let results = replies.last?.array, results.count == 2, let members = results[0].array else {
            throw Self.unexpected(replies.last ?? .null, key: nil)
        }
        let keys = members.compactMap(\.buffer)
        var start = 0
        while start < keys.count {
            let end = min(start + 1000, keys.count)
            _ = try await run(RedisCommand([ByteBuffer(string: "UNLINK")] + keys[start..<end]), key: nil)
            start = end
        }
        return keys
    }

    /// Removes every key of this cache starting with `prefix` (`SCAN MATCH <namespace>:<prefix>*`, glob characters
    /// escaped, then `UNLINK` in batches).
    ///
    /// An empty prefix is the same as ``clear()``.
    public func invalidate(prefix: String) async throws {
        try checkOpen(nil)
        if prefix.isEmpty { return try await clear() }
        try await unlinkMatching(keyspace.matchPattern(keyPrefix: prefix))
    }
}
