import RedisClient

/// Everything needed to create a cache with ``makeCache(_:codec:logger:)``.
///
/// Start from a preset and change what you need:
///
/// ```swift
/// var configuration = CacheConfiguration.production(redisAddress: "redis.internal:6379", password: secret)
/// configuration.defaultTTL = .seconds(600)
/// try configuration.validate()
/// ```
public struct CacheConfiguration: Sendable, Equatable {
    /// Where values are stored.
    public enum Backend: String, Sendable, Equatable, CaseIterable {
        /// In this process's memory.
        case memory
        /// In a Redis server.
        case redis
    }

    /// Where values are stored. Default: memory.
    public var backend: Backend = .memory
    /// A name for logs and metrics labels. Default: `"default"`.
    public var name: String = "default"

    // MARK: Redis

    /// The Redis server as `host:port`. Default: `localhost:6379`.
    ///
    /// With ``redisCluster``, one or more seed nodes of the cluster, separated by commas:
    /// `10.0.0.1:6379,10.0.0.2:6379`.
    public var redisAddress: String = "localhost:6379"
    /// Whether ``redisAddress`` names nodes of a Redis Cluster: the cache then discovers the other nodes, keeps a pool
    /// per primary and routes each key to the node serving its hash slot (see the "Redis Cluster" article). The
    /// database must be 0. A ``nearCache`` keeps one tracking connection per node. Default: false.
    public var redisCluster: Bool = false
    /// The ACL user name; `nil` authenticates as the default user.
    public var redisUsername: String? = nil
    /// The password; `nil` skips authentication.
    public var redisPassword: String? = nil
    /// The database index selected after connecting. Default: 0.
    public var redisDatabase: Int = 0
    /// Whether to connect with TLS (`rediss://`). Default: false.
    public var redisTLS: Bool = false
    /// A prefix for every key this cache writes to Redis, e.g. `"myapp"` stores `user:1` as `myapp:user:1`.
    /// `clear()` removes only keys under the namespace.
    public var namespace: String? = nil
    /// Lets `clear()` on a Redis cache without a ``namespace`` flush the whole database (`FLUSHDB`), other
    /// applications' keys included. Without it, such a `clear()` throws. Ignored when a namespace is set.
    /// Default: false.
    public var allowFlushDatabase: Bool = false
    /// A PEM file of the certificate authority to trust for TLS (``redisTLS``) instead of the system trust store,
    /// for a private CA. Default: `nil`.
    public var redisCACertificatePath: String? = nil

    // MARK: Memory

    /// The most bytes the memory cache (or the fallback memory cache) holds, counted by encoded value size.
    /// Default: 100 MiB.
    public var maxMemorySize: Int = 100 * 1024 * 1024
    /// The time to live of a value stored with `ttl: nil`; ``Swift/Duration/noExpiry`` keeps such values until
    /// they are deleted or evicted. Default: one hour.
    ///
    /// One rule for time to live everywhere: a `ttl` argument of `nil` means "this default", and
    /// ``Swift/Duration/noExpiry`` means "never expires", both here and in every `set`.
    public var defaultTTL: Duration = .seconds(3600)
    /// How often the memory cache removes expired entries in the background. Default: one minute.
    public var sweepInterval: Duration = .seconds(60)
    /// Which entries the memory cache drops first when it is full.
    public var evictionStrategy: EvictionStrategy = .default

    // MARK: Near cache

    /// With the Redis backend: an in-process near cache (L1) in front of Redis, kept coherent by Redis client-side
    /// caching; ``makeCache(_:codec:logger:)`` then builds a ``TwoLevelCache`` (inside a ``FallbackCache`` with
    /// ``enableFallback``). `nil` (the default): every read goes to Redis.
    public var nearCache: NearCacheConfiguration? = nil

    // MARK: Connections

    /// How many times a failed connection attempt or safe command is retried. Default: 3.
    public var maxRetries: Int = 3
    /// Time allowed to establish a connection. Default: 5 s.
    public var connectTimeout: Duration = .seconds(5)
    /// Time allowed for a reply. Default: 3 s.
    public var readTimeout: Duration = .seconds(3)
    /// Time allowed for sending a command. Default: 3 s.
    public var writeTimeout: Duration = .seconds(3)
    /// The most connections open at once. Default: 10.
    public var poolSize: Int = 10
    /// Connections kept open even when idle. Default: 0.
    public var minIdleConnections: Int = 0
    /// Idle connections beyond this number are closed. Default: 10.
    public var maxIdleConnections: Int = 10
    /// Connections older than this are replaced; `nil` keeps them forever. Default: `nil`.
    public var connectionMaxLifetime: Duration? = nil

