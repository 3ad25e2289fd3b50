import CommonSupport

/// Distributed single flight (``DistributedSingleFlightOptions``) on a fallback cache: the lock lives in the
/// backend's Redis, shared by every instance, when the backend can hold one (``RedisCache``, ``TwoLevelCache``).
///
/// While the backend is considered down (the circuit breaker is open, or the key awaits replay), or a lock call fails
/// because it is unreachable, the lock is granted locally: the instance runs its own flight, as single flight within
/// one process always does, instead of waiting for a lock it cannot reach.
extension FallbackCache: DistributedFlightLocking {
    package func acquireFlightLock(_ key: String, token: String, ttl: Duration) async throws -> Bool {
        let (closed, local) = state.withLock { ($0.closed, $0.mustUseMemory(for: key)) }
        if closed { throw CacheError.closed(key: key) }
        guard let locking = backendLocking, !local else { return grantLocally(token) }
        do {
            return try await locking.acquireFlightLock(key, token: token, ttl: ttl)
        } catch where Self.isAvailabilityFailure(error) {
            noteFailure(error, fellBack: false)
            return grantLocally(token)
        }
    }

    package func holdsFlightLock(_ key: String, token: String) async throws -> Bool {
        if localFlightTokens.withLock({ $0.contains(token) }) { return true }
        guard let backendLocking else { return false }
        return try await backendLocking.holdsFlightLock(key, token: token)
    }

    package func renewFlightLock(_ key: String, token: String, ttl: Duration) async throws -> Bool {
        if localFlightTokens.withLock({ $0.contains(token) }) { return true }
        guard let backendLocking else { return false }
        return try await backendLocking.renewFlightLock(key, token: token, ttl: ttl)
    }

    package func releaseFlightLock(_ key: String, token: String) async throws {
        if localFlightTokens.withLock({ $0.remove(token) }) != nil { return }
        guard let backendLocking else { return }
        try await backendLocking.releaseFlightLock(key, token: token)
    }

    package func waitForFlightProgress(_ key: String, atMost timeout: Duration) async {
        if let backendLocking {
            await backendLocking.waitForFlightProgress(key, atMost: timeout)
        } else {
            try? await Task.sleep(for: timeout)
        }
    }

    private func grantLocally(_ token: String) -> Bool {
        localFlightTokens.withLock { _ = $0.insert(token) }
        return true
    }
}
