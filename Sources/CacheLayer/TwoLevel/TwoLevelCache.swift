import CommonSupport
import Foundation
import Logging
import NIOCore
import RedisClient
import Synchronization

/// A near cache: an in-process ``MemoryCache`` (L1) in front of a shared ``RedisCache`` (L2), kept coherent across
/// instances by Redis client-side caching.
///
/// ```swift
/// var configuration = CacheConfiguration.highPerformance(redisAddress: "redis.internal:6379")
/// configuration.namespace = "myapp"
/// configuration.nearCache = NearCacheConfiguration(maxMemorySize: 32 * 1024 * 1024)
/// let cache = try await TwoLevelCache.connect(configuration: configuration)
/// let user = try await cache.getOrSet("user:1", ttl: .seconds(600)) { try await database.user(1) }
/// ```
///
/// - **Reads**: an L1 hit returns at memory speed, without a round trip. A miss reads Redis (`GET` and `PTTL` in one
///   pipeline) and stores the value in L1 for at most the key's remaining TTL in Redis and
///   ``NearCacheConfiguration/maxTTL``. ``getMany(_:as:)`` serves the L1 hits and fetches only the rest, in one
///   round trip.
/// - **Writes, deletes, clear, invalidation**: Redis first, then L1 (also when the Redis call fails: it may have
///   run). A ``set(_:to:ttl:)`` acknowledged by Redis puts its value into L1 when no invalidation of the key arrived
///   while it was sent (see `NearCache.storeWritten` for why that never leaves an older value); other writes remove
///   the key, and the next read fills it from Redis. With pub/sub coherence the value stays until a later write; with
///   tracking on a single Redis server too, since the `set` is sent on the tracking connection, whose tracking has
///   `NOLOOP`, so Redis does not send this write's own invalidation back (through the pool while that connection is
///   down). On a Redis Cluster the write's own invalidation removes the value again when it arrives.
/// - **Coherence** (``NearCacheConfiguration/Coherence/tracking``): a dedicated connection with
///   `CLIENT TRACKING ON BCAST PREFIX <namespace>:` receives an invalidation for every change of a key under the
///   namespace — by any instance or application, and expiries and evictions — and removes it from L1. A read that
///   was in flight when the invalidation of its key arrived does not fill L1 (a per-key generation check). When an
///   invalidation may have been missed (the tracking connection drops or misses its `PING` deadline, its push buffer
///   overflows, Redis restarts, `FLUSHALL`), L1 is emptied and reads go to Redis until tracking is set up again.
///   BCAST needs no server memory per key but sends every instance an invalidation for every write under the
///   namespace, which suits read-heavy data; see the README for the trade-off against the default tracking mode.
/// - **Coherence without client tracking** (``NearCacheConfiguration/Coherence/pubSub``): every change is published
///   on a pub/sub channel the instances subscribe to, under the same rules (fill gate, L1 emptied when a message may
///   have been missed); it sees only the changes made through ``TwoLevelCache`` instances. See
///   <doc:NearCacheCoherence>.
/// - Tags and prefixes work as in ``RedisCache``; a tag invalidation removes the tagged keys from L1 at once.
///
/// ``stats()`` counts hits of either level as hits; ``nearCacheStatistics`` tells them apart.
///
/// - **Outages**: L1 is not a fallback (it is emptied when Redis fails). With ``CacheConfiguration/enableFallback``,
///   ``makeCache(_:codec:logger:)`` puts this cache inside a ``FallbackCache``, which serves outages from a memory
///   copy of its own, refreshed by the reads of this cache that reach Redis; an L1 hit costs it an atomic load, no
///   lock and no write.
public final class TwoLevelCache: Cache {
    /// Single-flight loads, pattern defaults and counters for `getOrSet` and friends.
    public let patterns: CachePatternsState
    /// The shared second level.
    public let redis: RedisCache
    /// The near-cache settings in use.
    public let nearCacheConfiguration: NearCacheConfiguration