    // MARK: Fallback

    /// When Redis fails, serve from an in-memory cache that every write also updates. Default: false.
    ///
    /// Combines with ``nearCache``: ``makeCache(_:codec:logger:)`` then builds a ``FallbackCache`` over a
    /// ``TwoLevelCache``, whose L1 serves hits while Redis is up and whose memory copy, refreshed by the reads that
    /// reach Redis and by writes, serves the outage.
    public var enableFallback: Bool = false
    /// With ``enableFallback``: consecutive Redis failures (unavailable or timeout) after which the fallback cache
    /// stops calling Redis and serves from memory until a probe succeeds. Default: 3.
    public var fallbackFailureThreshold: Int = 3
    /// With ``enableFallback``: how often Redis is probed (`PING`) while it is considered down. Default: 1 s.
    public var fallbackProbeInterval: Duration = .seconds(1)
    /// With ``enableFallback``: what recovery does with the keys written during an outage. Default:
    /// ``FallbackRecovery/invalidate`` (safe with many instances); ``FallbackRecovery/writeBack`` for a single writer.
    public var fallbackRecovery: FallbackRecovery = .invalidate
    /// With ``enableFallback``: the longest a value may be served from memory during an outage after this instance
    /// last wrote it or read it from Redis; `nil` (the default): the value's own TTL.
    public var fallbackMaxOutageAge: Duration? = nil
    /// With ``enableFallback``: how long `close()` may spend replaying writes made during an outage. Default: 2 s.
    public var fallbackCloseTimeout: Duration = .seconds(2)

    /// The longest a `getOrSet` load may run when the call sets no ``GetOrSetOptions/hardTimeout`` (the hard timeout
    /// bounds it otherwise). Concurrent callers for a key share one load; once it has run this long, they get
    /// ``CacheError/Code/timeout`` and the next caller starts a new load, so a factory that never returns cannot
    /// block its key for ever. The late factory is not cancelled: if it finishes, its value is still stored.
    /// Default: 30 s (``defaultFlightTimeout``).
    public var flightTimeout: Duration = CacheConfiguration.defaultFlightTimeout

    /// The default of ``flightTimeout``: 30 s.
    public static let defaultFlightTimeout: Duration = .seconds(30)

    /// The fallback settings of this configuration.
    public var fallbackConfiguration: FallbackConfiguration {
        FallbackConfiguration(
            failureThreshold: fallbackFailureThreshold, probeInterval: fallbackProbeInterval, recovery: fallbackRecovery,
            maxOutageAge: fallbackMaxOutageAge, closeTimeout: fallbackCloseTimeout
        )
    }

    /// A configuration with every default: the memory backend.
    public init() {}

    /// The entries of ``redisAddress`` split at commas and trimmed: the seed nodes of a cluster.
    var redisSeedAddresses: [String] {
        redisAddress.split(separator: ",").map { String($0.filter { !$0.isWhitespace }) }
    }

