/// Sizing, timeouts and retries of a ``RedisConnectionPool``.
public struct RedisConnectionPoolConfiguration: Sendable {
    /// Most connections open at once (leased + idle + being made). Callers beyond this wait.
    public var maxConnections: Int
    /// Connections kept open and idle, ready for bursts (made in the background by `run()`).
    public var minIdleConnections: Int
    /// Idle connections beyond this are closed when returned.
    public var maxIdleConnections: Int
    /// Connections older than this are closed when returned or found idle, and replaced as needed; `nil` keeps them.
    public var maxConnectionLifetime: Duration?
    /// How long a caller waits for a free connection before failing with ``RedisError/Code/poolTimeout``.
    public var acquireTimeout: Duration
    /// Retries after a failed connect, and retries of idempotent commands (GET, MGET, EXISTS, PTTL, PING,
    /// SCAN, INFO) after a connection failure. Writes are never retried once they may have been sent, and no
    /// command is retried after a timeout.
    public var maxRetries: Int
    /// First retry delay; doubles with each retry up to ``maxRetryDelay``, with random jitter (50–100 %).
    public var retryBaseDelay: Duration
    /// Longest retry delay.
    public var maxRetryDelay: Duration
    /// How often `run()` replaces dead idle connections, retires old ones and keeps ``minIdleConnections`` warm.
    public var maintenanceInterval: Duration

    /// A configuration with common defaults: up to 16 connections, none kept warm, up to 16 idle, no
    /// lifetime limit, 5 s acquire timeout, 3 retries from 50 ms to 2 s.
    public init(
        maxConnections: Int = 16,
        minIdleConnections: Int = 0,
        maxIdleConnections: Int? = nil,
        maxConnectionLifetime: Duration? = nil,
        acquireTimeout: Duration = .seconds(5),
        maxRetries: Int = 3,
        retryBaseDelay: Duration = .milliseconds(50),
        maxRetryDelay: Duration = .seconds(2),
        maintenanceInterval: Duration = .milliseconds(250)
    ) {
        self.maxConnections = maxConnections
        self.minIdleConnections = minIdleConnections
        self.maxIdleConnections = maxIdleConnections ?? maxConnections
        self.maxConnectionLifetime = maxConnectionLifetime
        self.acquireTimeout = acquireTimeout
        self.maxRetries = maxRetries
        self.retryBaseDelay = retryBaseDelay
        self.maxRetryDelay = maxRetryDelay
        self.maintenanceInterval = maintenanceInterval
    }

    /// The delay before retry number `attempt` (1-based): exponential, capped, with jitter.
    package func retryDelay(attempt: Int) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let cap = min(self.maxRetryDelay, .noLimit)
        // Compared before multiplying, so huge configured delays cannot overflow.
        let delay = self.retryBaseDelay >= cap / (1 << exponent) ? cap : self.retryBaseDelay * (1 << exponent)
        return max(delay, .zero) * Double.random(in: 0.5...1.0)
    }
}
