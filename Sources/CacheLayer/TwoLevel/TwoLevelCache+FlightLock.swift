extension TwoLevelCache: DistributedFlightLocking {
    /// The lock lives in Redis, shared by every instance (see ``RedisCache``).
    package func acquireFlightLock(_ key: String, token: String, ttl: Duration) async throws -> Bool {
        try checkOpen(key)
        return try await redis.acquireFlightLock(key, token: token, ttl: ttl)
    }

    package func holdsFlightLock(_ key: String, token: String) async throws -> Bool {
        try await redis.holdsFlightLock(key, token: token)
    }

    package func renewFlightLock(_ key: String, token: String, ttl: Duration) async throws -> Bool {
        try checkOpen(key)
        return try await redis.renewFlightLock(key, token: token, ttl: ttl)
    }

    package func releaseFlightLock(_ key: String, token: String) async throws {
        try await redis.releaseFlightLock(key, token: token)
    }

    /// Returns early when the owner's write of `key` arrives as an invalidation (tracking or the backplane).
    package func waitForFlightProgress(_ key: String, atMost timeout: Duration) async {
        await near.changeWaiters.wait(for: key, atMost: timeout)
    }
}