    /// Checks that the values make sense together.
    ///
    /// - Throws: ``CacheError/Code/invalidConfiguration`` naming the field and the accepted range.
    public func validate() throws(CacheError) {
        func fail(_ message: String) throws(CacheError) { throw CacheError.invalidConfiguration(message) }
        if name.isEmpty { try fail("name is empty. Give the cache a short name such as \"sessions\"; it labels logs and metrics.") }
        // The name is also the Redis client name (CLIENT SETNAME), which refuses spaces and control characters.
        if !name.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) {
            try fail("name \"\(name)\" has spaces or characters other than printable ASCII. Use letters, digits and - _ . : such as \"user-sessions\"; it also names the Redis connections.")
        }
        if enableFallback && backend == .memory {
            try fail("enableFallback is set, but the backend is memory, which has nothing to fall back from. Set backend = .redis, or turn enableFallback off.")
        }
        if maxMemorySize <= 0 { try fail("maxMemorySize is \(maxMemorySize). Set a positive number of bytes, e.g. 64 * 1024 * 1024.") }
        if defaultTTL <= .zero {
            try fail("defaultTTL is \(defaultTTL). Use a positive duration, or Duration.noExpiry for values that never expire.")
        }
        if sweepInterval <= .zero { try fail("sweepInterval is \(sweepInterval). Use a positive duration such as .seconds(60).") }
        if flightTimeout <= .zero { try fail("flightTimeout is \(flightTimeout). Use a positive duration such as .seconds(30).") }
        if maxRetries < 0 { try fail("maxRetries is \(maxRetries). Use 0 (no retries) or more.") }
        for (field, value) in [("connectTimeout", connectTimeout), ("readTimeout", readTimeout), ("writeTimeout", writeTimeout)] where value <= .zero {
            try fail("\(field) is \(value). Use a positive duration such as .seconds(3).")
        }
        if poolSize < 1 { try fail("poolSize is \(poolSize). Use at least 1 connection.") }
        if minIdleConnections < 0 { try fail("minIdleConnections is \(minIdleConnections). Use 0 or more.") }
        if maxIdleConnections < 0 { try fail("maxIdleConnections is \(maxIdleConnections). Use 0 or more.") }
        if minIdleConnections > poolSize {
            try fail("minIdleConnections (\(minIdleConnections)) is larger than poolSize (\(poolSize)). Lower minIdleConnections or raise poolSize.")
        }
        if maxIdleConnections > poolSize {
            try fail("maxIdleConnections (\(maxIdleConnections)) is larger than poolSize (\(poolSize)). Lower maxIdleConnections or raise poolSize.")
        }
        if minIdleConnections > maxIdleConnections {
            try fail("minIdleConnections (\(minIdleConnections)) is larger than maxIdleConnections (\(maxIdleConnections)).")
        }
        if let lifetime = connectionMaxLifetime, lifetime <= .zero {
            try fail("connectionMaxLifetime is \(lifetime). Use a positive duration, or nil to keep connections forever.")
        }
        if fallbackFailureThreshold < 1 { try fail("fallbackFailureThreshold is \(fallbackFailureThreshold). Use at least 1.") }
        if fallbackProbeInterval <= .zero {
            try fail("fallbackProbeInterval is \(fallbackProbeInterval). Use a positive duration such as .seconds(1).")
        }
        if let age = fallbackMaxOutageAge, age <= .zero {
            try fail("fallbackMaxOutageAge is \(age). Use a positive duration such as .seconds(300), or nil for no limit.")
        }
        if fallbackCloseTimeout < .zero {
            try fail("fallbackCloseTimeout is \(fallbackCloseTimeout). Use zero or a positive duration such as .seconds(2).")
        }
        if redisDatabase < 0 { try fail("redisDatabase is \(redisDatabase). Redis databases are numbered from 0.") }
        if backend == .redis {
            if redisAddress.isEmpty { try fail("redisAddress is empty. Use host:port, e.g. localhost:6379.") }
            if redisCluster {
                for seed in redisSeedAddresses where seed.isEmpty || HostAndPort(seed) == nil {
                    try fail("redisAddress has the cluster seed \"\(seed)\", which is not host:port with a port from 1 to 65535. List seeds as host:port separated by commas, e.g. 10.0.0.1:6379,10.0.0.2:6379.")
                }
                if redisDatabase != 0 {
                    try fail("redisDatabase is \(redisDatabase), but a Redis Cluster has only database 0. Use a namespace to keep caches apart.")
                }
            } else if redisAddress.contains(",") || HostAndPort(redisAddress) == nil {
                let hint = redisAddress.contains(",") ? " Several addresses are seeds of a Redis Cluster: set redisCluster = true." : ""
                try fail("redisAddress \"\(redisAddress)\" is not host:port with a port from 1 to 65535, e.g. localhost:6379.\(hint)")
            }
        }
        if let nearCache {
            try nearCache.validate()
            if backend != .redis {
                try fail("nearCache is set but the backend is \(backend.rawValue). A near cache sits in front of Redis: use the redis backend, or set nearCache = nil.")
            }
        }
        if let namespace, namespace.isEmpty || namespace.contains("*") || namespace.contains("?") || namespace.contains("[") {
            try fail("namespace \"\(namespace)\" must be non-empty and free of the glob characters * ? [ so clear() can match it exactly.")
        }
    }
}

