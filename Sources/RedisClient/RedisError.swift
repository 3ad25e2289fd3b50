/// An error from the Redis client: a server error reply, or a failure of the connection, protocol or pool.
///
/// Switch on ``code`` (compare with the static members of ``Code``); new codes may be added in later
/// versions without breaking your code. ``message`` says what happened and what to do about it.
///
/// ```swift
/// do { try await pool.set("k", value: "v") }
/// catch let error as RedisError where error.code == .timeout { … }
/// catch let error as RedisError where error.code == .serverError && error.serverCode == "WRONGTYPE" { … }
/// ```
public struct RedisError: Error, Sendable, CustomStringConvertible {
    /// The kind of a ``RedisError``.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case serverError, connectionClosed, connectFailed, timeout, protocolError, poolTimeout, poolClosed
            case authenticationFailed, tls, cancelled, invalidConfiguration, unexpectedReply, unsupportedCommand
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The server answered with an error reply (`-ERR …`, `-WRONGTYPE …`, `-MOVED …`); see ``RedisError/serverCode``.
        public static let serverError = Code(.serverError)
        /// The connection was closed (by the server, the network, a poisoned pipeline or ``RedisConnection/close()``)
        /// before the reply arrived. A write may or may not have been applied.
        public static let connectionClosed = Code(.connectionClosed)
        /// The TCP (or TLS) connection could not be established, after any configured retries.
        public static let connectFailed = Code(.connectFailed)
        /// No reply arrived within the command timeout (or the connect timeout), or no connection could be made
        /// within the pool's acquire timeout; the connection was closed.
        public static let timeout = Code(.timeout)
        /// The server sent bytes that are not valid RESP, or exceeded the configured size/nesting limits.
        public static let protocolError = Code(.protocolError)
        /// Every pooled connection stayed in use for the pool's whole acquire timeout: the pool is too small for
        /// the load, but the server may be healthy. Not an outage; a wait for a connection that could not be made
        /// is a ``timeout`` instead.
        public static let poolTimeout = Code(.poolTimeout)
        /// The pool is shut down (or its `run()` has returned).
        public static let poolClosed = Code(.poolClosed)
        /// The server refused the credentials (`WRONGPASS`, `NOAUTH`, or a failed `AUTH`).
        public static let authenticationFailed = Code(.authenticationFailed)
        /// The TLS handshake or certificate verification failed.
        public static let tls = Code(.tls)
        /// The calling task was cancelled while waiting; the connection was closed since its replies are out of step.
        public static let cancelled = Code(.cancelled)
        /// A configuration value or URL is invalid.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// The reply had a type the typed helper did not expect.
        public static let unexpectedReply = Code(.unexpectedReply)
        /// The command cannot be sent as a request with a reply (`SUBSCRIBE`, `MONITOR`, …: they switch the
        /// connection to a mode where replies no longer match requests); nothing was sent. Use ``RedisSubscription``.
        public static let unsupportedCommand = Code(.unsupportedCommand)

        /// The name of the code, e.g. `timeout`.
        public var description: String { self.base.rawValue }
    }

    /// The kind of error.
    public let code: Code
    /// What happened and what to do about it.
    public let message: String
    /// For ``Code/serverError`` (and authentication failures reported by the server): the first word of the
    /// server's reply, such as `ERR`, `WRONGTYPE`, `NOAUTH`, `MOVED`, `BUSY`.
    public let serverCode: String?
    /// The error that caused this one, if any (an `NIOSSLError`, an `IOError`, …).
    public let underlying: (any Error)?
    /// For ``Code/serverError``: the server's reply text as sent (`MOVED 3999 127.0.0.1:6381`), for the cluster
    /// client's redirections.
    package var serverText: String?

    /// Creates an error. The library creates these; a public initializer lets callers and fakes produce them too.
    public init(code: Code, message: String, serverCode: String? = nil, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.serverCode = serverCode
        self.underlying = underlying
    }

    /// `RedisError(code): message`, plus the underlying error.
    public var description: String {
        var text = "RedisError(\(code)): \(message)"
        if let underlying { text += " (underlying: \(underlying))" }
        return text
    }

    /// `true` when the command certainly did not reach the server or the connection is gone, so a
    /// read-only command can be retried safely on another connection.
    ///
    /// A ``Code/timeout`` is not a connection failure: the server may still run the command, and retrying a
    /// command against a server that is too slow to answer adds load and multiplies the caller's wait.
    public var isConnectionFailure: Bool {
        self.code == .connectionClosed || self.code == .connectFailed
    }
}

extension RedisError {
    /// A server error reply. `text` is the reply text, e.g. `WRONGTYPE Operation against a key …`.
    package static func server(_ text: String) -> RedisError {
        let firstWord = text.prefix { $0 != " " }
        let code = firstWord.isEmpty ? "ERR" : String(firstWord)
        var error = RedisError(
            code: .serverError,
            message: "the server replied with an error: \(text)",
            serverCode: code
        )
        error.serverText = text
        return error
    }

    package static func connectionClosed(_ context: String = "", underlying: (any Error)? = nil) -> RedisError {
        RedisError(
            code: .connectionClosed,
            message: "the connection to Redis closed before the reply arrived\(context.isEmpty ? "" : " (\(context))"); "
                + "the command may or may not have run: retry it on a new connection if it is idempotent",
            underlying: underlying
        )
    }

    package static func timeout(_ timeout: Duration) -> RedisError {
        RedisError(
            code: .timeout,
            message: "no reply from Redis within \(timeout); the connection was closed. Check that the server is "
                + "alive and not blocked (slow commands, SIGSTOP, network), or raise the command timeout"
        )
    }

    package static func protocolError(_ error: any Error) -> RedisError {
        RedisError(
            code: .protocolError,
            message: "the server sent an invalid or oversized RESP reply (\(error)); the connection was closed. "
                + "Check that the address points at a Redis server, or raise the decoder limits",
            underlying: error
        )
    }

    package static let cancelled = RedisError(
        code: .cancelled,
        message: "the task was cancelled while waiting for Redis; the connection was closed as its replies are out of step"
    )

    package static func subscriberModeCommand(_ name: String) -> RedisError {
        RedisError(
            code: .unsupportedCommand,
            message: "\(name) switches a connection to subscriber mode, where replies no longer match commands, so it "
                + "cannot be sent with execute or send; nothing was sent. Use RedisSubscription "
                + "(RedisSubscription.connect or connection.subscribe(to:)) on a connection of its own"
        )
    }

    package static func unexpectedReply(_ value: RESPValue, expected: String) -> RedisError {
        RedisError(
            code: .unexpectedReply,
            message: "expected \(expected) from Redis but got \(value); check the command and the server version"
        )
    }
}
