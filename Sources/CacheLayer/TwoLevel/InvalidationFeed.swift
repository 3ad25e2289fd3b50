import CommonSupport
import Logging
import NIOCore
import RedisClient
import Synchronization

/// A connection that delivers a near cache's invalidations: the tracking connection (RESP3 pushes) or the
/// backplane's subscription (pub/sub messages).
protocol InvalidationFeedConnection: Sendable {
    associatedtype Message: Sendable
    /// What arrives; ends when the connection closes (also when its buffer would overflow).
    var feedMessages: AsyncStream<Message> { get }
    /// A `PING` that fails (and closes the connection) when not answered within `timeout`.
    func feedPing(timeout: Duration) async throws
    /// Closes and waits until closed.
    func close() async
    /// Starts closing without waiting, so that ``feedMessages`` ends.
    func closeAtOnce()
}

extension RedisConnection: InvalidationFeedConnection {
    var feedMessages: AsyncStream<RESPValue> { pushMessages }

    func feedPing(timeout: Duration) async throws {
        _ = try await execute(RedisCommand("PING"), timeout: timeout)
    }

    func closeAtOnce() {
        channel.close(mode: .all, promise: nil)
    }
}

extension RedisSubscription: InvalidationFeedConnection {
    var feedMessages: AsyncStream<RedisPubSubMessage> { messages }

    func feedPing(timeout: Duration) async throws {
        try await ping(timeout: timeout)
    }

    func closeAtOnce() {
        connection.channel.close(mode: .all, promise: nil)
    }
}

/// The life cycle both invalidation sources share (``InvalidationTracker`` and ``InvalidationBackplane``): set up a
/// dedicated connection, allow L1 fills while it lives, apply what it delivers, check it with a `PING` every interval,
/// and when it is lost (closed, unanswered `PING`, overflow) empty L1, refuse fills and set it up again with backoff
/// (10 ms doubling to 1 s) until shut down.
final class InvalidationFeed<Connection: InvalidationFeedConnection>: Sendable {
    /// What the feed is, for log messages: "Redis client tracking", "the near-cache backplane subscription".
    private let name: String
    /// Told when the connection is set up (fills allowed) and lost (L1 emptied, fills refused): the near cache
    /// itself, or with several feeds (one per cluster node) whoever combines them.
    private let setCoherent: @Sendable (Bool) -> Void
    private let pingInterval: Duration
    private let logger: Logger
    private let state = Locked(TrackerStateMachine<Connection>())
    private let establishedCount = Atomic<UInt64>(0)
    private let lastFailure = Locked<(description: String, refusedByServer: Bool)?>(nil)

    convenience init(name: String, nearCache: NearCache, pingInterval: Duration, logger: Logger) {
        self.init(name: name, setCoherent: { nearCache.setCoherent($0) }, pingInterval: pingInterval, logger: logger)
    }

    init(name: String, setCoherent: @escaping @Sendable (Bool) -> Void, pingInterval: Duration, logger: Logger) {
        self.name = name
        self.setCoherent = setCoherent
        self.pingInterval = pingInterval
        self.logger = logger
    }

    /// How many times the connection was set up (1 after the first; each reconnection adds one).
    var establishments: UInt64 { establishedCount.load(ordering: .relaxed) }

    /// The `CLIENT ID` of the connection while set up, for `CLIENT KILL ID` in tests and demos.
    var clientID: Int? { state.withLock { $0.clientID } }

    /// The connection while set up: from just before fills are allowed until it has been closed after its loss.
    var connection: Connection? { state.withLock { $0.connection } }

    /// Why the last attempt to set up failed, if it did, and whether Redis refused it rather than being unreachable.
    var failure: (description: String, refusedByServer: Bool)? { lastFailure.withLock { $0 } }

