import CommonSupport
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Pub/sub on a connection of its own: `SUBSCRIBE` to channels and read the messages published on them.
///
/// ```swift
/// let subscription = try await RedisSubscription.connect(configuration: .init(host: "127.0.0.1", port: 6379))
/// try await subscription.subscribe(to: ["news"])
/// Task { try await pool.publish("news", message: "hello") }
/// for await message in subscription.messages {
///     print(message.channel, message.text)
/// }
/// ```
///
/// A subscribed connection can run no ordinary commands (in RESP2 the server refuses them; their replies would be
/// mixed with messages), which is why the subscription owns its connection and ``RedisConnection/execute(_:)``
/// refuses `SUBSCRIBE` with ``RedisError/Code/unsupportedCommand``. Works with RESP3 (messages are pushes) and RESP2
/// (servers without `HELLO 3`, or ``RedisConnectionConfiguration/protocolVersion`` `.resp2`: messages are arrays).
///
/// ``messages`` ends when the connection closes (``close()``, the server, the network, `CLIENT KILL`). It holds at
/// most ``RedisConnectionConfiguration/pushBufferCapacity`` unread messages; one more closes the connection and ends
/// the stream after the buffered ones, so a reader never misses a message without seeing the stream end. Pub/sub is
/// at most once: a message published while the connection is down is lost, so a reader that needs every message
/// must treat the end of the stream as "something may have been missed" and subscribe again on a new connection.
public final class RedisSubscription: Sendable {
    /// The messages published on the subscribed channels, in order; finishes when the connection closes.
    public let messages: AsyncStream<RedisPubSubMessage>
    /// The dedicated connection.
    package let connection: RedisConnection
    private let state = Locked(RedisSubscriptionStateMachine<CheckedContinuation<Void, any Error>>())
    private let requestIDs = Atomic<UInt64>(0)
    private let reader: Task<Void, Never>

