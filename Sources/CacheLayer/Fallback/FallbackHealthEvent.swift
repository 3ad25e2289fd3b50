/// A change in the health of a fallback cache's backend.
public enum FallbackHealthEvent: Sendable, Equatable {
    /// The backend failed `failureThreshold` times in a row: reads and writes are served by memory until it
    /// answers again. `reason` describes the last failure.
    case backendLost(reason: String)
    /// The backend answers again and the writes made during the outage were replayed to it.
    case backendRecovered(reconciledKeys: Int)
}

/// How a ``FallbackCache`` decides that its backend is down and when it tries again.
public struct FallbackConfiguration: Sendable, Equatable {
    /// Consecutive availability failures (unavailable or timeout) that open the circuit breaker. Default: 3.
    public var failureThreshold: Int = 3
    /// How often the backend is probed while the breaker is open. Default: 1 s.
    public var probeInterval: Duration = .seconds(1)
    /// The most distinct keys remembered as written during an outage. One more, and the cache forgets them all and
    /// clears its namespace in the backend on recovery instead (logged once), so a long outage cannot grow the journal
    /// without limit and no key keeps a value older than the one written during the outage. Default: 100,000.
    public var maxPendingKeys: Int = 100_000

    /// The defaults.
    public init(failureThreshold: Int = 3, probeInterval: Duration = .seconds(1), maxPendingKeys: Int = 100_000) {
        self.failureThreshold = failureThreshold
        self.probeInterval = probeInterval
        self.maxPendingKeys = maxPendingKeys
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
    }
}

/// What the fallback cache needs from its memory cache to replay writes made during an outage.
package protocol ReplayableCache: Cache {
    /// The live value under `key` and its remaining time to live (`nil`: never expires), or `nil` when absent.
    func replayableEntry(_ key: String) throws -> (value: any Codable & Sendable, ttl: Duration?)?
}