    let near: NearCache
    /// L1's memory cache (`near.memory`), unretained: `near` holds it as long as this cache lives. A hit then changes
    /// no reference count; a retain and a release of the memory cache around every lookup, on one counter shared by
    /// every core, cost about a tenth of the hit path's throughput at two threads.
    private let unretainedMemory: Unmanaged<MemoryCache>
    /// Where invalidations from other instances come from: client tracking or the pub/sub backplane.
    private let tracker: (any InvalidationSource)?
    /// With pub/sub coherence: the backplane this instance publishes its changes on.
    let backplane: InvalidationBackplane?
    /// With tracking coherence on a single Redis server: the tracker whose connection carries this instance's `set`s
    /// (`NOLOOP`, so they do not come back as invalidations of their own values in L1).
    private let ownWrites: InvalidationTracker?
    private let trackerTask: Task<Void, Never>?
    private let closed = Atomic<Bool>(false)
    /// Hits are counted once each, by level. L1's are the hits L1 (a memory cache) counts itself under its shard's
    /// lock, so an L1 hit pays no counter of its own: one shared atomic, added to by every task on every core, cost
    /// more than the rest of the hit.
    private let farHits = Atomic<UInt64>(0)
    private let misses = Atomic<UInt64>(0)
    private let sets = Atomic<UInt64>(0)
    private let deletes = Atomic<UInt64>(0)
    private let fillHook = Locked<(@Sendable (String) async -> Void)?>(nil)
    /// Concurrent L1 misses of a key share one read of Redis (see ``NearCacheMissFlight``).
    let missFlights = NearCacheMissFlights()

    /// Creates a two-level cache and waits until Redis answers and, with tracking coherence, until tracking is set
    /// up (at most ``CacheConfiguration/connectTimeout``).
    ///
    /// Uses the Redis fields of `configuration` as ``RedisCache`` does, ``CacheConfiguration/evictionStrategy`` for
    /// L1, and ``CacheConfiguration/nearCache`` (its defaults when `nil`).
    ///
    /// - Throws: ``CacheError/Code/invalidConfiguration`` for an invalid configuration;
    ///   ``CacheError/Code/authenticationFailed``, ``CacheError/Code/unavailable`` or ``CacheError/Code/timeout``
    ///   when Redis cannot be used; ``CacheError/Code/unsupported`` when Redis refuses client tracking (Redis < 6,
    ///   RESP2 only, or the command disabled): use ``NearCacheConfiguration/Coherence/ttlOnly`` there.
    public static func connect(
        configuration: CacheConfiguration,
        codec: any CacheCodec = JSONCacheCodec(),
        logger: Logger = Logger(label: "cachelayer.two-level")
    ) async throws -> TwoLevelCache {
        try await opened(TwoLevelCache(configuration: configuration, codec: codec, logger: logger)) { cache in
            try await cache.redis.ping()
            try await cache.waitUntilCoherent(timeout: configuration.connectTimeout)
        }
    }

    /// Creates a two-level cache without waiting for Redis; until tracking is set up, reads go to Redis.
    ///
    /// Prefer ``connect(configuration:codec:logger:)``, which reports a wrong address or an unsupported server at once.
    public convenience init(
        configuration: CacheConfiguration,
        codec: any CacheCodec = JSONCacheCodec(),
        logger: Logger = Logger(label: "cachelayer.two-level")
    ) throws {
        var configuration = configuration
        configuration.backend = .redis
        let nearConfiguration = configuration.nearCache ?? NearCacheConfiguration()
        try nearConfiguration.validate()
        let redis = try RedisCache(configuration: configuration, codec: codec, logger: logger)
        var memoryConfiguration = configuration
        memoryConfiguration.backend = .memory
        memoryConfiguration.nearCache = nil
        // Inside a FallbackCache, the fallback is the wrapper's, not L1's.
        memoryConfiguration.enableFallback = false
        memoryConfiguration.maxMemorySize = nearConfiguration.maxMemorySize
        memoryConfiguration.defaultTTL = nearConfiguration.maxTTL
        // L1 reads the coarse clock: its read is most of what a hit on an entry with a TTL costs beyond one without,
        // and every L1 entry has a TTL (maxTTL at least). NearCache shortens TTLs by its resolution.
        let memory = try MemoryCache(
            configuration: memoryConfiguration, codec: codec, logger: logger, clock: CoarseMonotonicCacheClock(),
            shardCount: nil, startSweeper: true
        )
        self.init(redis: redis, memory: memory, configuration: nearConfiguration, logger: logger)
    }

