/// A change in the health of a fallback cache's backend.
public enum FallbackHealthEvent: Sendable, Equatable {
    /// The backend failed `failureThreshold` times in a row: reads and writes are served by memory until it
    /// answers again. `reason` describes the last failure.
    case backendLost(reason: String)
    /// The backend answers again and the writes made during the outage were replayed to it.
    case backendRecovered(reconciledKeys: Int)
}

/// How a ``FallbackCache`` decides that its backend is down, when it tries again, and how it recovers.
public struct FallbackConfiguration: Sendable, Equatable {
    /// Consecutive availability failures (unavailable or timeout) that open the circuit breaker. Default: 3.
    public var failureThreshold: Int = 3
    /// How often the backend is probed while the breaker is open. Default: 1 s.
    public var probeInterval: Duration = .seconds(1)
    /// The most distinct keys remembered as written during an outage. One more, and the cache forgets them all and
    /// clears its namespace in the backend on recovery instead (logged once), so a long outage cannot grow the journal
    /// without limit and no key keeps a value older than the one written during the outage. Default: 100,000.
    public var maxPendingKeys: Int = 100_000
    /// What recovery does with the keys written during an outage. Default: ``FallbackRecovery/invalidate``.
    public var recovery: FallbackRecovery = .invalidate
    /// The longest a value may be served from memory after this instance last wrote it or read it from the backend;
    /// older copies are a miss during an outage. `nil` (the default): a value's own TTL is the limit.
    public var maxOutageAge: Duration? = nil
    /// How long ``FallbackCache/close()`` may spend replaying writes made during an outage when the backend is
    /// reachable again; past it, they are dropped (logged). Default: 2 s.
    public var closeTimeout: Duration = .seconds(2)

    /// The defaults.
    public init(
        failureThreshold: Int = 3, probeInterval: Duration = .seconds(1), maxPendingKeys: Int = 100_000,
        recovery: FallbackRecovery = .invalidate, maxOutageAge: Duration? = nil, closeTimeout: Duration = .seconds(2)
    ) {
        self.failureThreshold = failureThreshold
        self.probeInterval = probeInterval
        self.maxPendingKeys = maxPendingKeys
        self.recovery = recovery
        self.maxOutageAge = maxOutageAge
        self.closeTimeout = closeTimeout
    }

    func validate() throws(CacheError) {
        if failureThreshold < 1 {
            throw CacheError.invalidConfiguration("failureThreshold is \(failureThreshold). Use at least 1.")
        }
        if maxPendingKeys < 1 {
            throw CacheError.invalidConfiguration("maxPendingKeys is \(maxPendingKeys). Use at least 1, e.g. 100_000.")
        }
        if probeInterval <= .zero {
            throw CacheError.invalidConfiguration("probeInterval is \(probeInterval). Use a positive duration such as .seconds(1).")
        }
        if let maxOutageAge, maxOutageAge <= .zero {
            throw CacheError.invalidConfiguration("maxOutageAge is \(maxOutageAge). Use a positive duration such as .seconds(300), or nil for no limit.")
        }
        if closeTimeout < .zero {
            throw CacheError.invalidConfiguration("closeTimeout is \(closeTimeout). Use zero (drop pending writes at once) or a positive duration such as .seconds(2).")
        }
    }
}

/// What a ``FallbackCache`` does on recovery with the keys written (or deleted) during an outage.
public enum FallbackRecovery: String, Sendable, Equatable, Hashable, CaseIterable {
    /// Removes those keys from the backend (`UNLINK`, in batches), so the next read loads a fresh value. Safe with
    /// many instances: another instance that still reached the backend may have written a newer value meanwhile, and
    /// this one never overwrites it with an older one. The writes made during the outage are lost to other instances.
    case invalidate
    /// Writes memory's values back to the backend (and deletes the keys memory no longer holds). Only for a single
    /// writer: with several instances, a write-back can replace another instance's newer value for every instance
    /// until its TTL.
    case writeBack = "write-back"
}