    /// Opens a dedicated connection for a subscription (see ``RedisConnection/connect(configuration:eventLoopGroup:logger:)``).
    ///
    /// - Throws: ``RedisError`` with code `connectFailed`, `timeout`, `tls` or `authenticationFailed`.
    public static func connect(
        configuration: RedisConnectionConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "RedisClient", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> RedisSubscription {
        let connection = try await RedisConnection.connect(
            configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger
        )
        return try RedisSubscription(connection: connection)
    }

    /// Makes `connection` a subscription's; it must not be used for anything else afterwards.
    package init(connection: RedisConnection) throws {
        guard connection.claimForSubscription() else {
            throw RedisError(
                code: .invalidConfiguration,
                message: "this connection already belongs to a subscription; subscribe to more channels on it, or open another connection"
            )
        }
        self.connection = connection
        let (messages, continuation) = AsyncStream<RedisPubSubMessage>.makeStream(
            bufferingPolicy: .bufferingOldest(max(1, connection.configuration.pushBufferCapacity))
        )
        self.messages = messages
        let state = self.state
        self.reader = Task {
            for await push in connection.pushMessages {
                switch state.withLock({ $0.received(push) }) {
                case .none:
                    break
                case .deliver(let message):
                    if case .dropped = continuation.yield(message) {
                        // Never lose a message silently: end the stream and the connection; the reader sees the end.
                        continuation.finish()
                        connection.channel.close(promise: nil)
                    }
                case .resume(let waiters):
                    for waiter in waiters { waiter.resume() }
                case .fail(let waiter, let error):
                    waiter.resume(throwing: error)
                }
            }
            let error = RedisError.connectionClosed("the subscription's connection closed")
            for waiter in state.withLock({ $0.close(error: error) }) { waiter.resume(throwing: error) }
            continuation.finish()
        }
    }

    deinit {
        if !self.connection.isClosed { self.connection.channel.close(promise: nil) }
    }

    /// The channels the server confirmed this subscription listens to.
    public var channels: Set<String> { self.state.withLock { $0.channels } }

    /// `true` once the connection is closed; ``messages`` then ends after the buffered messages.
    public var isClosed: Bool { self.connection.isClosed }

    /// `SUBSCRIBE channel…`: returns once the server confirmed every channel. Messages published on them from then on
    /// arrive on ``messages``.
    ///
    /// - Throws: ``RedisError/Code/invalidConfiguration`` for an empty list; ``RedisError/Code/serverError`` when the
    ///   server refuses it (`NOPERM`: the ACL user may not use the channel); ``RedisError/Code/connectionClosed``
    ///   when the connection is closed; ``RedisError/Code/timeout`` when the confirmations did not arrive within
    ///   ``RedisConnectionConfiguration/commandTimeout`` (the connection is then closed);
    ///   ``RedisError/Code/cancelled`` when the task is cancelled (the subscription may still take effect).
    public func subscribe(to channels: [String]) async throws {
        try await self.request(.subscribe, channels)
    }

    /// `UNSUBSCRIBE channel…`: returns once the server confirmed every channel; no message of them arrives afterwards.
    ///
    /// - Throws: As ``subscribe(to:)``.
    public func unsubscribe(from channels: [String]) async throws {
        try await self.request(.unsubscribe, channels)
    }

    /// `PING` on the subscription's connection (allowed while subscribed): checks that it is alive.
    ///
    /// - Throws: ``RedisError/Code/timeout`` after `timeout` (the connection is then closed), or a connection error.
    public func ping(timeout: Duration? = nil) async throws {
        _ = try await self.connection.execute(
            RedisCommand("PING"), timeout: timeout ?? self.connection.configuration.commandTimeout
        )
    }

    /// Closes the connection; ``messages`` ends and waiting calls fail. Safe to call twice.
    public func close() async {
        await self.connection.close()
        await self.reader.value
    }

    private func request(_ kind: RedisSubscriptionStateMachine<CheckedContinuation<Void, any Error>>.RequestKind, _ channels: [String]) async throws {
        var seen = Set<String>()
        let distinct = channels.filter { seen.insert($0).inserted }
        guard !distinct.isEmpty else {
            throw RedisError(code: .invalidConfiguration, message: "no channel given; pass at least one channel name")
        }
        let command = RedisCommand([kind == .subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE"] + distinct)
        let id = self.requestIDs.wrappingAdd(1, ordering: .relaxed).newValue
        let state = self.state
        let connection = self.connection
        let abandon: @Sendable (RedisError, _ closing: Bool) -> Void = { error, closing in
            if closing { connection.channel.close(promise: nil) }
            state.withLock { $0.cancel(id: id) }?.resume(throwing: error)
        }
        let timeout = connection.configuration.commandTimeout
        let timer = timeout.map { timeout in
            Task {
                guard (try? await Task.sleep(for: timeout.clampedForSleeping)) != nil else { return }
                // Confirmations overdue: the connection is not trustworthy any more.
                abandon(.timeout(timeout), true)
            }
        }
        defer { timer?.cancel() }
        if Task.isCancelled { throw RedisError.cancelled }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                switch state.withLock({ $0.request(kind, channels: seen, id: id, waiter: continuation) }) {
                case .fail(let waiter, let error):
                    waiter.resume(throwing: error)
                case .send:
                    // Registered before the write, so no confirmation can arrive unclaimed.
                    connection.sendUnanswered(command) { error in abandon(error, false) }
                }
            }
        } onCancel: {
            abandon(.cancelled, false)
        }
    }
}

extension RedisConnection {
    /// Makes this connection a subscription and subscribes to `channels`: use it for nothing else afterwards.
    ///
    /// - Throws: As ``RedisSubscription/subscribe(to:)``; ``RedisError/Code/invalidConfiguration`` when this
    ///   connection already belongs to a subscription.
    public func subscribe(to channels: [String]) async throws -> RedisSubscription {
        let subscription = try RedisSubscription(connection: self)
        try await subscription.subscribe(to: channels)
        return subscription
    }
}