    /// Creates a two-level cache over the given levels, whose patterns read `wallClock`; for tests.
    package init(
        redis: RedisCache,
        memory: MemoryCache,
        configuration: NearCacheConfiguration,
        logger: Logger,
        wallClock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.redis = redis
        self.nearCacheConfiguration = configuration
        let near = NearCache(memory: memory, maxTTL: configuration.maxTTL, isCoherent: configuration.coherence == .ttlOnly)
        self.near = near
        self.unretainedMemory = Unmanaged.passUnretained(memory)
        var logger = logger
        logger[metadataKey: "cachelayer.cache"] = .string(redis.configuration.name)
        self.patterns = CachePatternsState(
            name: redis.configuration.name, backend: "two-level", defaultTTL: redis.configuration.defaultTTL,
            logger: logger, wallClock: wallClock
        )
        // The sources hold the near cache (and the backplane the Redis cache to publish with), not this cache, so an
        // abandoned cache is freed and its deinit ends them.
        switch configuration.coherence {
        case .tracking:
            let tracker: any InvalidationSource
            if case .cluster(let cluster) = redis.client {
                // A key's invalidations come from the node serving its slot: one tracking connection per node. Writes
                // go through the cluster's pools (routing, redirections), so their echoes arrive.
                tracker = ClusterInvalidationTracker(
                    cluster: cluster, prefix: redis.keyspace.prefix, nearCache: near,
                    pingInterval: configuration.trackingPingInterval, logger: logger
                )
                self.ownWrites = nil
            } else {
                let single = InvalidationTracker(
                    connectionConfiguration: redis.client.connectionConfiguration, prefix: redis.keyspace.prefix,
                    nearCache: near, pingInterval: configuration.trackingPingInterval, logger: logger, carriesWrites: true
                )
                tracker = single
                self.ownWrites = single
            }
            self.tracker = tracker
            self.backplane = nil
            self.trackerTask = Task { await tracker.run() }
        case .pubSub:
            let channel = configuration.backplaneChannel(prefix: redis.keyspace.prefix)
            var clusterNodes: (@Sendable () async -> [RedisConnectionConfiguration])?
            if case .cluster(let cluster) = redis.client {
                // Redis Cluster forwards every PUBLISH to every node, so one subscriber on any node hears them all;
                // when that node is lost, the next subscription goes to another.
                clusterNodes = {
                    if cluster.slotMap.shards.isEmpty { try? await cluster.refreshTopology() }
                    return cluster.slotMap.primaries.map { cluster.connectionConfiguration(for: $0) }
                }
            }
            let backplane = InvalidationBackplane(
                connectionConfiguration: redis.client.connectionConfiguration, channel: channel, nearCache: near,
                pingInterval: configuration.trackingPingInterval, logger: logger, clusterNodes: clusterNodes
            ) { [redis] message in
                _ = try await redis.run(RedisCommand("PUBLISH", channel, message), key: nil)
            }
            self.tracker = backplane
            self.backplane = backplane
            self.ownWrites = nil
            self.trackerTask = Task { await backplane.run() }
        case .ttlOnly:
            self.tracker = nil
            self.backplane = nil
            self.ownWrites = nil
            self.trackerTask = nil
        }
    }

    deinit {
        tracker?.shutdown()
        trackerTask?.cancel()
    }

    // MARK: - Cache

    @inlinable
    public func get<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> Value? {
        // Inlined into the caller like MemoryCache.get, so an L1 hit makes no generic call across modules.
        let found = try nearLookup(key, type: Value.self)
        // Consumed, so that the hit's value moves out instead of being copied (a retain) and released with the lookup.
        if case .hit(let value) = consume found {
            // L1 checked that the dynamic type is exactly `Value`, so this cast cannot fail.
            return value as? Value
        }
        return try await getFromRedis(key, as: type)
    }

