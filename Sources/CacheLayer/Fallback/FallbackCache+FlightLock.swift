import CommonSupport

/// Distributed single flight (``DistributedSingleFlightOptions``) on a fallback cache: the lock lives in the
/// backend's Redis, shared by every instance, when the backend can hold one (``RedisCache``, ``TwoLevelCache``).
///
/// While the backend is considered down (the circuit breaker is open, or the key awaits replay), or a lock call fails
/// because it is unreachable, the lock is granted locally: the instance runs its own flight, as single flight within
/// one process always does, instead of waiting for a lock it cannot reach.
extension FallbackCache: DistributedFlightLocking {
    /// The backend's locking, or `nil` when the lock of `key` must be local now.
    private func backendLocking(for key: String) -> (any DistributedFlightLocking)? {
        guard let locking = primary as? any DistributedFlightLocking else { return nil }
        return state.withLock { $0.mustUseMemory(for: key) } ? nil : locking
    }

    package func acquireFlightLock(_ key: String, token: String, ttl: Duration) async throws -> Bool {
        guard !state.withLock({ $0.closed }) else { throw CacheError.closed(key: key) }
        guard let locking = backendLocking(for: key) else { return grantLocally(token) }
        do {
            return try await locking.acquireFlightLock(key, token: token, ttl: ttl)
        } catch where Self.isAvailabilityFailure(error) {
            noteFailure(error, fellBack: false)
            return grantLocally(token)
        }
    }

    package func holdsFlightLock(_ key: String, token: String) async throws -> Bool {
        if localFlightTokens.withLock({ $0.contains(token) }) { return true }
        guard let locking = primary as? any DistributedFlightLocking else { return false }
        return try await locking.holdsFlightLock(key, token: token)
    }

    package func renewFlightLock(_ key: String, token: String, ttl: Duration) async throws -> Bool {
        if localFlightTokens.withLock({ $0.contains(token) }) { return true }
        guard let locking = primary as? any DistributedFlightLocking else { return false }
        return try await locking.renewFlightLock(key, token: token, ttl: ttl)
    }

    package func releaseFlightLock(_ key: String, token: String) async throws {
        if localFlightTokens.withLock({ $0.remove(token) }) != nil { return }
        guard let locking = primary as? any DistributedFlightLocking else { return }
        try await locking.releaseFlightLock(key, token: token)
    }

    package func waitForFlightProgress(_ key: String, atMost timeout: Duration) async {
        if let locking = primary as? any DistributedFlightLocking {
            await locking.waitForFlightProgress(key, atMost: timeout)
        } else {
            try? await Task.sleep(for: timeout)
        }
    }

    private func grantLocally(_ token: String) -> Bool {
        localFlightTokens.withLock { _ = $0.insert(token) }
        return true
    }
}
