import CommonSupport
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A pool of ``RedisConnection``s to one server, shared by any number of tasks.
///
/// The pool makes, replaces and closes connections from its ``run()`` method, which must be running
/// while the pool is used: run it in a task group, or hand the pool to a swift-service-lifecycle
/// `ServiceGroup` (it is a `Service`). Cancelling `run()` or a graceful shutdown closes every connection
/// and returns once none is left.
///
/// ```swift
/// let pool = try RedisConnectionPool(
///     url: "redis://:secret@127.0.0.1:6379/0",
///     configuration: .init(maxConnections: 8, acquireTimeout: .seconds(1))
/// )
/// try await withThrowingDiscardingTaskGroup { group in
///     group.addTask { await pool.run() }
///     try await pool.set("k", value: "v", expiration: .after(.seconds(60)))
///     let value = try await pool.getString("k")
///     group.cancelAll()
/// }
/// ```
///
/// Dead connections (server restart, network failure, timeouts) are dropped when noticed and replaced
/// on demand, so the pool heals by itself. Idempotent commands are retried on another connection after a
/// connection failure; other commands surface the error, since they may have run.
///
/// Timeouts are never retried, idempotent or not: a command that timed out may still run, and a server too slow
/// to answer in time would only get more load while the caller waits a multiple of its timeout. The timeout
/// reaches the caller (or the cache's fallback) at once.
///
/// A caller that waits ``RedisConnectionPoolConfiguration/acquireTimeout`` for a connection gets
/// ``RedisError/Code/poolTimeout`` when every connection was in use (a busy pool, not an outage), and
/// ``RedisError/Code/timeout`` when it waited for a connection that could not be made in time.
public final class RedisConnectionPool: RedisCommandExecutor, Service {
    private typealias Waiter = CheckedContinuation<RedisConnection, any Error>
    private typealias StateMachine = RedisPoolStateMachine<RedisConnection, Waiter>

    private enum Event: Sendable {
        case connect
        case close(RedisConnection)
        /// ``shutdown()`` was called: cancel the background work.
        case stop
    }

    /// Pool sizing, timeouts and retries.
    public let configuration: RedisConnectionPoolConfiguration
    /// How each connection is made.
    public let connectionConfiguration: RedisConnectionConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let state: Locked<StateMachine>
    private let waiterIDs = Atomic<UInt64>(0)
    /// Why the latest connect attempt failed (`nil` once one succeeds): what a caller who waited in vain for a
    /// connection is told. `Locked`, not `Mutex`: the thread sanitizer cannot see `Mutex`'s futex and would report
    /// every access as a race.
    private let lastConnectError = Locked<RedisError?>(nil)
    private let events: AsyncStream<Event>
    private let eventSink: AsyncStream<Event>.Continuation

