import CommonSupport
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// One connection to a Redis server, with pipelining: any number of commands may be in flight at once,
/// from any number of tasks; replies are matched to commands in order.
///
/// ```swift
/// let connection = try await RedisConnection.connect(configuration: .init(host: "127.0.0.1", port: 6379))
/// try await connection.set("greeting", value: "hello")
/// let value = try await connection.getString("greeting")
/// await connection.close()
/// ```
///
/// A command that times out or whose task is cancelled closes the connection (its replies can no
/// longer be matched) and fails every other command in flight with ``RedisError/Code/connectionClosed``.
/// Close the connection with ``close()`` when done; a ``RedisConnectionPool`` does that for you.
public final class RedisConnection: RedisCommandExecutor {
    /// The configuration the connection was made with.
    public let configuration: RedisConnectionConfiguration
    /// RESP3 push messages (pub/sub messages, client-side caching invalidations, …). Finishes when the
    /// connection closes.
    ///
    /// Holds at most ``RedisConnectionConfiguration/pushBufferCapacity`` unread messages. A message is never
    /// dropped silently: when one more arrives, the connection is closed, so the stream ends (after the buffered
    /// messages) and its reader knows it may have missed some — a client-side cache must then empty itself.
    public let pushMessages: AsyncStream<RESPValue>
    /// The underlying NIO channel.
    package let channel: any Channel
    private let handler: NIOLoopBound<RedisChannelHandler>
    private let health: RedisConnectionHealth
    private let requestIDs = Atomic<UInt64>(0)
    /// Requests of ``executeToReply(_:timeout:beforeSending:)`` not yet handed to the event loop.
    private let outbox = Locked<[OutboxRequest]>([])
    private let negotiatedProtocol = Atomic<Int>(2)
    /// Set once a ``RedisSubscription`` reads ``pushMessages`` (an `AsyncStream` has one reader).
    private let subscriptionClaimed = Atomic<Bool>(false)
    private let logger: Logger

    private init(
        channel: any Channel,
        handler: NIOLoopBound<RedisChannelHandler>,
        health: RedisConnectionHealth,
        pushMessages: AsyncStream<RESPValue>,
        configuration: RedisConnectionConfiguration,
        logger: Logger
    ) {
        self.channel = channel
        self.handler = handler
        self.health = health
        self.pushMessages = pushMessages
        self.configuration = configuration
        self.logger = logger
    }

    /// The RESP version in use: 3 after a successful `HELLO 3`, else 2.
    public var protocolVersion: Int { self.negotiatedProtocol.load(ordering: .relaxed) }

    /// The event loop the connection's I/O runs on; see ``EventLoopTaskExecutor`` to run a task there.
    public var eventLoop: any EventLoop { self.channel.eventLoop }

    /// `true` once the connection is closed (by either side) or poisoned by a timeout, a cancellation or a protocol
    /// error, even while the channel still winds down (TLS waits a while for the peer's close_notify).
    public var isClosed: Bool { self.health.isPoisoned || !self.channel.isActive }

