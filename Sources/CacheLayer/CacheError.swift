/// An error thrown by a cache.
///
/// Errors are identified by their ``code``; compare codes rather than messages:
///
/// ```swift
/// do {
///     let user = try await cache.require("user:1", as: User.self)
/// } catch let error as CacheError where error.code == .miss {
///     // load it from the database
/// }
/// ```
///
/// Two errors are equal when their codes and keys are equal; messages and underlying errors are not compared.
public struct CacheError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added in later releases.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Base: String, Sendable {
            case miss
            case unavailable
            case timeout
            case closed
            case typeMismatch
            case valueTooLarge
            case invalidKey
            case invalidTTL
            case encodingFailed
            case decodingFailed
            case invalidConfiguration
            case unsupported
            case authenticationFailed
            case backendError
            case cancelled
            case busy
        }

        let base: Base

        /// The key is not in the cache, or it has expired.
        public static let miss = Code(base: .miss)
        /// The backend cannot be reached (Redis down, connection refused, no connection could be made).
        public static let unavailable = Code(base: .unavailable)
        /// Every connection to the backend stayed in use for as long as the cache may wait for one (Redis's
        /// connection pool is exhausted): the backend itself is reachable and may be healthy, so this is not an
        /// outage and a ``FallbackCache`` does not count it towards its circuit breaker.
        public static let busy = Code(base: .busy)
        /// The backend did not answer within the configured timeout.
        public static let timeout = Code(base: .timeout)
        /// The cache was used after ``Cache/close()``.
        public static let closed = Code(base: .closed)
        /// The stored value is of another type than the one asked for.
        public static let typeMismatch = Code(base: .typeMismatch)
        /// The value can never fit: its encoded size exceeds the cache's whole memory limit.
        public static let valueTooLarge = Code(base: .valueTooLarge)
        /// The key is empty or longer than ``CacheKey/maximumLength`` bytes.
        public static let invalidKey = Code(base: .invalidKey)
        /// The time to live is zero or negative.
        public static let invalidTTL = Code(base: .invalidTTL)
        /// The codec could not encode the value.
        public static let encodingFailed = Code(base: .encodingFailed)
        /// The codec could not decode the stored bytes.
        public static let decodingFailed = Code(base: .decodingFailed)
        /// A ``CacheConfiguration`` value makes no sense (negative size, `minIdle > poolSize`, malformed URL, …).
        public static let invalidConfiguration = Code(base: .invalidConfiguration)
        /// The operation or backend is not supported by this cache.
        public static let unsupported = Code(base: .unsupported)
        /// The backend refused the credentials.
        public static let authenticationFailed = Code(base: .authenticationFailed)
        /// The backend answered with an error.
        public static let backendError = Code(base: .backendError)
        /// The calling task was cancelled while waiting.
        public static let cancelled = Code(base: .cancelled)

        public var description: String { base.rawValue }
    }

    /// What kind of failure this is.
    public let code: Code
    /// The key involved, when the failure concerns one key.
    public let key: String?
    /// What happened and what to do about it.
    public let message: String
    /// The error that caused this one, if any (a connection error, a `DecodingError`, …).
    public let underlying: (any Error)?

    /// Creates an error. Prefer the static constructors such as ``miss(key:)``.
    public init(code: Code, key: String? = nil, message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.key = key
        self.message = message
        self.underlying = underlying
    }

    public static func == (lhs: CacheError, rhs: CacheError) -> Bool {
        lhs.code == rhs.code && lhs.key == rhs.key
    }

    public var description: String {
        var text = "CacheError.\(code)"
        if let key { text += " [key: \(key)]" }
        text += ": \(message)"
        if let underlying { text += " (underlying: \(underlying))" }
        return text
    }
}

extension CacheError {
    /// The key is not in the cache or has expired.
    public static func miss(key: String) -> CacheError {
        CacheError(code: .miss, key: key, message: "No value is cached under this key (never set, deleted, evicted or expired). Load it from its source and set it.")
    }

    /// The cache was used after it was closed.
    public static func closed(key: String? = nil) -> CacheError {
        CacheError(code: .closed, key: key, message: "The cache has been closed. Create a new cache instead of reusing a closed one.")
    }

    /// The stored value is of another type.
    public static func typeMismatch(key: String, stored: String, requested: String, underlying: (any Error)? = nil) -> CacheError {
        CacheError(
            code: .typeMismatch, key: key,
            message: "The value stored under this key is of type \(stored), not \(requested). Read it with the type it was stored with, or use distinct keys per type.",
            underlying: underlying
        )
    }

    /// The value's encoded size exceeds the cache's whole memory limit.
    public static func valueTooLarge(key: String, size: Int, limit: Int) -> CacheError {
        CacheError(
            code: .valueTooLarge, key: key,
            message: "The value encodes to \(size) bytes, more than the cache's whole limit of \(limit) bytes. Store a smaller value or raise maxMemorySize."
        )
    }

    /// The backend is unreachable.
    public static func unavailable(_ message: String, key: String? = nil, underlying: (any Error)? = nil) -> CacheError {
        CacheError(code: .unavailable, key: key, message: message, underlying: underlying)
    }

    /// The backend did not answer in time.
    public static func timeout(_ message: String, key: String? = nil, underlying: (any Error)? = nil) -> CacheError {
        CacheError(code: .timeout, key: key, message: message, underlying: underlying)
    }

    /// A configuration value is invalid.
    public static func invalidConfiguration(_ message: String) -> CacheError {
        CacheError(code: .invalidConfiguration, message: message)
    }

    /// The time to live is zero or negative.
    public static func invalidTTL(key: String, ttl: Duration) -> CacheError {
        CacheError(
            code: .invalidTTL, key: key,
            message: "The time to live \(ttl) is not positive. Pass a positive duration, nil for the configured default, or Duration.noExpiry to keep the value until it is deleted or evicted."
        )
    }

    /// The codec could not encode a value of `type`.
    package static func encodingFailed(key: String, type: Any.Type, underlying: any Error) -> CacheError {
        CacheError(
            code: .encodingFailed, key: key,
            message: "The codec could not encode the \(type) value. Check the type's Encodable conformance.",
            underlying: underlying
        )
    }

    /// The calling task was cancelled.
    public static func cancelled(key: String? = nil) -> CacheError {
        CacheError(code: .cancelled, key: key, message: "The task was cancelled before the cache operation finished; nothing was changed by the cancelled part.")
    }
}