    /// A pool for the given server; call ``run()`` to start it.
    public init(
        connectionConfiguration: RedisConnectionConfiguration,
        configuration: RedisConnectionPoolConfiguration = .init(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "RedisClient", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.configuration = configuration
        self.connectionConfiguration = connectionConfiguration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.state = Locked(
            StateMachine(
                limits: .init(
                    maxConnections: configuration.maxConnections,
                    minIdleConnections: configuration.minIdleConnections,
                    maxIdleConnections: configuration.maxIdleConnections,
                    maxConnectionLifetime: configuration.maxConnectionLifetime
                )
            )
        )
        (self.events, self.eventSink) = AsyncStream<Event>.makeStream()
    }

    /// A pool from a `redis://[user:password@]host:port/db` or `rediss://…` URL.
    public convenience init(
        url: String,
        configuration: RedisConnectionPoolConfiguration = .init(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "RedisClient", factory: { _ in SwiftLogNoOpLogHandler() })
    ) throws {
        self.init(
            connectionConfiguration: try RedisConnectionConfiguration(url: url),
            configuration: configuration,
            eventLoopGroup: eventLoopGroup,
            logger: logger
        )
    }

    // MARK: running

    /// Makes and closes connections until cancelled or gracefully shut down (or ``shutdown()`` is called);
    /// then closes every connection and returns when none is left open.
    public func run() async {
        await runBackgroundWork(events: self.events, shutdown: self.shutdown, background: { await self.maintenanceLoop() }) { event in
            switch event {
            case .connect: .start { await self.makeConnection() }
            case .close(let connection): .start { await connection.close() }
            // Stop the maintenance loop and every connect attempt (its handshake and its retry back-off) now: they
            // end at once, and the stream finishes when nothing is left.
            case .stop: .cancelAll
            }
        }
    }

    /// Stops the pool: waiting callers fail with ``RedisError/Code/poolClosed``, idle connections close,
    /// leased ones close when returned, and ``run()`` returns.
    public func shutdown() {
        let action = self.state.withLock { $0.shutdown() }
        for waiter in action.failWaiters { waiter.resume(throwing: Self.closedError) }
        for connection in action.close { self.eventSink.yield(.close(connection)) }
        self.eventSink.yield(.stop)
        self.finishIfShutDown()
    }

    /// Ends `run()`'s event stream once nothing is leased or being made; events yielded before are still handled.
    private func finishIfShutDown() {
        if self.state.withLock({ $0.isShutDown }) { self.eventSink.finish() }
    }

    private static let closedError = RedisError(
        code: .poolClosed,
        message: "the Redis connection pool is shut down; create a new pool (and keep its run() running) to send commands"
    )

    private func maintenanceLoop() async {
        while !Task.isCancelled {
            let action = self.state.withLock { $0.maintenance(now: .now, isDead: { $0.isClosed }) }
            for connection in action.close { self.eventSink.yield(.close(connection)) }
            for _ in 0..<action.connect { self.eventSink.yield(.connect) }
            try? await Task.sleep(for: self.configuration.maintenanceInterval.clampedForSleeping)
        }
    }

    /// Makes one connection, retrying failed attempts with back-off. Cancelled by ``shutdown()`` (through `run()`),
    /// which ends the attempt in progress and the back-off at once, so shutting down never waits out the retries.
    private func makeConnection() async {
        var attempt = 0
        while true {
            do {
                let connection = try await RedisConnection.connect(
                    configuration: self.connectionConfiguration,
                    eventLoopGroup: self.eventLoopGroup,
                    logger: self.logger
                )
                self.lastConnectError.withLock { $0 = nil }
                switch self.state.withLock({ $0.connectionEstablished(connection, now: .now) }) {
                case .lease(let connection, let waiter): Self.handOff(connection, to: waiter)
                case .park: break
                case .close(let connection):
                    await connection.close()
                    self.finishIfShutDown()
                }
                return
            } catch {
                let redisError = error as? RedisError
                if let redisError, redisError.code != .cancelled { self.lastConnectError.withLock { $0 = redisError } }
                let retryable = redisError?.code != .authenticationFailed && redisError?.code != .invalidConfiguration
                if retryable, attempt < self.configuration.maxRetries, !self.isStopping {
                    attempt += 1
                    self.logger.debug("connect failed, retrying", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
                    try? await Task.sleep(for: self.configuration.retryDelay(attempt: attempt).clampedForSleeping)
                    if !self.isStopping { continue }
                }
                if !self.isStopping {
                    self.logger.warning("could not connect to Redis", metadata: ["error": "\(error)"])
                }
                if case .failWaiters(let waiters) = self.state.withLock({ $0.connectionFailed() }) {
                    for waiter in waiters { waiter.resume(throwing: error) }
                }
                self.finishIfShutDown()
                return
            }
        }
    }

    /// Shutting down (or cancelled): stop connecting.
    private var isStopping: Bool {
        Task.isCancelled || self.state.withLock { $0.isStopping }
    }

    // MARK: leasing

    /// Leases a connection for the duration of `body` and returns it to the pool afterwards (closed instead
    /// if it failed). Do not keep the connection beyond `body`.
    ///
    /// - Throws: ``RedisError/Code/poolTimeout`` when none becomes free within
    ///   ``RedisConnectionPoolConfiguration/acquireTimeout``, connect errors, and whatever `body` throws.
    public func withConnection<Result: Sendable>(
        _ body: (RedisConnection) async throws -> Result
    ) async throws -> Result {
        let connection = try await self.leaseConnection()
        do {
            let result = try await body(connection)
            self.release(connection)
            return result
        } catch {
            self.release(connection)
            throw error
        }
    }

    private func leaseConnection() async throws -> RedisConnection {
        let deadline = ContinuousClock.now + self.configuration.acquireTimeout.clampedForSleeping
        while true {
            if Task.isCancelled { throw RedisError.cancelled }
            // Fast path: an idle connection, taken under the lock without suspending. A caller running on an event
            // loop (a task that prefers it as its executor) gets a connection of that loop if one is idle, so the
            // command and its reply need no thread hop.
            let onEventLoop = MultiThreadedEventLoopGroup.currentEventLoop != nil
            let idle = self.state.withLock { state in
                state.leaseIdle(now: .now, preferring: onEventLoop ? { $0.eventLoop.inEventLoop } : nil)
            }
            for connection in idle.close { self.eventSink.yield(.close(connection)) }
            if let connection = idle.connection {
                if !connection.isClosed { return connection }
                self.release(connection)
                continue
            }
            let connection = try await self.waitForConnection(until: deadline)
            #if DEBUG
            ContinuationHandOff.mark()
            #endif
            if !connection.isClosed { return connection }
            self.release(connection)  // died while idle: drop it (and maybe start a replacement), then try again
        }
    }

    /// Gives `connection` to a caller waiting for one.
    private static func handOff(_ connection: RedisConnection, to waiter: Waiter) {
        #if DEBUG
        ContinuationHandOff.mark()
        #endif
        waiter.resume(returning: connection)
    }

    private func waitForConnection(until deadline: ContinuousClock.Instant) async throws -> RedisConnection {
        let id = self.waiterIDs.wrappingAdd(1, ordering: .relaxed).newValue
        let remaining = deadline - .now
        let timeout = self.configuration.acquireTimeout
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (waiter: Waiter) in
                let action = self.state.withLock { state -> StateMachine.LeaseAction? in
                    // Checked under the lock the cancellation handler takes too: either the handler ran before (the
                    // flag was set before it ran) and the caller never queues, or it runs later and finds the waiter.
                    if Task.isCancelled { return nil }
                    return state.lease(waiterID: id, waiter: waiter, now: .now)
                }
                switch action {
                case nil:
                    waiter.resume(throwing: RedisError.cancelled)
                case .lease(let connection, let expired):
                    for connection in expired { self.eventSink.yield(.close(connection)) }
                    Self.handOff(connection, to: waiter)
                case .wait(let connect, let expired):
                    for connection in expired { self.eventSink.yield(.close(connection)) }
                    if connect { self.eventSink.yield(.connect) }
                    let eventLoop = self.eventLoopGroup.any()
                    eventLoop.scheduleTask(in: TimeAmount(max(remaining, .zero))) {
                        let (waiter, saturated) = self.state.withLock { ($0.removeWaiter(id: id), $0.isSaturated) }
                        guard let waiter else { return }
                        if saturated {
                            waiter.resume(throwing: Self.exhaustedError(timeout))
                        } else if let refused = self.lastConnectError.withLock({ $0 }), refused.code == .connectFailed {
                            waiter.resume(throwing: refused)  // the server refuses connections: say so, not "timeout"
                        } else {
                            waiter.resume(throwing: Self.noConnectionError(timeout))
                        }
                    }
                case .fail:
                    waiter.resume(throwing: Self.closedError)
                }
            }
        } onCancel: {
            if let waiter = self.state.withLock({ $0.removeWaiter(id: id) }) {
                waiter.resume(throwing: RedisError.cancelled)
            }
        }
    }