    /// Opens a connection and logs in: `HELLO 3` with `AUTH` and `SETNAME` (or, for servers that refuse
    /// `HELLO`, RESP2 `AUTH` and `CLIENT SETNAME`), then `SELECT` when the database is not 0.
    ///
    /// - Throws: ``RedisError`` with code `connectFailed`, `timeout`, `tls` or `authenticationFailed`.
    public static func connect(
        configuration: RedisConnectionConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "RedisClient", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> RedisConnection {
        let eventLoop = eventLoopGroup.any()
        let (pushMessages, pushContinuation) = AsyncStream<RESPValue>.makeStream(
            bufferingPolicy: .bufferingNewest(max(1, configuration.pushBufferCapacity))
        )
        let tls = configuration.tls
        let host = configuration.host
        let maxBulkLength = configuration.maxBulkLength
        let maxAggregateCount = configuration.maxAggregateCount
        let maxNestingDepth = configuration.maxNestingDepth
        let health = RedisConnectionHealth()
        // Made up front so a channel that fails at once (TLS) still hands us the handler that saw why.
        let handler = try await eventLoop.submit {
            NIOLoopBound(
                RedisChannelHandler(
                    eventLoop: eventLoop,
                    maxBulkLength: maxBulkLength,
                    maxNestingDepth: maxNestingDepth,
                    maxAggregateCount: maxAggregateCount,
                    pushContinuation: pushContinuation,
                    health: health
                ),
                eventLoop: eventLoop
            )
        }.get()
        let bootstrap = ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .connectTimeout(TimeAmount(configuration.connectTimeout.clampedForSleeping))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls {
                        let name = tls.serverName ?? (Self.isIPAddress(host) ? nil : host)
                        try sync.addHandler(NIOSSLClientHandler(context: tls.context, serverHostname: name))
                    }
                    try sync.addHandler(handler.value)
                }
            }
        let channel: any Channel
        do {
            channel = try await Self.cancellable(bootstrap.connect(host: configuration.host, port: configuration.port))
        } catch let error as RedisError where error.code == .cancelled {
            pushContinuation.finish()
            throw error
        } catch {
            pushContinuation.finish()
            throw RedisError(
                code: .connectFailed,
                message: "could not connect to Redis at \(configuration.host):\(configuration.port): \(error); "
                    + "check that the server is running and reachable, and the host and port",
                underlying: error
            )
        }
        let connection = RedisConnection(
            channel: channel,
            handler: handler,
            health: health,
            pushMessages: pushMessages,
            configuration: configuration,
            logger: logger
        )
        do {
            try await connection.handshake()
        } catch {
            await connection.close()
            throw error
        }
        return connection
    }

    /// Waits for the TCP (and TLS) connect; a cancellation ends the wait at once and closes the channel if it
    /// still comes up.
    private static func cancellable(_ connect: EventLoopFuture<any Channel>) async throws -> any Channel {
        let result = connect.eventLoop.makePromise(of: (any Channel).self)
        connect.cascade(to: result)
        return try await withTaskCancellationHandler {
            try await result.futureResult.get()
        } onCancel: {
            // Whichever completes `result` first wins; a later completion is ignored.
            result.fail(RedisError.cancelled)
            connect.whenSuccess { $0.close(promise: nil) }
        }
    }

    private static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }

    private func handshake() async throws {
        let c = self.configuration
        let timeout = c.connectTimeout
        if c.protocolVersion == .resp3 {
            var args = ["HELLO", "3"]
            if let password = c.password { args += ["AUTH", c.username ?? "default", password] }
            if let name = c.clientName { args += ["SETNAME", name] }
            let reply = try await self.rawSend(RedisCommand(args).encoded, timeout: timeout)
            if let text = Self.errorText(reply) {
                if text.hasPrefix("NOPROTO") || text.lowercased().contains("unknown command") {
                    self.logger.debug("server refused HELLO; falling back to RESP2", metadata: ["reply": "\(text)"])
                    try await self.resp2Login()
                } else if Self.isAuthError(text) {
                    throw Self.authError(text)
                } else {
                    throw RedisError.server(text)
                }
            } else {
                self.negotiatedProtocol.store(3, ordering: .relaxed)
            }
        } else {
            try await self.resp2Login()
        }
        if c.database != 0 {
            let reply = try await self.rawSend(RedisCommand("SELECT", c.database).encoded, timeout: timeout)
            if let text = Self.errorText(reply) {
                if Self.isAuthError(text) { throw Self.authError(text) }
                throw RedisError(
                    code: .invalidConfiguration,
                    message: "SELECT \(c.database) failed: \(text); use a database number below the server's `databases` setting",
                    serverCode: String(text.prefix { $0 != " " })
                )
            }
        }
        if c.readOnly {
            let reply = try await self.rawSend(RedisCommand("READONLY").encoded, timeout: timeout)
            if let text = Self.errorText(reply) { throw RedisError.server(text) }
        }
    }

    private func resp2Login() async throws {
        let c = self.configuration
        if let password = c.password {
            let command = c.username.map { RedisCommand("AUTH", $0, password) } ?? RedisCommand("AUTH", password)
            let reply = try await self.rawSend(command.encoded, timeout: c.connectTimeout)
            if let text = Self.errorText(reply) { throw Self.authError(text) }
        }
        if let name = c.clientName {
            let reply = try await self.rawSend(RedisCommand("CLIENT", "SETNAME", name).encoded, timeout: c.connectTimeout)
            if let text = Self.errorText(reply) { throw RedisError.server(text) }
        }
    }

    private static func errorText(_ value: RESPValue) -> String? {
        // Checked on every reply: a switch on the value itself, so a reply that is not an error costs no copy.
        switch value {
        case .simpleError(let b), .bulkError(let b): return String(buffer: b)
        case .attribute(_, let inner): return Self.errorText(inner)
        default: return nil
        }
    }

    private static func isAuthError(_ text: String) -> Bool {
        text.hasPrefix("WRONGPASS") || text.hasPrefix("NOAUTH") || text.lowercased().contains("invalid password")
            || text.lowercased().contains("invalid username-password")
    }

    private static func authError(_ text: String) -> RedisError {
        RedisError(
            code: .authenticationFailed,
            message: "Redis refused the credentials: \(text); check the user name and password (requirepass / ACL)",
            serverCode: String(text.prefix { $0 != " " })
        )
    }

    /// Closes the connection; commands in flight fail with ``RedisError/Code/connectionClosed``. Safe to call twice.
    public func close() async {
        try? await self.channel.close()
        try? await self.channel.closeFuture.get()
    }

    /// The number of commands sent and not yet answered.
    package func inFlightCount() async throws -> Int {
        let handler = self.handler
        return try await self.channel.eventLoop.submit { handler.value.inFlightCount }.get()
    }

    // MARK: sending

    /// Sends one command and returns its reply; an error reply is thrown as ``RedisError/Code/serverError``.
    ///
    /// - Parameters:
    ///   - command: The command to send.
    ///   - timeout: Overrides ``RedisConnectionConfiguration/commandTimeout`` for this command.
    public func execute(_ command: RedisCommand, timeout: Duration?) async throws -> RESPValue {
        if let name = command.subscriberModeName { throw RedisError.subscriberModeCommand(name) }
        let reply = try await self.rawSend(command.encoded, timeout: timeout)
        if let text = Self.errorText(reply) { throw RedisError.server(text) }
        return reply
    }

    /// Sends one command with the configured command timeout; an error reply is thrown.
    public func execute(_ command: RedisCommand) async throws -> RESPValue {
        try await self.execute(command, timeout: self.configuration.commandTimeout)
    }

    /// Sends all commands in one write and returns every reply in order; an error reply of one command
    /// is that command's `.failure` and does not affect the others. Throws only when the connection fails.
    public func pipeline(
        _ commands: [RedisCommand],
        timeout: Duration? = nil
    ) async throws -> [Result<RESPValue, RedisError>] {
        if let name = commands.lazy.compactMap(\.subscriberModeName).first { throw RedisError.subscriberModeCommand(name) }
        return try await self.rawPipeline(commands, timeout: timeout ?? self.configuration.commandTimeout).map { reply in
            if let text = Self.errorText(reply) { return .failure(.server(text)) }
            return .success(reply)
        }
    }

    /// Sends commands in one write; returns raw replies (error replies included as values).
    package func rawPipeline(_ commands: [RedisCommand], timeout: Duration?) async throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        var size = 0
        for command in commands { size += command.encoded.readableBytes }
        var bytes = self.channel.allocator.buffer(capacity: size)
        for command in commands { bytes.writeImmutableBuffer(command.encoded) }
        return try await self.submit(bytes, timeout: timeout, batchSize: commands.count) { .batch($0) }
    }

    /// Sends encoded bytes of one command; returns the raw reply (error replies included).
    package func rawSend(_ bytes: ByteBuffer, timeout: Duration?) async throws -> RESPValue {
        try await self.submit(bytes, timeout: timeout, batchSize: nil) { .single($0) }
    }

    /// Sends one command that, once it reached the event loop, runs to its reply (or its timeout, or the
    /// connection's loss) whatever happens to the calling task: unlike ``execute(_:timeout:)``, its cancellation
    /// does not close the connection. `beforeSending` runs on the event loop just before the command is handed to
    /// the channel, so the order of its calls is the order in which this connection sends the commands (and Redis
    /// runs them). An error reply is thrown as ``RedisError/Code/serverError``.
    ///
    /// Commands sent this way from several tasks at once share one hop to the event loop and one flush (one socket
    /// write, which Redis reads at once): they wait in an outbox that the first of them schedules to be written.
    package func executeToReply(
        _ command: RedisCommand,
        timeout: Duration?,
        beforeSending: @escaping @Sendable () -> Void
    ) async throws -> RESPValue {
        if let name = command.subscriberModeName { throw RedisError.subscriberModeCommand(name) }
        let id = self.requestIDs.wrappingAdd(1, ordering: .relaxed).newValue
        let bytes = command.encoded
        let reply = try await Self.withReplyContinuation { (continuation: RedisReplyContinuation<RESPValue>) in
            let request = OutboxRequest(bytes: bytes, id: id, timeout: timeout, beforeSending: beforeSending, continuation: continuation)
            let schedules = self.outbox.withLock { outbox -> Bool in
                outbox.append(request)
                return outbox.count == 1
            }
            guard schedules else { return }
            if self.channel.eventLoop.inEventLoop {
                self.sendOutbox()
            } else {
                self.channel.eventLoop.execute { self.sendOutbox() }
            }
        }
        if let text = Self.errorText(reply) { throw RedisError.server(text) }
        return reply
    }

    /// On the event loop: sends every request of the outbox, in the order they were put there, with one flush.
    private func sendOutbox() {
        let requests = self.outbox.withLock { outbox -> [OutboxRequest] in
            let requests = outbox
            outbox.removeAll(keepingCapacity: true)
            return requests
        }
        let handler = self.handler.value
        for request in requests {
            request.beforeSending()
            handler.send(
                request.bytes, id: request.id, timeout: request.timeout, batchSize: nil, flushes: false,
                promise: .single(request.continuation)
            )
        }
        handler.flush()
    }

    /// The one send path of a command or a pipeline: registers the request with the channel handler on the
    /// event loop (directly when already on it), and cancels it when the calling task is cancelled, before or
    /// after it reached the event loop.
    @inline(__always)
    private func submit<Reply>(
        _ bytes: ByteBuffer,
        timeout: Duration?,
        batchSize: Int?,
        promise: @escaping (RedisReplyContinuation<Reply>) -> RedisReplyPromise
    ) async throws -> Reply {
        let id = self.requestIDs.wrappingAdd(1, ordering: .relaxed).newValue
        let handler = self.handler
        let eventLoop = self.channel.eventLoop
        try Self.checkCancellation()
        let cancellation = RedisRequestCancellation()
        return try await withTaskCancellationHandler {
            try await Self.withReplyContinuation { (continuation: RedisReplyContinuation<Reply>) in
                let request = promise(continuation)
                if eventLoop.inEventLoop {
                    handler.value.send(bytes, id: id, timeout: timeout, batchSize: batchSize, cancellation: cancellation, promise: request)
                } else {
                    eventLoop.execute {
                        handler.value.send(bytes, id: id, timeout: timeout, batchSize: batchSize, cancellation: cancellation, promise: request)
                    }
                }
            }
        } onCancel: {
            Self.cancel(id: id, cancellation, handler: handler, eventLoop: eventLoop)
        }
    }

    /// A caller's cancellation: flag the request first (it may not have reached the event loop yet, and then fails
    /// there without being sent), then cancel it on the event loop (if it is already in flight).
    private static func cancel(
        id: UInt64,
        _ cancellation: RedisRequestCancellation,
        handler: NIOLoopBound<RedisChannelHandler>,
        eventLoop: any EventLoop
    ) {
        cancellation.cancel()
        eventLoop.execute { handler.value.cancel(id: id) }
    }

    /// A checked continuation in debug builds, an unsafe one in release builds; see ``RedisReplyContinuation``.
    @inline(__always)
    private static func withReplyContinuation<Reply>(
        _ body: (RedisReplyContinuation<Reply>) -> Void
    ) async throws -> Reply {
        #if DEBUG
        defer { ContinuationHandOff.mark() }
        return try await withCheckedThrowingContinuation(body)
        #else
        try await withUnsafeThrowingContinuation(body)
        #endif
    }

    private static func checkCancellation() throws {
        if Task.isCancelled { throw RedisError.cancelled }
    }

    // MARK: subscriber mode

    /// Hands ``pushMessages`` to a subscription; false when one already has it.
    package func claimForSubscription() -> Bool {
        !self.subscriptionClaimed.exchange(true, ordering: .acquiringAndReleasing)
    }

    /// Writes a command that gets no reply of its own (`SUBSCRIBE`, `UNSUBSCRIBE`) and puts the connection in
    /// subscriber mode; its confirmations arrive on ``pushMessages``. `onFailure` runs when it could not be written
    /// (the connection is closed). Does not wait, so a caller can register for the confirmations first.
    package func sendUnanswered(_ command: RedisCommand, onFailure: @escaping @Sendable (RedisError) -> Void) {
        let handler = self.handler
        let bytes = command.encoded
        self.channel.eventLoop.execute {
            if let error = handler.value.sendUnanswered(bytes) { onFailure(error) }
        }
    }

    // MARK: connection-state commands (not on the pool: they change the connection)

    /// `SELECT db`: switches this connection's database.
    public func select(database: Int) async throws {
        _ = try await self.execute(RedisCommand("SELECT", database))
    }

    /// `CLIENT SETNAME name`.
    public func clientSetName(_ name: String) async throws {
        _ = try await self.execute(RedisCommand("CLIENT", "SETNAME", name))
    }

    /// `AUTH [username] password`; a refusal throws ``RedisError/Code/authenticationFailed``.
    public func auth(username: String? = nil, password: String) async throws {
        let command = username.map { RedisCommand("AUTH", $0, password) } ?? RedisCommand("AUTH", password)
        let reply = try await self.rawSend(command.encoded, timeout: self.configuration.commandTimeout)
        if let text = Self.errorText(reply) { throw Self.authError(text) }
    }

    /// `HELLO protover`: returns the server's description map. Switching the protocol on a live connection
    /// changes how replies are shaped; prefer ``RedisConnectionConfiguration/protocolVersion``.
    public func hello(protocolVersion: Int = 3) async throws -> RESPValue {
        let reply = try await self.execute(RedisCommand("HELLO", protocolVersion))
        self.negotiatedProtocol.store(protocolVersion, ordering: .relaxed)
        return reply
    }
}

/// A request of ``RedisConnection/executeToReply(_:timeout:beforeSending:)`` waiting in the connection's outbox.
private struct OutboxRequest: Sendable {
    let bytes: ByteBuffer
    let id: UInt64
    let timeout: Duration?
    let beforeSending: @Sendable () -> Void
    let continuation: RedisReplyContinuation<RESPValue>
}
