import CommonSupport
import Foundation
import Logging
import NIOCore
import RedisClient
import Synchronization

/// A cache in Redis, shared by every process that uses the same server, database and namespace.
///
/// ```swift
/// var configuration = CacheConfiguration.production(redisAddress: "redis.internal:6379", password: secret)
/// configuration.namespace = "myapp"
/// configuration.enableFallback = false
/// let cache = try await RedisCache.connect(configuration: configuration)
/// try await cache.set("user:1", to: user, ttl: .seconds(600))   // SET myapp:user:1 <json> PX 600000
/// ```
///
/// - Values are encoded by the codec (JSON by default) and stored with `SET key value PX ms`; a `nil` TTL uses
///   ``CacheConfiguration/defaultTTL``, and ``Swift/Duration/noExpiry`` (there or in the call) stores without expiry.
/// - With ``CacheConfiguration/namespace`` `"myapp"`, the key `user:1` is stored as `myapp:user:1`, and
///   ``clear()`` removes only keys under `myapp:` (`SCAN MATCH` + `UNLINK` in batches). Without a namespace,
///   ``clear()`` refuses unless ``CacheConfiguration/allowFlushDatabase`` is set, since it would delete
///   other applications' keys.
/// - Batches take one round trip each: `MGET`, one pipeline of `SET … PX`, one `UNLINK`.
/// - Tags are Redis sets named `<namespace>:__tag__:<tag>` listing their keys; keys starting with
///   `__tag__:` are reserved. ``invalidate(tag:)`` removes the set and its keys; no command walks the whole
///   keyspace (`KEYS` is never used).
/// - Failures are reported as ``CacheError``s: unreachable Redis → ``CacheError/Code/unavailable`` (the client
///   error attached as `underlying`), no reply (or no connection) in time → ``CacheError/Code/timeout``, every
///   pooled connection busy for the whole wait → ``CacheError/Code/busy`` (not an outage), refused credentials →
///   ``CacheError/Code/authenticationFailed``, other error replies → ``CacheError/Code/backendError``.
///
/// The connection pool's work (making, replacing and closing connections) runs in ``run()`` while a ``CacheService``
/// runs the cache; when the cache is used before (or without) that, it starts in a task of the cache's own at the
/// first command. ``close()`` ends it either way.
public final class RedisCache: Cache {
    /// Single-flight loads, pattern defaults and counters for `getOrSet` and friends.
    public let patterns: CachePatternsState
    /// The configuration the cache was created with.
    public let configuration: CacheConfiguration

    let client: RedisCacheClient
    /// The connection pool to the one server; `nil` on a cluster (one pool per primary, inside the cluster client).
    var pool: RedisConnectionPool? {
        if case .node(let pool) = client { return pool }
        return nil
    }
    let keyspace: RedisKeyspace
    private let codec: any CacheCodec
    private let logger: Logger
    /// Runs the pool: in ``run()`` or in a task of the cache's own, from the first command.
    private let background = CacheBackgroundWork()
    /// Whether the pool's run was started; read on every command, so an atomic rather than the lock.
    private let poolStarted = Atomic<Bool>(false)
    private let poolPlacementState = Locked<CacheBackgroundWork.Placement?>(nil)
    private let closed = Atomic<Bool>(false)
    /// What ``stats()`` reports, under one lock so that a snapshot is consistent.
    private let counters = Locked(Counters())

    /// This instance's operation counts.
    private struct Counters {
        var stats = CacheStats()
        /// Commands or pipelines sent, each one round trip.
        var roundTrips = 0
    }

    /// Commands or pipelines sent so far, each one round trip; tests use it to prove batches take one.
    package var roundTrips: Int { counters.withLock { $0.roundTrips } }

