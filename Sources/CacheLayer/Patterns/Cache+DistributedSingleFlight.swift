import Foundation
import Logging

/// A cache that can hold the lock of a distributed single flight (``DistributedSingleFlightOptions``): one lock key
/// per cache key in a store all instances share. ``RedisCache``, ``TwoLevelCache`` and ``FallbackCache`` conform.
package protocol DistributedFlightLocking: Sendable {
    /// Takes the lock of `key` for `token` unless someone holds it (`SET NX PX`); returns whether it did.
    func acquireFlightLock(_ key: String, token: String, ttl: Duration) async throws -> Bool
    /// Whether `token` still holds the lock of `key`.
    func holdsFlightLock(_ key: String, token: String) async throws -> Bool
    /// Gives the lock of `key` `ttl` more to live if `token` still holds it (compare-and-`PEXPIRE`); returns whether
    /// it did.
    func renewFlightLock(_ key: String, token: String, ttl: Duration) async throws -> Bool
    /// Deletes the lock of `key` if `token` holds it (compare-and-delete), never a lock someone else took since.
    func releaseFlightLock(_ key: String, token: String) async throws
    /// Waits at most `timeout` before a waiter polls again; returns early when the cache learns that `key` changed.
    func waitForFlightProgress(_ key: String, atMost timeout: Duration) async
}

extension DistributedFlightLocking {
    /// Sleeps `timeout`: without a signal of changes, waiters poll.
    package func waitForFlightProgress(_ key: String, atMost timeout: Duration) async {
        try? await Task.sleep(for: timeout)
    }
}

extension Cache {
    /// Runs `load` under the distributed lock of `key` when `options` ask for it and the cache can hold one, else at
    /// once. `check` reads the value another instance may have stored; `load` receives `stillOwner`, to ask before it
    /// stores its value whether this instance still holds the lock (a late owner must not overwrite a newer value).
    ///
    /// Runs inside the local flight of `key`, so one call per instance contends for the lock.
    func distributedFlight<Value: Sendable>(
        _ key: String,
        options: GetOrSetOptions,
        check: @escaping @Sendable () async throws -> Value?,
        load: @escaping @Sendable (_ stillOwner: @escaping @Sendable () async -> Bool) async throws -> Value
    ) async throws -> Value {
        guard let distributed = options.distributed, let locking = self as? any DistributedFlightLocking else {
            return try await load({ true })
        }
        let state = patterns
        let token = UUID().uuidString
        let deadline = ContinuousClock.now + distributed.maxWait
        var pause = distributed.initialPollInterval
        while true {
            let acquired: Bool
            do {
                acquired = try await locking.acquireFlightLock(key, token: token, ttl: distributed.lockTTL)
            } catch let error as CacheError where error.code == .cancelled {
                throw error
            } catch {
                state.warning("Could not take the distributed single-flight lock; running the factory in this instance", key: key, error: error)
                return try await load({ true })
            }
            if acquired {
                let value: Value
                do {
                    // A previous owner may have stored the value between this instance's miss and its lock.
                    if let stored = try await check() {
                        value = stored
                    } else {
                        value = try await Self.renewingLock(locking, key: key, token: token, options: distributed) {
                            try await load({ (try? await locking.holdsFlightLock(key, token: token)) ?? false })
                        }
                    }
                } catch {
                    // Released at once, so that a waiting instance need not wait for the lock to expire.
                    try? await locking.releaseFlightLock(key, token: token)
                    throw error
                }
                try? await locking.releaseFlightLock(key, token: token)
                return value
            }
            if let value = try await check() { return value }
            let now = ContinuousClock.now
            guard now < deadline else {
                state.warning(
                    "Another instance held the distributed single-flight lock for longer than maxWait; running the factory in this instance",
                    key: key,
                    error: CacheError.timeout("No value after waiting \(distributed.maxWait) for the lock's owner.", key: key)
                )
                return try await load({ true })
            }
            await locking.waitForFlightProgress(key, atMost: min(pause, deadline - now))
            if Task.isCancelled { throw CacheError.cancelled(key: key) }
            pause = min(pause * 2, distributed.maxPollInterval)
        }
    }

    /// Runs the owner's `load` while renewing its lock every third of ``DistributedSingleFlightOptions/lockTTL``, so
    /// a factory slower than the lock's TTL keeps the lock and the other instances keep waiting for its value
    /// instead of running the factory as well. Renewal stops when `load` returns, when the lock was lost, and after
    /// ``DistributedSingleFlightOptions/maxWait`` (the waiters run the factory themselves by then anyway), so a
    /// factory that hangs holds the lock at most that long plus one TTL, and an owner that dies holds it one TTL.
    static func renewingLock<Value: Sendable>(
        _ locking: any DistributedFlightLocking,
        key: String,
        token: String,
        options: DistributedSingleFlightOptions,
        _ load: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        try await withThrowingTaskGroup(of: Value?.self) { group in
            group.addTask {
                let interval = options.lockTTL / 3
                let stop = ContinuousClock.now + options.maxWait
                while ContinuousClock.now + interval < stop {
                    do {
                        try await Task.sleep(for: interval)
                        guard try await locking.renewFlightLock(key, token: token, ttl: options.lockTTL) else { break }
                    } catch {
                        // Cancelled (the load is done), or Redis failed: the lock then expires by itself.
                        break
                    }
                }
                return nil
            }
            group.addTask { try await load() }
            while let result = try await group.next() {
                if let value = result {
                    group.cancelAll()
                    return value
                }
            }
            // Unreachable: the load's task returns a value or throws.
            throw CacheError.cancelled(key: key)
        }
    }
}