    /// Sets up a connection with `setUp` and applies its messages with `apply` until ``shutdown()`` or cancellation,
    /// setting it up again whenever it is lost.
    ///
    /// - Parameters:
    ///   - setUp: Connects and subscribes; returns the connection and its `CLIENT ID`. Closes what it opened when it
    ///     throws.
    ///   - isRefusal: Whether a setup error is Redis refusing (rather than being unreachable).
    ///   - apply: Applies one message to L1.
    func run(
        setUp: () async throws -> (connection: Connection, clientID: Int),
        isRefusal: (any Error) -> Bool,
        apply: (Connection.Message) -> Void
    ) async {
        var failures = 0
        while !Task.isCancelled {
            guard state.withLock({ $0.startConnecting() }) else { return }
            do {
                let (connection, clientID) = try await setUp()
                await session(connection, clientID: clientID, apply: apply)
                failures = 0
            } catch {
                failures += 1
                lastFailure.withLock { $0 = ("\(error)", isRefusal(error)) }
                if failures == 1 {
                    logger.warning("Could not set up \(name); the near cache is bypassed until it works", metadata: ["error": "\(error)"])
                }
            }
            guard state.withLock({ $0.disconnected() }) else { return }
            let backoff = Duration.milliseconds(min(1000, 10 << min(failures, 7)))
            guard (try? await Task.sleep(for: failures == 0 ? .milliseconds(1) : backoff)) != nil else { return }
        }
    }

    /// Ends ``run(setUp:isRefusal:apply:)`` and closes the connection.
    func shutdown() {
        state.withLock { $0.shutdown() }?.closeAtOnce()
    }

    /// One established connection's life: fills are safe while it lives; when it ends, whatever changed meanwhile was
    /// not announced, so L1 is emptied and fills refused until the next connection is set up.
    private func session(_ connection: Connection, clientID: Int, apply: (Connection.Message) -> Void) async {
        guard state.withLock({ $0.tracking(connection, clientID: clientID) }) else {
            await connection.close()
            return
        }
        setCoherent(true)
        establishedCount.add(1, ordering: .relaxed)
        lastFailure.withLock { $0 = nil }
        logger.debug("Set up \(name)", metadata: ["client-id": "\(clientID)"])
        await consume(connection, apply: apply)
        setCoherent(false)
        await connection.close()
        if !state.withLock({ $0.isShutDown }) {
            logger.warning("Lost \(name); the near cache was emptied and it is being set up again")
        }
    }

    /// Applies messages until the connection ends; a `PING` every interval closes it when not answered in time.
    private func consume(_ connection: Connection, apply: (Connection.Message) -> Void) async {
        let pingInterval = self.pingInterval
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while true {
                    do {
                        try await Task.sleep(for: pingInterval)
                        try await connection.feedPing(timeout: pingInterval)
                    } catch {
                        // A timeout has already closed the connection; anything else (cancellation) ends here too.
                        await connection.close()
                        return
                    }
                }
            }
            for await message in connection.feedMessages {
                apply(message)
            }
            group.cancelAll()
        }
    }
}

/// The life cycle of an invalidation feed's connection: idle → connecting → tracking → idle … until shut down.
struct TrackerStateMachine<Connection>: ~Copyable {
    private enum State {
        case idle
        case connecting
        case tracking(Connection, clientID: Int)
        case shutDown
    }

    private var state: State = .idle

    /// The client id while tracking.
    var clientID: Int? {
        if case .tracking(_, let id) = state { return id }
        return nil
    }

    /// The connection while tracking.
    var connection: Connection? {
        if case .tracking(let connection, _) = state { return connection }
        return nil
    }

    var isShutDown: Bool {
        if case .shutDown = state { return true }
        return false
    }

    /// Moves to `next` and returns true, unless shut down (which is final).
    private mutating func moveUnlessShutDown(to next: State) -> Bool {
        if case .shutDown = state { return false }
        state = next
        return true
    }

    /// A connection attempt starts; false when shut down.
    mutating func startConnecting() -> Bool {
        moveUnlessShutDown(to: .connecting)
    }

    /// The connection is set up; false when shut down meanwhile (the caller closes it).
    mutating func tracking(_ connection: Connection, clientID: Int) -> Bool {
        moveUnlessShutDown(to: .tracking(connection, clientID: clientID))
    }

    /// The attempt or connection ended; false when shut down.
    mutating func disconnected() -> Bool {
        moveUnlessShutDown(to: .idle)
    }

    /// Shuts down; returns the connection to close, if tracking.
    mutating func shutdown() -> Connection? {
        defer { state = .shutDown }
        if case .tracking(let connection, _) = state { return connection }
        return nil
    }
}
