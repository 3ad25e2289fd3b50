import RedisClient

extension RedisCache: DistributedFlightLocking {
    /// Deletes the lock only if it still holds this owner's token, in one step on the server.
    static let releaseFlightLockScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end
        """

    /// Extends the lock's life only if it still holds this owner's token, in one step on the server.
    static let renewFlightLockScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end
        """

    /// `__flight__:<namespace>:<key>`: outside the namespace, so `clear()` and client tracking (BCAST on the
    /// namespace) do not see the locks; they expire by themselves.
    func flightLockKey(_ key: String) -> NamespacedKey {
        NamespacedKey(prefix: "__flight__:" + keyspace.prefix, key: key)
    }

    package func acquireFlightLock(_ key: String, token: String, ttl: Duration) async throws -> Bool {
        try checkUsable(key)
        let reply = try await run(
            .set(flightLockKey(key), value: token, expiration: .after(ttl), condition: .ifNotExists), key: key
        )
        return !reply.isNull
    }

    package func holdsFlightLock(_ key: String, token: String) async throws -> Bool {
        let reply = try await run(.get(flightLockKey(key)), key: key)
        return reply.string == token
    }

    package func renewFlightLock(_ key: String, token: String, ttl: Duration) async throws -> Bool {
        try checkUsable(key)
        let milliseconds = max(1, Int((ttl / .milliseconds(1)).rounded(.up)))
        let reply = try await run(
            RedisCommand("EVAL", Self.renewFlightLockScript, 1, flightLockKey(key), token, milliseconds), key: key
        )
        return reply.int == 1
    }

    package func releaseFlightLock(_ key: String, token: String) async throws {
        _ = try await run(RedisCommand("EVAL", Self.releaseFlightLockScript, 1, flightLockKey(key), token), key: key)
    }
}