    /// Creates a cache and checks that Redis answers and accepts the credentials.
    ///
    /// Uses the configuration's Redis fields (address, credentials, database, TLS, namespace), pool fields
    /// (`poolSize`, idle limits, `connectionMaxLifetime`, `connectTimeout` which also bounds the wait for a
    /// pooled connection, `maxRetries`), `readTimeout`/`writeTimeout` (one deadline per command, the larger of
    /// the two), `defaultTTL` and `name`.
    ///
    /// - Throws: ``CacheError/Code/invalidConfiguration`` for an invalid configuration,
    ///   ``CacheError/Code/authenticationFailed`` when Redis refuses the credentials,
    ///   ``CacheError/Code/unavailable`` or ``CacheError/Code/timeout`` when it cannot be reached.
    public static func connect(
        configuration: CacheConfiguration,
        codec: any CacheCodec = JSONCacheCodec(),
        logger: Logger = Logger(label: "cachelayer.redis")
    ) async throws -> RedisCache {
        try await opened(RedisCache(configuration: configuration, codec: codec, logger: logger)) { try await $0.checkReachable() }
    }

    /// Creates a cache without contacting Redis; connections are made when first needed.
    ///
    /// Prefer ``connect(configuration:codec:logger:)``, which reports a wrong address or password at once.
    ///
    /// - Throws: ``CacheError/Code/invalidConfiguration`` for an invalid configuration.
    public convenience init(
        configuration: CacheConfiguration,
        codec: any CacheCodec = JSONCacheCodec(),
        logger: Logger = Logger(label: "cachelayer.redis")
    ) throws {
        try self.init(configuration: configuration, codec: codec, logger: logger, wallClock: { Date() })
    }

    /// Creates a cache whose patterns read `wallClock`, for tests.
    package init(
        configuration: CacheConfiguration,
        codec: any CacheCodec,
        logger: Logger,
        wallClock: @escaping @Sendable () -> Date
    ) throws {
        var configuration = configuration
        configuration.backend = .redis
        try configuration.validate()
        let seeds = configuration.redisCluster ? configuration.redisSeedAddresses : [configuration.redisAddress]
        guard let address = seeds.first.flatMap(HostAndPort.init) else {
            throw CacheError.invalidConfiguration("redisAddress \"\(configuration.redisAddress)\" is not host:port.")
        }
        var tls: RedisConnectionConfiguration.TLS?
        if configuration.redisTLS {
            do {
                tls = try .verifying(caCertificatePath: configuration.redisCACertificatePath)
            } catch {
                throw CacheError(code: .invalidConfiguration, message: "Could not set up TLS for Redis: \(error). Check redisCACertificatePath.", underlying: error)
            }
        }
        let connection = RedisConnectionConfiguration(
            host: address.host,
            port: address.port,
            username: configuration.redisUsername,
            password: configuration.redisPassword,
            database: configuration.redisDatabase,
            clientName: "cachelayer-\(configuration.name)",
            tls: tls,
            connectTimeout: configuration.connectTimeout,
            commandTimeout: max(configuration.readTimeout, configuration.writeTimeout)
        )
        let poolConfiguration = RedisConnectionPoolConfiguration(
            maxConnections: configuration.poolSize,
            minIdleConnections: configuration.minIdleConnections,
            maxIdleConnections: configuration.maxIdleConnections,
            maxConnectionLifetime: configuration.connectionMaxLifetime,
            acquireTimeout: configuration.connectTimeout,
            maxRetries: configuration.maxRetries
        )
        var logger = logger
        logger[metadataKey: "cachelayer.cache"] = .string(configuration.name)
        // Failures reach callers as errors (and fallback health events); the pool's per-attempt warnings would
        // repeat every probe during an outage, so they show only when debugging.
        var poolLogger = logger
        if poolLogger.logLevel > .debug { poolLogger.logLevel = .error }
        if configuration.redisCluster {
            do {
                // A command keeps retrying while the cluster heals (a failover, a slot in migration) for as long as
                // one command may take, so a call is bounded by about twice the command timeout.
                let cluster = try RedisClusterConfiguration(
                    seeds: seeds, connection: connection, pool: poolConfiguration,
                    retryTimeout: max(configuration.readTimeout, configuration.writeTimeout)
                )
                self.client = .cluster(try RedisClusterClient(configuration: cluster, logger: poolLogger))
            } catch {
                throw CacheError.fromRedis(error, key: nil)
            }
        } else {
            self.client = .node(RedisConnectionPool(connectionConfiguration: connection, configuration: poolConfiguration, logger: poolLogger))
        }
        self.configuration = configuration
        self.keyspace = RedisKeyspace(namespace: configuration.namespace)
        self.codec = codec
        self.logger = logger
        self.patterns = CachePatternsState(
            name: configuration.name, backend: "redis", defaultTTL: configuration.defaultTTL, logger: logger,
            flightTimeout: configuration.flightTimeout, wallClock: wallClock
        )
    }

