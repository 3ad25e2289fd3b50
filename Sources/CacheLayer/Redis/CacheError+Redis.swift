import RedisClient

extension CacheError {
    /// The cache error for a failure of the Redis client, so callers (and ``FallbackCache``) see one vocabulary:
    ///
    /// - refused or closed connections, TLS failures, `LOADING`/`BUSY`/`MASTERDOWN` replies → ``Code/unavailable``
    /// - every pooled connection in use for the whole wait (pool exhausted) → ``Code/busy``
    /// - no reply within the command timeout, no connection made within the wait → ``Code/timeout``
    /// - `NOAUTH`/`WRONGPASS`, refused credentials → ``Code/authenticationFailed``
    /// - `WRONGTYPE` (another application stored a list, hash, … there) → ``Code/typeMismatch``
    /// - a closed pool → ``Code/closed``; cancellation → ``Code/cancelled``
    /// - any other error reply or unexpected reply → ``Code/backendError``
    static func fromRedis(_ error: any Error, key: String?) -> CacheError {
        if let error = error as? CacheError { return error }
        if error is CancellationError { return .cancelled(key: key) }
        guard let redis = error as? RedisError else {
            return CacheError(code: .backendError, key: key, message: "The Redis backend failed: \(error).", underlying: error)
        }
        switch redis.code {
        case .poolTimeout:
            return CacheError(
                code: .busy, key: key,
                message: "Every pooled Redis connection stayed in use for the whole wait (connectTimeout): Redis is reachable, but the pool is too small for the load. Raise poolSize or connectTimeout, or send fewer concurrent requests.",
                underlying: redis
            )
        case .connectFailed, .connectionClosed, .tls:
            return .unavailable("Redis is unreachable (\(redis.code)). Check that it is running and reachable at the configured address.", key: key, underlying: redis)
        case .timeout:
            return .timeout("Redis did not answer within the command timeout. Check that it is not blocked or overloaded, or raise readTimeout.", key: key, underlying: redis)
        case .authenticationFailed:
            return CacheError(
                code: .authenticationFailed, key: key,
                message: "Redis refused the credentials. Check redisUsername and redisPassword (or the user and password of the Redis URL).",
                underlying: redis
            )
        case .cancelled:
            return .cancelled(key: key)
        case .poolClosed:
            return .closed(key: key)
        case .invalidConfiguration:
            return CacheError(code: .invalidConfiguration, key: key, message: "The Redis connection settings are invalid: \(redis.message).", underlying: redis)
        case .serverError:
            switch redis.serverCode {
            case "NOAUTH", "WRONGPASS":
                return CacheError(
                    code: .authenticationFailed, key: key,
                    message: "Redis refused the credentials (\(redis.serverCode ?? "")). Check redisUsername and redisPassword.",
                    underlying: redis
                )
            case "WRONGTYPE":
                return CacheError(
                    code: .typeMismatch, key: key,
                    message: "Redis holds a value of another Redis type (list, hash, set, …) under this key; something other than this cache wrote it. Use a namespace so applications do not share keys.",
                    underlying: redis
                )
            case "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN":
                return .unavailable("Redis cannot serve commands right now (\(redis.serverCode ?? "")). It should recover by itself.", key: key, underlying: redis)
            default:
                return CacheError(code: .backendError, key: key, message: "Redis answered with an error: \(redis.message)", underlying: redis)
            }
        default:
            return CacheError(code: .backendError, key: key, message: "The Redis backend failed: \(redis.message)", underlying: redis)
        }
    }
}