    /// The L1 lookup of ``get(_:as:)`` (L1 counts the hit). A value of another type in L1 is not a hit: Redis, the
    /// truth, decides.
    @usableFromInline
    func nearLookup(_ key: String, type: any Any.Type) throws(CacheError) -> MemoryLookup {
        try checkOpen(key)
        return try unretainedMemory._withUnsafeGuaranteedRef { memory in
            Result { () throws(CacheError) in try memory.sampledLookup(key, type: type) }
        }.get()
    }

    /// Reads served by L1: the hits L1 counted.
    private var nearHits: UInt64 { near.memory.currentStats().hits }

    /// The L1 miss path of ``get(_:as:)``: a read through Redis that may fill L1.
    @usableFromInline
    func getFromRedis<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> Value? {
        try await readFromRedis(key, as: type, needsTTL: false).value
    }

    /// The L1 miss path, counted, with what Redis said of the value's remaining TTL. A ``FallbackCache`` in front of
    /// this cache calls it after its own L1 lookup missed, to refresh its memory copy from reads that reached Redis
    /// only (an L1 hit writes nothing). `needsTTL` asks for the TTL also while L1 is not coherent (a plain `GET`
    /// otherwise).
    func readFromRedis<Value: Codable & Sendable>(_ key: String, as type: Value.Type, needsTTL: Bool) async throws -> FarRead<Value> {
        let read = try await readThrough(key, as: type, needsTTL: needsTTL)
        if read.value == nil { misses.add(1, ordering: .relaxed) } else { farHits.add(1, ordering: .relaxed) }
        return read
    }

