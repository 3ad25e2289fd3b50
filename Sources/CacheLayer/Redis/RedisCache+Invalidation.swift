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

    /// Removes the keys stored with `tag` and the tag's set, in one Lua script that Redis runs atomically.
    ///
    /// The script unlinks the members in batches of 1,000 and the set last. Whatever fails — the connection
    /// drops, or Redis refuses a member (an ACL that allows the tag set but not its keys: `NOPERM`) — the set is
    /// removed only after every member is, so a retry finds what is left and finishes the job. No other command
    /// runs in between, so a key tagged meanwhile lands in a new set and is not lost. Very large tags block Redis
    /// while the script runs (about a millisecond per 10,000 keys).
    public func invalidate(tag: String) async throws {
        try await removeTagged(tag)
    }

    /// What ``invalidate(tag:)`` does; returns the Redis keys (namespace included) it removed.
    @discardableResult
    func removeTagged(_ tag: String) async throws(CacheError) -> [ByteBuffer] {
        try checkOpen(nil)
        let tagKey = keyspace.tagKey(tag)
        let reply = try await run(RedisCommand("EVAL", Self.invalidateTagScript, 1, tagKey), key: nil)
        guard let members = reply.array else { throw Self.unexpected(reply, key: nil) }
        return members.compactMap(\.buffer)
    }

    /// `KEYS[1]`: the tag set. Unlinks its members, then the set; returns the members (the two-level cache removes
    /// them from its near cache).
    static let invalidateTagScript = """
        local members = redis.call('SMEMBERS', KEYS[1])
        for i = 1, #members, 1000 do
            redis.call('UNLINK', unpack(members, i, math.min(i + 999, #members)))
        end
        redis.call('UNLINK', KEYS[1])
        return members
        """

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
