import DequeModule

/// The bookkeeping of a connection pool, free of I/O and clocks so it can be tested without a server.
///
/// Connections are `idle` (parked, newest last), `leased`, or being made (`connecting`). Waiters queue
/// FIFO when no connection is free. Each event returns what the pool must do: hand a connection to a
/// waiter, start making a connection, close connections, or fail waiters.
///
/// Life cycle: `running` → `shuttingDown` (no new leases; returned and new connections are closed)
/// → `shutDown` once nothing is leased or connecting.
package struct RedisPoolStateMachine<Connection: AnyObject, Waiter> {
    package typealias Instant = ContinuousClock.Instant

    package struct Limits: Sendable {
        package var maxConnections: Int
        package var minIdleConnections: Int
        package var maxIdleConnections: Int
        package var maxConnectionLifetime: Duration?

        package init(maxConnections: Int, minIdleConnections: Int, maxIdleConnections: Int, maxConnectionLifetime: Duration?) {
            self.maxConnections = max(1, maxConnections)
            self.minIdleConnections = min(max(0, minIdleConnections), self.maxConnections)
            self.maxIdleConnections = max(self.minIdleConnections, maxIdleConnections)
            self.maxConnectionLifetime = maxConnectionLifetime
        }
    }

    private struct Idle {
        var connection: Connection
        var createdAt: Instant
    }

    private enum State {
        case running
        case shuttingDown
        case shutDown
    }

    private let limits: Limits
    private var state: State = .running
    private var idle: Deque<Idle> = []
    private var leased: [ObjectIdentifier: Instant] = [:]
    private var connecting = 0
    private var waiters: Deque<(id: UInt64, waiter: Waiter)> = []

    package init(limits: Limits) {
        self.limits = limits
    }

    package var idleCount: Int { self.idle.count }
    package var leasedCount: Int { self.leased.count }
    package var connectingCount: Int { self.connecting }
    package var waiterCount: Int { self.waiters.count }
    package var isShutDown: Bool { if case .shutDown = self.state { return true } else { return false } }
    /// Whether the pool is shutting down or shut down: connect attempts should stop, not retry.
    package var isStopping: Bool { if case .running = self.state { return false } else { return true } }
    /// Whether every connection the pool may have is leased: a caller waiting now waits for a busy pool, not for a
    /// connection being made.
    package var isSaturated: Bool { self.leased.count >= self.limits.maxConnections }
    private var total: Int { self.idle.count + self.leased.count + self.connecting }

    private func isExpired(_ createdAt: Instant, now: Instant) -> Bool {
        guard let lifetime = self.limits.maxConnectionLifetime else { return false }
        return now - createdAt >= lifetime
    }

    // MARK: leasing

    package enum LeaseAction {
        /// Give the connection to the caller; close `expired` idle connections found on the way.
        case lease(Connection, close: [Connection])
        /// The caller waits; start making a connection when `connect` is set; close `expired`.
        case wait(connect: Bool, close: [Connection])
        /// The pool is shut down.
        case fail
    }

    package mutating func lease(waiterID: UInt64, waiter: Waiter, now: Instant) -> LeaseAction {
        guard case .running = self.state else { return .fail }
        var expired: [Connection] = []
        if let connection = self.leaseNewestIdle(now: now, expired: &expired) {
            return .lease(connection, close: expired)
        }
        self.waiters.append((waiterID, waiter))
        return .wait(connect: self.startConnectingIfNeeded(), close: expired)
    }

    /// How many of the newest idle connections ``leaseIdle(now:preferring:)`` looks at for a preferred one.
    private static var preferenceScan: Int { 16 }

    /// Leases an idle connection if there is one, without queueing a waiter: the pool's fast path, which needs no
    /// continuation. Expired idle connections met on the way are returned to be closed.
    ///
    /// With `preferring`, one of the newest idle connections it accepts is taken first (the pool prefers one on the
    /// caller's event loop); otherwise the newest.
    package mutating func leaseIdle(
        now: Instant,
        preferring prefers: ((Connection) -> Bool)? = nil
    ) -> (connection: Connection?, close: [Connection]) {
        guard case .running = self.state, self.waiters.isEmpty else { return (nil, []) }
        if let prefers, !self.idle.isEmpty {
            var index = self.idle.count - 1
            let lowest = max(0, self.idle.count - Self.preferenceScan)
            while index >= lowest {
                let candidate = self.idle[index]
                if !self.isExpired(candidate.createdAt, now: now), prefers(candidate.connection) {
                    self.idle.remove(at: index)
                    self.leased[ObjectIdentifier(candidate.connection)] = candidate.createdAt
                    return (candidate.connection, [])
                }
                index -= 1
            }
        }
        var expired: [Connection] = []
        let connection = self.leaseNewestIdle(now: now, expired: &expired)
        return (connection, expired)
    }

    /// Marks the most recently returned idle connection that is not past its lifetime as leased; the expired ones
    /// popped on the way are added to `expired`, for the caller to close.
    private mutating func leaseNewestIdle(now: Instant, expired: inout [Connection]) -> Connection? {
        while let candidate = self.idle.popLast() {
            if self.isExpired(candidate.createdAt, now: now) {
                expired.append(candidate.connection)
                continue
            }
            self.leased[ObjectIdentifier(candidate.connection)] = candidate.createdAt
            return candidate.connection
        }
        return nil
    }

    /// Starts a connection when waiters outnumber the connections being made and there is room.
    private mutating func startConnectingIfNeeded() -> Bool {
        guard case .running = self.state, self.waiters.count > self.connecting, self.total < self.limits.maxConnections
        else { return false }
        self.connecting += 1
        return true
    }

    /// The waiter gave up (timeout or cancellation); returns it so the caller can fail it, or `nil` if it was served.
    package mutating func removeWaiter(id: UInt64) -> Waiter? {
        guard let index = self.waiters.firstIndex(where: { $0.id == id }) else { return nil }
        return self.waiters.remove(at: index).waiter
    }

    // MARK: connections made

    package enum ConnectedAction {
        case lease(Connection, to: Waiter)
        case park
        case close(Connection)
    }

    package mutating func connectionEstablished(_ connection: Connection, now: Instant) -> ConnectedAction {
        self.connecting -= 1
        guard case .running = self.state else {
            self.finishShutdownIfDone()
            return .close(connection)
        }
        if let next = self.waiters.popFirst() {
            self.leased[ObjectIdentifier(connection)] = now
            return .lease(connection, to: next.waiter)
        }
        self.idle.append(Idle(connection: connection, createdAt: now))
        return .park
    }

    package enum ConnectFailedAction {
        /// Fail these waiters with the connect error (no connection is on its way for them).
        case failWaiters([Waiter])
        /// Try again (a fresh attempt counts as connecting again).
        case none
    }

    /// Making a connection failed after all retries: nothing will serve the waiters soon, so they fail fast.
    package mutating func connectionFailed() -> ConnectFailedAction {
        self.connecting -= 1
        guard case .running = self.state else {
            self.finishShutdownIfDone()
            return .none
        }
        guard self.connecting == 0 else { return .none }
        let failed = self.waiters.map(\.waiter)
        self.waiters.removeAll()
        return .failWaiters(failed)
    }

    // MARK: returning connections

    package enum ReleaseAction {
        case lease(Connection, to: Waiter)
        case park
        /// Close the connection; start a replacement when `connect` is set.
        case close(Connection?, connect: Bool)
    }

    /// A leased connection comes back. `isUsable` is false when it is closed or was poisoned.
    package mutating func release(_ connection: Connection, isUsable: Bool, now: Instant) -> ReleaseAction {
        guard let createdAt = self.leased.removeValue(forKey: ObjectIdentifier(connection)) else {
            return .close(connection, connect: false)  // not ours (or already forgotten): just close it
        }
        guard case .running = self.state else {
            self.finishShutdownIfDone()
            return .close(connection, connect: false)
        }
        guard isUsable, !self.isExpired(createdAt, now: now) else {
            return .close(connection, connect: self.startConnectingIfNeeded() || self.startWarmingIfNeeded())
        }
        if let next = self.waiters.popFirst() {
            self.leased[ObjectIdentifier(connection)] = createdAt
            return .lease(connection, to: next.waiter)
        }
        if self.idle.count >= self.limits.maxIdleConnections {
            return .close(connection, connect: false)
        }
        self.idle.append(Idle(connection: connection, createdAt: createdAt))
        return .park
    }

    private mutating func startWarmingIfNeeded() -> Bool {
        guard case .running = self.state, self.idle.count + self.connecting < self.limits.minIdleConnections,
            self.total < self.limits.maxConnections
        else { return false }
        self.connecting += 1
        return true
    }

    // MARK: maintenance

    package struct MaintenanceAction {
        package var close: [Connection] = []
        package var connect = 0
    }

    /// Periodic upkeep: drop idle connections that died (`isDead`) or outlived their lifetime, and start
    /// connections until `minIdleConnections` are idle or on their way.
    package mutating func maintenance(now: Instant, isDead: (Connection) -> Bool) -> MaintenanceAction {
        var action = MaintenanceAction()
        guard case .running = self.state else { return action }
        var kept: Deque<Idle> = []
        for entry in self.idle {
            if isDead(entry.connection) || self.isExpired(entry.createdAt, now: now) {
                action.close.append(entry.connection)
            } else {
                kept.append(entry)
            }
        }
        self.idle = kept
        while self.startWarmingIfNeeded() { action.connect += 1 }
        while self.startConnectingIfNeeded() { action.connect += 1 }
        return action
    }

    // MARK: shutdown

    package struct ShutdownAction {
        package var failWaiters: [Waiter]
        package var close: [Connection]
    }

    package mutating func shutdown() -> ShutdownAction {
        guard case .running = self.state else { return ShutdownAction(failWaiters: [], close: []) }
        self.state = .shuttingDown
        let action = ShutdownAction(failWaiters: self.waiters.map(\.waiter), close: self.idle.map(\.connection))
        self.waiters.removeAll()
        self.idle.removeAll()
        self.finishShutdownIfDone()
        return action
    }

    private mutating func finishShutdownIfDone() {
        if case .shuttingDown = self.state, self.leased.isEmpty, self.connecting == 0 {
            self.state = .shutDown
        }
    }
}