    public func set<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?) async throws {
        try checkOpen(key)
        // Taken before the write is sent: what L1 may do with the value depends on what arrives from then on.
        let stamp = near.stamp(key)
        let isEnvelope = value is any AnyCacheEnvelope
        var sequence: UInt64?
        do {
            if isEnvelope {
                try await redis.set(key, to: value, ttl: ttl)
            } else {
                sequence = try await setKeptInL1(key, value, ttl: ttl)
            }
        } catch {
            await changed(.keys([key]))
            throw error
        }
        sets.add(1, ordering: .relaxed)
        if isEnvelope {
            // Fail-safe and early-refresh values expire logically on their own clock; L1 never holds them.
            near.invalidate(key)
        } else {
            let ttl = ttl ?? redis.configuration.defaultTTL
            near.storeWritten(key, value, stamp: stamp, sequence: sequence, ttl: ttl.isNoExpiry ? near.maxTTL : ttl)
        }
        await backplane?.announce(.keys([key]))
    }

    /// The Redis write of a ``set(_:to:ttl:)`` whose value enters L1: on the tracking connection while it is set up
    /// (`NOLOOP` spares L1 the echo; see `InvalidationTracker.write(_:key:)` for its errors), through the pool otherwise.
    /// Returns the write's place in the send order of the tracking connection, `nil` when it went through the pool.
    private func setKeptInL1<Value: Codable & Sendable>(_ key: String, _ value: Value, ttl: Duration?) async throws -> UInt64? {
        guard let ownWrites else {
            try await redis.set(key, to: value, ttl: ttl)
            return nil
        }
        try redis.checkUsable(key)
        let command = try redis.setCommand(key, value, ttl: ttl)
        let sequence = try await ownWrites.write(command.command, key: key)
        if sequence != nil {
            redis.recordRoundTrip()
        } else {
            _ = try await redis.run(command.command, key: key)
        }
        redis.recordSets(1, bytes: command.bytes)
        return sequence
    }

    public func delete(_ key: String) async throws {
        try checkOpen(key)
        try await changing(.keys([key])) {
            try await redis.delete(key)
            deletes.add(1, ordering: .relaxed)
        }
    }

    public func exists(_ key: String) async throws -> Bool {
        try checkOpen(key)
        if try near.memory.containsValue(key) { return true }
        return try await redis.exists(key)
    }

    /// Removes this cache's keys from Redis (as ``RedisCache/clear()``), then empties L1.
    public func clear() async throws {
        try checkOpen(nil)
        try await changing(.all) { try await redis.clear() }
    }

    /// Hits of either level, misses of both, this instance's sets and deletes; `size`, `entryCount`, `evictions`
    /// and `expirations` are those of L1.
    public func stats() async -> CacheStats {
        let memory = near.memory.currentStats()
        return CacheStats(
            hits: memory.hits + farHits.load(ordering: .relaxed),
            misses: misses.load(ordering: .relaxed),
            sets: sets.load(ordering: .relaxed),
            deletes: deletes.load(ordering: .relaxed),
            evictions: memory.evictions,
            expirations: memory.expirations,
            size: memory.size,
            entryCount: memory.entryCount
        )
    }

    /// Counters of the near cache: how reads were served and how coherence was kept.
    public var nearCacheStatistics: NearCacheStatistics {
        let counters = near.counters()
        return NearCacheStatistics(
            nearHits: nearHits,
            fills: counters.fills,
            refusedFills: counters.refusedFills,
            invalidatedKeys: counters.invalidatedKeys,
            flushes: counters.flushes,
            invalidationMessages: tracker?.invalidations ?? 0,
            trackingSetUps: tracker?.establishments ?? 0,
            failedPublishes: backplane?.failedPublishes ?? 0,
            coalescedMisses: missFlights.coalesced,
            isCoherent: near.isCoherent
        )
    }

    /// Publishes invalidations still queued (pub/sub coherence, at most 1 s), stops tracking, closes the Redis pool
    /// and L1. Later calls throw ``CacheError/Code/closed``; closing twice is
    /// allowed.
    public func close() async throws {
        if !closed.exchange(true, ordering: .acquiringAndReleasing) {
            // Invalidations whose publication failed get one last chance while the pool is still open.
            await backplane?.drain(timeout: min(redis.configuration.writeTimeout, .seconds(1)))
            tracker?.shutdown()
            trackerTask?.cancel()
        }
        await trackerTask?.value
        try await redis.close()
        try await near.memory.close()
    }

    /// Runs the background work of both levels (Redis's connection pool, L1's sweeper) until graceful shutdown,
    /// cancellation or ``close()``, as ``CacheService`` expects. The tracking connection's loop is owned by the cache
    /// itself, from creation to ``close()`` (it holds the near cache, not the cache, so an abandoned cache is freed).
    public func run() async throws {
        let redis = self.redis
        let memory = near.memory
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await redis.run() }
            group.addTask { try await memory.run() }
            try await group.waitForAll()
        }
    }

    // MARK: - Internals

    /// Runs a write to Redis, then removes what it changed from L1 and, with pub/sub coherence, tells the other
    /// instances; both also when the write failed, since a command that timed out may still have run.
    func changing<T>(_ change: NearCacheChange, _ write: () async throws -> T) async throws -> T {
        let result: Result<T, any Error>
        do {
            result = .success(try await write())
        } catch {
            result = .failure(error)
        }
        await changed(change)
        return try result.get()
    }

    /// Removes what `change` names from L1 and, with pub/sub coherence, publishes it for the other instances.
    func changed(_ change: NearCacheChange) async {
        if case .keys(let keys) = change, keys.isEmpty { return }
        switch change {
        case .keys(let keys): near.invalidate(keys)
        case .prefix(let prefix): near.invalidate(prefix: prefix)
        case .all: near.flush()
        }
        await backplane?.announce(change)
    }

    /// Keys named by the invalidation messages received so far; tests wait on it for another instance's write.
    package var receivedInvalidationKeys: UInt64 { tracker?.invalidationKeys ?? 0 }

    /// The `CLIENT ID` of the tracking (or backplane subscriber) connection while set up; tests and the coherence demo
    /// kill it.
    package var trackingClientID: Int? { tracker?.clientID }

    /// The value L1 holds for `key`, without going to Redis or counting a hit; for tests and the coherence demo.
    package func nearValueForInspection<Value: Sendable>(_ key: String, as type: Value.Type) -> Value? {
        (try? near.memory.peekValue(key))??.value as? Value
    }

    /// Runs `hook` after each read from Redis and before its result may fill L1, so tests can deliver an
    /// invalidation in between.
    package func setFillHook(_ hook: (@Sendable (String) async -> Void)?) {
        fillHook.withLock { $0 = hook }
    }

    /// Waits until L1 may be filled (tracking set up), at most `timeout`.
    package func waitUntilCoherent(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while !near.isCoherent {
            let failure = tracker?.failure
            if failure?.refusedByServer == true || ContinuousClock.now >= deadline {
                throw CacheError(
                    code: failure?.refusedByServer == true ? .unsupported : .unavailable,
                    message: backplane == nil
                        ? "Redis client tracking, which keeps the near cache coherent, could not be set up\(failure.map { ": \($0.description)" } ?? " within \(timeout)"). Use Redis 6 or later with CLIENT TRACKING allowed for this user, or set nearCache.coherence = .pubSub or .ttlOnly (or nearCache = nil)."
                        : "The near-cache backplane subscription, which keeps the near cache coherent, could not be set up\(failure.map { ": \($0.description)" } ?? " within \(timeout)"). Check that this user may SUBSCRIBE and PUBLISH on the channel, or set nearCache.coherence = .ttlOnly (or nearCache = nil)."
                )
            }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    @inline(__always)
    func checkOpen(_ key: String?) throws(CacheError) {
        if closed.load(ordering: .relaxed) { throw CacheError.closed(key: key) }
    }

    /// The L1 value of `key` (a value in a fail-safe envelope reads as itself, as in ``MemoryCache/get(_:as:)``);
    /// another type stored there counts as a miss (Redis, the truth, decides).
    @inline(__always)
    func nearValue<Value: Codable & Sendable>(_ key: String, as type: Value.Type) throws(CacheError) -> Value? {
        do {
            return try near.memory.getValue(key, as: type)
        } catch where error.code == .typeMismatch {
            return nil
        }
    }

    /// Reads `key` from Redis with its remaining TTL in one round trip, and fills L1 unless an invalidation of it
    /// arrived meanwhile. Concurrent misses of the key with the same stamp share one read (``NearCacheMissFlight``).
    func readThrough<Value: Codable & Sendable>(_ key: String, as type: Value.Type, needsTTL: Bool) async throws -> FarRead<Value> {
        try redis.checkUsable(key)
        guard let stamp = near.stamp(key) else {
            // Not coherent (tracking not set up): L1 may not be filled, so a plain GET will do.
            if needsTTL {
                let entry = try await redis.getWithTTL(key, as: type)
                return FarRead(value: entry?.value, ttl: entry?.ttl)
            }
            return FarRead(value: try await redis.get(key, as: type), ttl: nil)
        }
        let flight = NearCacheMissFlight(key: key, valueType: ObjectIdentifier(Value.self), stamp: stamp)
        return try await missFlights.value(flight) { try await readAndFill(key, as: type, stamp: stamp) } ?? FarRead(value: nil, ttl: nil)
    }

    /// One read of a ``readThrough(_:as:needsTTL:)`` flight: `GET` and `PTTL`, then the fill under `stamp`.
    private func readAndFill<Value: Codable & Sendable>(
        _ key: String, as type: Value.Type, stamp: NearCacheFillGate.Stamp
    ) async throws -> FarRead<Value> {
        let redisKey = redis.keyspace.key(key)
        let replies = try await redis.runPipeline(
            [RedisCommand.get(redisKey), RedisCommand("PTTL", redisKey, isIdempotent: true)], key: key
        )
        guard replies.count == 2 else { throw RedisCache.unexpected(.array(replies), key: key) }
        guard let buffer = replies[0].buffer else {
            guard replies[0].isNull else { throw RedisCache.unexpected(replies[0], key: key) }
            redis.recordHitsAndMisses(hits: 0, misses: 1)
            near.readReturned(key)
            return FarRead(value: nil, ttl: nil)
        }
        // nil: a fail-safe or early-refresh value past its logical expiry, which plain reads see as a miss.
        guard let value = try redis.decode(buffer, as: type, key: key) else {
            redis.recordHitsAndMisses(hits: 0, misses: 1)
            near.readReturned(key)
            return FarRead(value: nil, ttl: nil)
        }
        redis.recordHitsAndMisses(hits: 1, misses: 0)
        if let hook = fillHook.withLock({ $0 }) { await hook(key) }
        if Self.holdsEnvelope(buffer) {
            near.readReturned(key)
        } else {
            fill(key, value, stamp: stamp, pttl: replies[1].int)
        }
        // PTTL -2: the key expired between the two commands; the value is returned (as a plain read would), its TTL
        // is zero.
        return FarRead(value: value, ttl: replies[1].int.map { RedisCache.ttl(fromPTTL: $0) ?? .zero })
    }

    /// Whether `buffer` holds a fail-safe or early-refresh envelope. Such a value expires logically before Redis
    /// drops it (its grace period), so it is not copied into L1, which would serve it past that expiry.
    static func holdsEnvelope(_ buffer: ByteBuffer) -> Bool {
        guard buffer.readableBytesView.first == 0 else { return false }
        return EnvelopeFraming.isFramed(Array(buffer.readableBytesView.prefix(EnvelopeFraming.headerSize)))
    }

    /// Fills L1 from a `PTTL` reply: -1 (no expiry) keeps the value up to the cap; -2 (gone) or 0 not at all (the key
    /// then leaves L1, as after any read that does not fill it: ``NearCache/readReturned(_:)``).
    func fill<Value: Codable & Sendable>(_ key: String, _ value: Value, stamp: NearCacheFillGate.Stamp, pttl: Int?) {
        guard let pttl, pttl > 0 || pttl == -1 else {
            near.readReturned(key)
            return
        }
        near.fill(key, value, stamp: stamp, remainingMilliseconds: pttl == -1 ? nil : Int64(pttl))
    }

    /// Counts reads served by Redis; L1 counts its own hits.
    func recordHits(_ farCount: Int, misses missCount: Int) {
        if farCount > 0 { farHits.add(UInt64(farCount), ordering: .relaxed) }
        if missCount > 0 { misses.add(UInt64(missCount), ordering: .relaxed) }
    }

    func recordSets(_ count: Int) { sets.add(UInt64(count), ordering: .relaxed) }
    func recordDeletes(_ count: Int) { deletes.add(UInt64(count), ordering: .relaxed) }
}

/// How a ``TwoLevelCache``'s near cache served reads and kept coherent; counters only grow.
public struct NearCacheStatistics: Sendable, Hashable, Codable {
    /// Reads served by L1 without a round trip.
    public var nearHits: UInt64
    /// Values stored in L1: read from Redis, or written by this instance.
    public var fills: UInt64
    /// Values read from Redis that were not stored in L1 because an invalidation or flush arrived while they were
    /// read (or the value did not fit). Writes that could not enter L1 count as invalidated keys.
    public var refusedFills: UInt64
    /// Keys removed from L1 by this instance's writes and by invalidations.
    public var invalidatedKeys: UInt64
    /// Times L1 was emptied: `clear()`, `FLUSHALL`, a lost tracking connection.
    public var flushes: UInt64
    /// Invalidation messages received from Redis (with pub/sub coherence: from other instances).
    public var invalidationMessages: UInt64
    /// Times client tracking (or the pub/sub subscription) was set up (1 + reconnections; on a Redis Cluster, tracking
    /// counts once per node).
    public var trackingSetUps: UInt64
    /// With pub/sub coherence: invalidations whose publication failed and was queued to be retried.
    public var failedPublishes: UInt64
    /// L1 misses that waited for a read of the same key already in flight instead of reading Redis themselves.
    public var coalescedMisses: UInt64
    /// Whether L1 is in use now (tracking set up, or TTL-only coherence).
    public var isCoherent: Bool
}

/// What a read of Redis for an L1 miss got: the value, and its remaining TTL in Redis (`nil` when unknown,
/// ``Swift/Duration/noExpiry`` when the key has none, zero when it expired between `GET` and `PTTL`).
struct FarRead<Value: Sendable>: Sendable {
    var value: Value?
    var ttl: Duration?
}