// MARK: - Presets

extension CacheConfiguration {
    /// The memory backend with the defaults: 100 MiB, one-hour TTL.
    public static var `default`: CacheConfiguration { CacheConfiguration() }

    /// For development: memory only, 50 MiB, 30-minute TTL.
    public static var development: CacheConfiguration {
        var configuration = CacheConfiguration()
        configuration.name = "development"
        configuration.maxMemorySize = 50 * 1024 * 1024
        configuration.defaultTTL = .seconds(30 * 60)
        return configuration
    }

    /// For production: Redis with fallback to a 100 MiB memory cache (recovery invalidates the keys written during
    /// an outage, safe with many instances), 3 retries, 5 s connect and 3 s read/write timeouts, 20 connections (10
    /// kept warm), recycled every 5 minutes.
    public static func production(redisAddress: String, password: String? = nil, database: Int = 0) -> CacheConfiguration {
        var configuration = CacheConfiguration()
        configuration.name = "production"
        configuration.backend = .redis
        configuration.redisAddress = redisAddress
        configuration.redisPassword = password
        configuration.redisDatabase = database
        configuration.maxRetries = 3
        configuration.connectTimeout = .seconds(5)
        configuration.readTimeout = .seconds(3)
        configuration.writeTimeout = .seconds(3)
        configuration.poolSize = 20
        configuration.minIdleConnections = 10
        configuration.maxIdleConnections = 20
        configuration.connectionMaxLifetime = .seconds(5 * 60)
        configuration.enableFallback = true
        configuration.maxMemorySize = 100 * 1024 * 1024
        return configuration
    }

    /// For throughput: Redis without fallback, 50 connections (20 kept warm), 1 s read/write timeouts, and a 64 MiB
    /// near cache kept coherent by Redis client tracking (so ``makeCache(_:codec:logger:)`` builds a
    /// ``TwoLevelCache``): hot keys are read from memory, and every instance still sees the others' writes within
    /// about a millisecond. Needs Redis 6 or later with `CLIENT TRACKING` allowed; set ``nearCache`` to `nil` (every
    /// read from Redis) or its coherence to ``NearCacheConfiguration/Coherence/ttlOnly`` otherwise.
    ///
    /// The presets do not combine the near cache and the fallback, though both may be set (a ``FallbackCache`` over
    /// a ``TwoLevelCache``): ``production(redisAddress:password:database:)`` works on any Redis, also one that refuses
    /// `CLIENT TRACKING` (some managed services), and keeps one memory copy; this preset favours the hit path, which
    /// the fallback makes slightly slower (about 0.1 µs per L1 hit) and whose memory it doubles. Set
    /// ``enableFallback`` here, or ``nearCache`` there, to have both: L1 hits while Redis is up, the fallback's copy
    /// during an outage.
    public static func highPerformance(redisAddress: String, password: String? = nil) -> CacheConfiguration {
        var configuration = CacheConfiguration()
        configuration.name = "high-performance"
        configuration.backend = .redis
        configuration.redisAddress = redisAddress
        configuration.redisPassword = password
        configuration.poolSize = 50
        configuration.minIdleConnections = 20
        configuration.maxIdleConnections = 50
        configuration.readTimeout = .seconds(1)
        configuration.writeTimeout = .seconds(1)
        configuration.enableFallback = false
        configuration.nearCache = NearCacheConfiguration()
        return configuration
    }
}

// MARK: - URL and environment

extension CacheConfiguration {
    /// A Redis configuration from `redis://[user:password@]host[:port][/db][?options]` or `rediss://…` (TLS).
    ///
    /// Other fields keep their defaults. The URL is read by RedisClient's `RedisURL`, so it means the same as
    /// for a bare connection: percent-encoded user names and passwords, IPv6 hosts in brackets, the database as
    /// the path or `db=`, and the options `connect_timeout` and `command_timeout` (e.g. `500ms`, `3s`; the
    /// latter sets both ``readTimeout`` and ``writeTimeout``).
    public init(redisURL: String) throws(CacheError) {
        self.init()
        let url: RedisURL
        do {
            url = try RedisURL(redisURL)
        } catch {
            throw CacheError(code: .invalidConfiguration, message: error.message)
        }
        backend = .redis
        redisTLS = url.tls
        redisAddress = url.address
        redisUsername = url.username
        redisPassword = url.password
        redisDatabase = url.database
        if let connectTimeout = url.connectTimeout { self.connectTimeout = connectTimeout }
        if let commandTimeout = url.commandTimeout {
            readTimeout = commandTimeout
            writeTimeout = commandTimeout
        }
    }

