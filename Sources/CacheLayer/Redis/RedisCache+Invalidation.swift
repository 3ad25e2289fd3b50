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
    /// On one server, in one Lua script that Redis runs atomically: it unlinks the members in batches of 1,000 and
    /// the set last. Whatever fails — the connection drops, or Redis refuses a member (an ACL that allows the tag set
    /// but not its keys: `NOPERM`) — the set is removed only after every member is, so a retry finds what is left and
    /// finishes the job. No other command runs in between, so a key tagged meanwhile lands in a new set and is not
    /// lost. Very large tags block Redis while the script runs (about a millisecond per 10,000 keys).
    ///
    /// On a Redis Cluster the members live in many slots, which no script may span, so it takes three steps:
    /// `SMEMBERS` of the set, `UNLINK` of the members (split per slot, every node at once), then `SREM` of exactly
    /// those members (the set disappears once empty). It is not atomic: readers may see some members gone and others
    /// not yet. It keeps the guarantees that matter: a failure leaves the set with every member not yet removed, so a
    /// retry finishes the job; and a key tagged after the `SMEMBERS` stays in the set for the next invalidation. The
    /// one window: a member removed in step 2 and stored again with the tag before step 3 loses its tag entry (its
    /// value stays, with its TTL).
    public func invalidate(tag: String) async throws {
        try await removeTagged(tag)
    }

    /// What ``invalidate(tag:)`` does; returns the Redis keys (namespace included) it removed.
    @discardableResult
    func removeTagged(_ tag: String) async throws(CacheError) -> [ByteBuffer] {
        try checkOpen(nil)
        if client.isCluster { return try await removeTaggedAcrossSlots(tag) }
        let tagKey = keyspace.tagKey(tag)
        let reply = try await run(RedisCommand("EVAL", Self.invalidateTagScript, 1, tagKey), key: nil)
        guard let members = reply.array else { throw Self.unexpected(reply, key: nil) }
        return members.compactMap(\.buffer)
    }

    /// ``removeTagged(_:)`` on a cluster: `SMEMBERS`, `UNLINK` per slot, `SREM` of what was removed.
    private func removeTaggedAcrossSlots(_ tag: String) async throws(CacheError) -> [ByteBuffer] {
        let tagKey = ByteBuffer(string: keyspace.prefix + RedisKeyspace.tagMarker + tag)
        let reply = try await run(RedisCommand([ByteBuffer(string: "SMEMBERS"), tagKey], isIdempotent: true), key: nil)
        guard let elements = reply.array else { throw Self.unexpected(reply, key: nil) }
        let members = elements.compactMap(\.buffer)
        for start in stride(from: 0, to: members.count, by: 1000) {
            let batch = Array(members[start..<min(start + 1000, members.count)])
            _ = try await run(RedisCommand([ByteBuffer(string: "UNLINK")] + batch), key: nil)
            _ = try await run(RedisCommand([ByteBuffer(string: "SREM"), tagKey] + batch), key: nil)
        }
        return members
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