    deinit {
        // An abandoned cache still releases its connections; `close()` also waits for them to be closed.
        if !closed.load(ordering: .acquiring) { client.shutdown() }
        background.cancelOwnTasks()
    }

    // MARK: - Cache

    public func get<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> Value? {
        try checkUsable(key)
        let reply = try await run(.get(keyspace.key(key)), key: key)
        guard reply.buffer != nil || reply.isNull else { throw Self.unexpected(reply, key: key) }
        return try decodeRead(reply.buffer, as: type, key: key)
    }

    public func set<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?) async throws {
        try checkUsable(key)
        let command = try setCommand(key, value, ttl: ttl)
        _ = try await run(command.command, key: key)
        recordSets(1, bytes: command.bytes)
    }

    public func delete(_ key: String) async throws {
        try checkUsable(key)
        _ = try await run(RedisCommand("UNLINK", keyspace.key(key)), key: key)
        recordDeletes(1)
    }

    public func exists(_ key: String) async throws -> Bool {
        try checkUsable(key)
        let reply = try await run(RedisCommand("EXISTS", keyspace.key(key), isIdempotent: true), key: key)
        guard let count = reply.int else { throw Self.unexpected(reply, key: key) }
        return count > 0
    }

    /// Removes this cache's keys: every key under the namespace (tag sets included), found with `SCAN MATCH`
    /// and removed with `UNLINK` in batches. Keys of other namespaces and applications are kept.
    ///
    /// Without a namespace this throws ``CacheError/Code/invalidConfiguration``, unless
    /// ``CacheConfiguration/allowFlushDatabase`` is set: then the whole database is flushed (`FLUSHDB ASYNC`).
    public func clear() async throws {
        try checkOpen(nil)
        guard keyspace.hasNamespace else {
            guard configuration.allowFlushDatabase else {
                throw CacheError.invalidConfiguration(
                    "clear() without a namespace would delete every key of Redis database \(configuration.redisDatabase), other applications' keys included. Set configuration.namespace so clear() removes only this cache's keys, or set allowFlushDatabase = true to flush the whole database."
                )
            }
            _ = try await run(RedisCommand("FLUSHDB", "ASYNC"), key: nil)
            return
        }
        try await unlinkMatching(keyspace.matchPattern(keyPrefix: ""))
    }

    /// Hits, misses, sets and deletes counted by this instance, and `size`: the encoded bytes of every value this
    /// instance stored, summed over its lifetime.
    ///
    /// `size` is approximate: it does not shrink when values are overwritten, deleted, expired or evicted, and
    /// does not see writes of other instances. `entryCount`, `evictions` and `expirations` are not tracked
    /// client-side (0). For what the server holds, use ``serverInfo()``.
    public func stats() async -> CacheStats {
        counters.withLock { $0.stats }
    }

    /// Shuts the connection pool down; when the pool runs in a task of the cache's own, waits until every connection
    /// is closed (in ``run()``, the connections close as it returns). Later calls throw ``CacheError/Code/closed``;
    /// closing twice is allowed.
    public func close() async throws {
        if !closed.exchange(true, ordering: .acquiringAndReleasing) {
            client.shutdown()
        }
        await background.close()
    }

    /// Runs the connection pool until graceful shutdown, cancellation or ``close()``; see ``Cache/run()``.
    ///
    /// When the pool already runs in a task of the cache's own (commands were sent before), it goes on there and this
    /// waits alongside it.
    public func run() async throws {
        await background.run(onStart: startPoolIfNeeded)
    }

    /// Where the pool's work runs: `nil` before the first command or ``run()``.
    package var poolPlacement: CacheBackgroundWork.Placement? { poolPlacementState.withLock { $0 } }

    /// Starts the pool's run, once: in ``run()`` when it runs, else in a task of the cache's own.
    @inline(__always)
    private func startPoolIfNeeded() {
        guard !poolStarted.load(ordering: .relaxed) else { return }
        guard poolStarted.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        // Captures the pool, not the cache: the pool's task never keeps an abandoned cache alive.
        let placement = background.spawn { [client] in await client.run() }
        poolPlacementState.withLock { $0 = placement }
    }

    // MARK: - Redis specifics

    /// Sends `PING`: succeeds when Redis answers. ``FallbackCache`` probes with it during an outage.
    public func ping() async throws {
        try checkOpen(nil)
        _ = try await run(RedisCommand("PING", isIdempotent: true), key: nil)
    }

    /// Checks that Redis answers `PING` and accepts the credentials, on a connection of its own that is closed
    /// afterwards: the pool does not start, so a service group that runs the cache later runs the pool.
    package func checkReachable() async throws {
        try checkOpen(nil)
        do {
            if case .cluster(let cluster) = client {
                // Reads the topology from a seed (with the credentials): the pools start with run().
                return try await cluster.refreshTopology()
            }
            let connection = try await RedisConnection.connect(configuration: client.connectionConfiguration)
            do {
                _ = try await connection.execute(RedisCommand("PING", isIdempotent: true))
            } catch {
                await connection.close()
                throw error
            }
            await connection.close()
        } catch {
            throw CacheError.fromRedis(error, key: nil)
        }
    }

    /// Memory, eviction and keyspace figures of the server, from `INFO`.
    public func serverInfo() async throws -> RedisServerInfo {
        try checkOpen(nil)
        let reply = try await run(RedisCommand("INFO", "all", isIdempotent: true), key: nil)
        guard let text = reply.string else { throw Self.unexpected(reply, key: nil) }
        return RedisServerInfo(infoText: text, database: configuration.redisDatabase)
    }

    // MARK: - Internals

    @inline(__always)
    func checkOpen(_ key: String?) throws(CacheError) {
        if closed.load(ordering: .relaxed) { throw CacheError.closed(key: key) }
    }

    /// Throws when the cache is closed or the key is invalid or reserved for tag sets.
    @inline(__always)
    func checkUsable(_ key: String) throws(CacheError) {
        try checkOpen(key)
        try CacheKey.validate(key)
        if key.utf8.first == UInt8(ascii: "_"), key.hasPrefix(RedisKeyspace.tagMarker) {
            throw CacheError(
                code: .invalidKey, key: key,
                message: "Keys starting with \"\(RedisKeyspace.tagMarker)\" are reserved for the Redis cache's tag sets. Use another key."
            )
        }
    }

    /// Runs one command, mapping client errors to ``CacheError``.
    @inline(__always)
    func run(_ command: RedisCommand, key: String?) async throws(CacheError) -> RESPValue {
        startPoolIfNeeded()
        counters.withLock { $0.roundTrips += 1 }
        do {
            return try await client.execute(command)
        } catch {
            throw CacheError.fromRedis(error, key: key)
        }
    }

    /// Counts a round trip made outside the pool: a two-level cache's own write on its tracking connection.
    func recordRoundTrip() {
        counters.withLock { $0.roundTrips += 1 }
    }

    /// Runs commands in one pipeline on one connection (one round trip); the first error reply is thrown.
    func runPipeline(_ commands: [RedisCommand], key: String?) async throws(CacheError) -> [RESPValue] {
        let results: [Result<RESPValue, RedisError>]
        startPoolIfNeeded()
        counters.withLock { $0.roundTrips += 1 }
        do {
            results = try await client.pipeline(commands)
        } catch {
            throw CacheError.fromRedis(error, key: key)
        }
        return try results.map { result throws(CacheError) in
            switch result {
            case .success(let value): return value
            case .failure(let error): throw CacheError.fromRedis(error, key: key)
            }
        }
    }

    /// `SET key value [PX ms]` for a value, and the encoded size.
    func setCommand<Value: Encodable>(_ key: String, _ value: Value, ttl: Duration?) throws(CacheError) -> (command: RedisCommand, bytes: Int) {
        let expiration = try expiration(for: ttl, key: key)
        let bytes = try encode(value, key: key)
        return (RedisCommand.set(keyspace.key(key), value: bytes, expiration: expiration), bytes.count)
    }

    /// The `SET` expiry for `ttl`: the default TTL when `nil`, none for ``Swift/Duration/noExpiry``.
    func expiration(for ttl: Duration?, key: String) throws(CacheError) -> RedisSetExpiration {
        let ttl = ttl ?? configuration.defaultTTL
        guard !ttl.isNoExpiry else { return .none }
        guard ttl > .zero else { throw CacheError.invalidTTL(key: key, ttl: ttl) }
        return .after(ttl)
    }

    func encode<Value: Encodable>(_ value: Value, key: String) throws(CacheError) -> [UInt8] {
        do {
            return try patterns.encode(value, with: codec)
        } catch {
            throw CacheError.encodingFailed(key: key, type: Value.self, underlying: error)
        }
    }

    /// The value in `buffer`; `nil` for a value written by fail-safe or early refresh whose time to live has passed.
    func decode<Value: Decodable>(_ buffer: ByteBuffer, as type: Value.Type, key: String) throws(CacheError) -> Value? {
        do {
            return try patterns.decode(type, from: Array(buffer.readableBytesView), with: codec)
        } catch let error as DecodingError {
            throw CacheError.typeMismatch(key: key, stored: "value that does not decode as \(Value.self)", requested: "\(Value.self)", underlying: error)
        } catch {
            throw CacheError(
                code: .decodingFailed, key: key,
                message: "The codec could not decode the stored bytes as \(Value.self). Was it written with another codec?",
                underlying: error
            )
        }
    }

    /// Decodes the bytes a `GET` returned (`nil`: absent) and counts the read as a hit or a miss. A value fail-safe
    /// keeps past its time to live reads as a miss.
    func decodeRead<Value: Decodable>(_ buffer: ByteBuffer?, as type: Value.Type, key: String) throws(CacheError) -> Value? {
        guard let buffer, let value = try decode(buffer, as: type, key: key) else {
            recordHitsAndMisses(hits: 0, misses: 1)
            return nil
        }
        recordHitsAndMisses(hits: 1, misses: 0)
        return value
    }

    func recordHitsAndMisses(hits hitCount: Int, misses missCount: Int) {
        counters.withLock {
            $0.stats.hits += UInt64(hitCount)
            $0.stats.misses += UInt64(missCount)
        }
    }

    /// `bytes` adds to the reported `size`, which only grows (see ``stats()``).
    func recordSets(_ count: Int, bytes: Int) {
        counters.withLock {
            $0.stats.sets += UInt64(count)
            $0.stats.size += bytes
        }
    }

    func recordDeletes(_ count: Int) {
        counters.withLock { $0.stats.deletes += UInt64(count) }
    }

    /// Removes every key matching `pattern`: `SCAN MATCH` pages (on every primary of a cluster), each unlinked as
    /// it arrives (split per hash slot on a cluster).
    func unlinkMatching(_ pattern: String) async throws(CacheError) {
        startPoolIfNeeded()
        do {
            try await client.scan(match: pattern, count: 1000) { keys in
                counters.withLock { $0.roundTrips += 2 }
                _ = try await client.execute(RedisCommand([ByteBuffer(string: "UNLINK")] + keys))
            }
        } catch {
            throw CacheError.fromRedis(error, key: nil)
        }
    }

    static func unexpected(_ reply: RESPValue, key: String?) -> CacheError {
        CacheError(code: .backendError, key: key, message: "Redis sent an unexpected reply (\(reply)). Check that the address points at a Redis server.")
    }
}