    /// A configuration read from environment variables, starting from `base`.
    ///
    /// | Variable | Field |
    /// |---|---|
    /// | `CACHE_BACKEND` | ``backend`` (`memory` or `redis`) |
    /// | `REDIS_URL` | address, credentials, database, TLS; implies the Redis backend |
    /// | `REDIS_ADDR`, `REDIS_PASSWORD`, `REDIS_DB` | ``redisAddress``, ``redisPassword``, ``redisDatabase`` |
    /// | `REDIS_CLUSTER` | ``redisCluster`` (`true`/`false`/`1`/`0`); `REDIS_ADDR` may then list seeds separated by commas |
    /// | `CACHE_MAX_MEMORY` | ``maxMemorySize`` in bytes |
    /// | `CACHE_DEFAULT_TTL` | ``defaultTTL`` in seconds (`0` for no expiry) |
    /// | `CACHE_POOL_SIZE` | ``poolSize`` |
    /// | `CACHE_ENABLE_FALLBACK` | ``enableFallback`` (`true`/`false`/`1`/`0`) |
    /// | `CACHE_NAMESPACE` | ``namespace`` |
    /// | `CACHE_NEAR_CACHE` | ``nearCache``: `tracking` (or `true`/`1`), `pub-sub`, `ttl-only`, or `false`/`0`/empty for none |
    public static func fromEnvironment(
        _ environment: [String: String],
        base: CacheConfiguration = .default
    ) throws(CacheError) -> CacheConfiguration {
        var configuration = base
        if let url = environment["REDIS_URL"], !url.isEmpty {
            let parsed = try CacheConfiguration(redisURL: url)
            configuration.backend = .redis
            configuration.redisAddress = parsed.redisAddress
            configuration.redisUsername = parsed.redisUsername
            configuration.redisPassword = parsed.redisPassword
            configuration.redisDatabase = parsed.redisDatabase
            configuration.redisTLS = parsed.redisTLS
        }
        if let value = environment["CACHE_BACKEND"] {
            guard let backend = Backend(rawValue: value.lowercased()) else {
                throw CacheError.invalidConfiguration("CACHE_BACKEND is \"\(value)\". Use memory or redis.")
            }
            configuration.backend = backend
        }
        if let value = environment["REDIS_ADDR"] { configuration.redisAddress = value }
        if let value = environment["REDIS_PASSWORD"] { configuration.redisPassword = value.isEmpty ? nil : value }
        func integer(_ name: String) throws(CacheError) -> Int? {
            guard let text = environment[name] else { return nil }
            guard let value = Int(text) else {
                throw CacheError.invalidConfiguration("\(name) is \"\(text)\", not a whole number.")
            }
            return value
        }
        if let value = try integer("REDIS_DB") { configuration.redisDatabase = value }
        if let value = try integer("CACHE_MAX_MEMORY") { configuration.maxMemorySize = value }
        if let value = try integer("CACHE_DEFAULT_TTL") { configuration.defaultTTL = value == 0 ? .noExpiry : .seconds(value) }
        if let value = try integer("CACHE_POOL_SIZE") { configuration.poolSize = value }
        if let text = environment["REDIS_CLUSTER"] {
            switch text.lowercased() {
            case "1", "true", "yes", "on": configuration.redisCluster = true
            case "0", "false", "no", "off", "": configuration.redisCluster = false
            default: throw CacheError.invalidConfiguration("REDIS_CLUSTER is \"\(text)\". Use true or false.")
            }
        }
        if let text = environment["CACHE_ENABLE_FALLBACK"] {
            switch text.lowercased() {
            case "1", "true", "yes", "on": configuration.enableFallback = true
            case "0", "false", "no", "off", "": configuration.enableFallback = false
            default: throw CacheError.invalidConfiguration("CACHE_ENABLE_FALLBACK is \"\(text)\". Use true or false.")
            }
        }
        if let value = environment["CACHE_NAMESPACE"] { configuration.namespace = value.isEmpty ? nil : value }
        if let text = environment["CACHE_NEAR_CACHE"] {
            var near = configuration.nearCache ?? NearCacheConfiguration()
            switch text.lowercased() {
            case "1", "true", "yes", "on", "tracking":
                near.coherence = .tracking
                configuration.nearCache = near
            case "ttl-only":
                near.coherence = .ttlOnly
                configuration.nearCache = near
            case "pub-sub":
                near.coherence = .pubSub
                configuration.nearCache = near
            case "0", "false", "no", "off", "": configuration.nearCache = nil
            default: throw CacheError.invalidConfiguration("CACHE_NEAR_CACHE is \"\(text)\". Use tracking, pub-sub, ttl-only or false.")
            }
        }
        try configuration.validate()
        return configuration
    }
}