    /// Every connection was leased for the whole acquire timeout: the pool is busy, the server may well be healthy.
    private static func exhaustedError(_ timeout: Duration) -> RedisError {
        RedisError(
            code: .poolTimeout,
            message: "every pooled Redis connection stayed in use for \(timeout); the server may be healthy but the pool "
                + "is too small for the load: raise maxConnections or acquireTimeout, or return connections sooner"
        )
    }

    /// The caller waited for a connection being made, and none was made in time: the server does not answer.
    private static func noConnectionError(_ timeout: Duration) -> RedisError {
        RedisError(
            code: .timeout,
            message: "no connection to Redis could be made within \(timeout) (the pool's acquire timeout); check that the "
                + "server is running and answering, and that the pool's run() is running"
        )
    }

    private func release(_ connection: RedisConnection) {
        let action = self.state.withLock { $0.release(connection, isUsable: !connection.isClosed, now: .now) }
        switch action {
        case .lease(let connection, let waiter):
            Self.handOff(connection, to: waiter)
        case .park:
            break
        case .close(let connection, let connect):
            if let connection { self.eventSink.yield(.close(connection)) }
            if connect { self.eventSink.yield(.connect) }
            self.finishIfShutDown()
        }
    }

    /// Counts for tests and metrics: idle, leased and connecting connections, and waiting callers.
    package var statistics: (idle: Int, leased: Int, connecting: Int, waiting: Int) {
        self.state.withLock { ($0.idleCount, $0.leasedCount, $0.connectingCount, $0.waiterCount) }
    }

    // MARK: commands

    /// Runs a command on a pooled connection. Idempotent commands (``RedisCommand/isIdempotent``) are retried
    /// on a fresh connection after connection failures (``RedisError/isConnectionFailure``), up to
    /// ``RedisConnectionPoolConfiguration/maxRetries`` times; never after a timeout.
    public func execute(_ command: RedisCommand) async throws -> RESPValue {
        var attempt = 0
        while true {
            do {
                return try await self.withConnection { try await $0.execute(command) }
            } catch let error as RedisError where command.isIdempotent && error.isConnectionFailure
                && attempt < self.configuration.maxRetries
            {
                attempt += 1
                self.logger.debug("retrying idempotent command", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
                do {
                    try await Task.sleep(for: self.configuration.retryDelay(attempt: attempt).clampedForSleeping)
                } catch {
                    throw RedisError.cancelled
                }
            }
        }
    }

    /// Sends the commands in one write on one pooled connection and returns every reply in order
    /// (see ``RedisConnection/pipeline(_:timeout:)``). Not retried.
    public func pipeline(
        _ commands: [RedisCommand],
        timeout: Duration? = nil
    ) async throws -> [Result<RESPValue, RedisError>] {
        try await self.withConnection { try await $0.pipeline(commands, timeout: timeout) }
    }
}