/// `host:port` split, accepting `[::1]:6379` for IPv6.
package struct HostAndPort: Sendable, Equatable {
    package var host: String
    package var port: Int

    package init?(_ text: String) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            guard after.hasPrefix(":") else { return nil }
            portPart = after.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        guard !hostPart.isEmpty, let port = Int(portPart), (1...65535).contains(port) else { return nil }
        self.host = String(hostPart)
        self.port = port
    }
}

// MARK: - Descriptions without the password

extension CacheConfiguration: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// Every field, with ``redisPassword`` shown as `***`.
    private var redactedFields: [(label: String, value: Any)] {
        [
            ("backend", backend as Any),
            ("name", name as Any),
            ("redisAddress", redisAddress as Any),
            ("redisCluster", redisCluster as Any),
            ("redisUsername", redisUsername as Any),
            ("redisPassword", redisPassword.map { _ in "***" } as Any),
            ("redisDatabase", redisDatabase as Any),
            ("redisTLS", redisTLS as Any),
            ("namespace", namespace as Any),
            ("allowFlushDatabase", allowFlushDatabase as Any),
            ("redisCACertificatePath", redisCACertificatePath as Any),
            ("maxMemorySize", maxMemorySize as Any),
            ("defaultTTL", defaultTTL as Any),
            ("sweepInterval", sweepInterval as Any),
            ("evictionStrategy", evictionStrategy as Any),
            ("maxRetries", maxRetries as Any),
            ("connectTimeout", connectTimeout as Any),
            ("readTimeout", readTimeout as Any),
            ("writeTimeout", writeTimeout as Any),
            ("poolSize", poolSize as Any),
            ("minIdleConnections", minIdleConnections as Any),
            ("maxIdleConnections", maxIdleConnections as Any),
            ("connectionMaxLifetime", connectionMaxLifetime as Any),
            ("enableFallback", enableFallback as Any),
            ("fallbackFailureThreshold", fallbackFailureThreshold as Any),
            ("fallbackProbeInterval", fallbackProbeInterval as Any),
            ("fallbackRecovery", fallbackRecovery as Any),
            ("fallbackMaxOutageAge", fallbackMaxOutageAge as Any),
            ("fallbackCloseTimeout", fallbackCloseTimeout as Any),
            ("flightTimeout", flightTimeout as Any),
        ]
    }

    /// Every field, the password shown as `***`.
    public var description: String {
        let fields = redactedFields.map { "\($0.label): \(Self.unwrapped($0.value))" }
        return "CacheConfiguration(\(fields.joined(separator: ", ")))"
    }

    /// The same as ``description``: the password is never shown.
    public var debugDescription: String { description }

    /// What `dump` and debuggers show: every field, the password as `***`.
    public var customMirror: Mirror {
        Mirror(self, children: redactedFields.map { (label: Optional($0.label), value: $0.value) }, displayStyle: .struct)
    }

    /// `value` without an `Optional(…)` wrapper.
    private static func unwrapped(_ value: Any) -> String {
        let mirror = Mirror(reflecting: value)
        guard mirror.displayStyle == .optional else { return "\(value)" }
        guard let wrapped = mirror.children.first?.value else { return "nil" }
        return "\(wrapped)"
    }
}
