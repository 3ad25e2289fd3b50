import CommonSupport
import Foundation
import Logging
import Synchronization

/// A cache in this process's memory: sharded, with per-key TTLs, a hard byte limit and eviction.
///
/// Values are kept as Swift values, so reads neither decode nor allocate; only their encoded size (the bytes
/// the configured codec would produce, as the specification counts JSON bytes) is charged against
/// ``CacheConfiguration/maxMemorySize``. The bookkeeping per entry (key table, slot record, policy links, expiry
/// record: about 200 bytes with 100,000 entries, plus the key) is not counted: `size` in ``CacheStats`` is
/// encoded bytes only.
///
/// Keys are spread over up to 16 shards, each behind its own lock with an equal share of the byte limit,
/// so threads rarely wait for each other. Caches smaller than 8 MiB use one shard. A value must fit in one
/// shard's share (and encode to less than 4 GiB); anything larger throws ``CacheError/Code/valueTooLarge`` with
/// the limit in the message.
///
/// An entry is never returned after its TTL by more than one tick of the system's coarse clock (1 to 4 ms on
/// Linux, which reads for its expiry check cost a fifth of the precise clock's), and never taken for expired before it.
///
/// When a write would exceed the share, expired entries go first (soonest expiry first), then the entries
/// chosen by ``CacheConfiguration/evictionStrategy``. A background loop removes expired entries every
/// ``CacheConfiguration/sweepInterval``: in ``run()`` while a ``CacheService`` runs the cache, in a task of the
/// cache's own otherwise, until ``close()``.
public final class MemoryCache: Cache {
    /// The smallest byte share per shard the automatic shard count accepts; keeps shares large next to
    /// typical values.
    static let minimumAutomaticShardBudget = 4 * 1024 * 1024
    /// The most shards chosen automatically; more does not help on the core counts servers give one process.
    static let maximumAutomaticShardCount = 16

    private let storage: ShardedMemoryStorage
    private let clock: CacheClockSource
    private let codec: any CacheCodec
    /// Whether ``JSONSize`` gives the codec's exact sizes (true only for ``JSONCacheCodec``).
    private let usesJSONSizes: Bool
    private let configuration: CacheConfiguration
    /// `configuration.defaultTTL` in nanoseconds, `nil` for no expiry: computed once, since `Duration` arithmetic
    /// on every write cost more than the rest of the expiry computation.
    private let defaultTTLNanoseconds: UInt64?
    private let logger: Logger
    private let closed = Atomic<Bool>(false)
    /// The sweeper loop, run by ``run()`` or a task of the cache's own.
    private let background: CacheBackgroundWork
    /// Single-flight loads, pattern defaults and counters for `getOrSet` and friends.
    public let patterns: CachePatternsState
    /// `patterns.latency`, which every call checks, unretained (`patterns` holds it for the cache's life) so that
    /// the check does not retain and release it: two threads retaining one object make its reference count a
    /// contended cache line.
    private let latency: Unmanaged<CacheLatencySampler>

    /// Creates a memory cache.
    ///
    /// Uses the configuration's `maxMemorySize`, `defaultTTL`, `sweepInterval`, `evictionStrategy` and `name`;
    /// the Redis fields are ignored.
    ///
    /// - Throws: ``CacheError/Code/invalidConfiguration`` when the configuration is invalid.
    public convenience init(
        configuration: CacheConfiguration = .default,
        codec: any CacheCodec = JSONCacheCodec(),
        logger: Logger = Logger(label: "cachelayer.memory")
    ) throws {
        try self.init(configuration: configuration, codec: codec, logger: logger, clock: MonotonicCacheClock(), shardCount: nil, startSweeper: true)
    }

    /// Creates a memory cache with an injected clock and shard count, for tests, benchmarks and trace replay.
    ///
    /// - Parameters:
    ///   - clock: the time source for TTLs.
    ///   - shardCount: rounded up to a power of two and capped at `maxMemorySize`; `nil` picks up to 16
    ///     shards of at least 4 MiB each.
    ///   - startSweeper: whether the sweeper (which calls ``sweepExpired()``) runs in a task of the cache's own while
    ///     nobody calls ``run()``; ``run()`` runs it either way.
    package init(
        configuration: CacheConfiguration,
        codec: any CacheCodec = JSONCacheCodec(),
        logger: Logger = Logger(label: "cachelayer.memory"),
        clock: any CacheClock,
        shardCount: Int?,
        startSweeper: Bool,
        wallClock: (@Sendable () -> Date)? = nil
    ) throws {
        try configuration.validate()
        let shards = Self.resolvedShardCount(shardCount, maxMemorySize: configuration.maxMemorySize)
        self.storage = ShardedMemoryStorage(maxMemorySize: configuration.maxMemorySize, shardCount: shards, policy: configuration.evictionStrategy.kind)
        self.clock = CacheClockSource(clock)
        self.codec = codec
        self.usesJSONSizes = codec is JSONCacheCodec
        self.configuration = configuration
        // `validate()` made sure the default TTL is positive.
        self.defaultTTLNanoseconds = configuration.defaultTTL.isNoExpiry ? nil : max(1, configuration.defaultTTL.saturatingNanoseconds)
        var logger = logger
        logger[metadataKey: "cachelayer.cache"] = .string(configuration.name)
        self.logger = logger
        self.patterns = CachePatternsState(
            name: configuration.name, backend: "memory", defaultTTL: configuration.defaultTTL, logger: logger,
            flightTimeout: configuration.flightTimeout, wallClock: wallClock ?? { Date() }
        )
        self.latency = Unmanaged.passUnretained(patterns.latency)
        self.background = CacheBackgroundWork(startsOwnLoops: startSweeper)
        let interval = configuration.sweepInterval.boundedForSleep
        // The loop holds the storage, not the cache, so an abandoned cache is freed and its deinit cancels the loop.
        // Not a weak reference to the cache either: a weak reference gives an object a side table, and every retain
        // and release of it then takes the slow path (a near cache retains its memory cache on each hit).
        let storage = self.storage
        let clock = self.clock
        let sweepLogger = self.logger
        background.addLoop {
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: interval)
                } catch {
                    return
                }
                Self.sweepExpired(storage, clock: clock, logger: sweepLogger)
            }
        }
    }

    deinit {
        background.cancelOwnTasks()
    }

    /// Whether the sweeper runs (in a task of the cache's own or in ``run()``), not yet stopped by ``close()``.
    package var isSweeperRunning: Bool { background.isRunningLoops }

    /// The number of shards in use.
    package var shardCount: Int { storage.shardCount }

    static func resolvedShardCount(_ requested: Int?, maxMemorySize: Int) -> Int {
        var count: Int
        if let requested {
            count = 1
            while count < requested { count <<= 1 }
        } else {
            count = maximumAutomaticShardCount
            while count > 1, maxMemorySize / count < minimumAutomaticShardBudget { count >>= 1 }
        }
        // Every shard needs a budget of at least one byte.
        while count > 1, count > maxMemorySize { count >>= 1 }
        return count
    }

    // MARK: - Cache

    // The async entry points are inlinable so that a call from another module is a plain synchronous call into
    // the cache, not an out-of-line async call (a task-allocator frame, an executor check) into unspecialised
    // generic code; the work happens in the non-generic `sampledLookup`.
    @inlinable
    public func get<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> Value? {
        try value(found: sampledLookup(key, type: Value.self), key, as: Value.self)
    }

    /// The value a read that found `found` returns: a hit's value, `nil` for a miss, and for a value of another type
    /// the value inside a fail-safe envelope (``valueInEnvelope(_:stored:as:)``).
    @inlinable @inline(__always)
    func value<Value: Codable & Sendable>(found: consuming MemoryLookup, _ key: String, as type: Value.Type) throws(CacheError) -> Value? {
        // Consumed, so that the hit's value moves out of the lookup instead of being copied (a retain) and the
        // lookup destroyed (a release).
        switch consume found {
        case .hit(let value):
            // The shard checked that the dynamic type is exactly `Value`, so this cast cannot fail.
            return value as? Value
        case .miss:
            return nil
        case .otherType(let stored):
            return try valueInEnvelope(key, stored: stored, as: Value.self)
        }
    }

    /// The slow path of a read that found a value of another type: a value fail-safe or early refresh stored in an
    /// envelope reads as itself (or a miss past its time to live); anything else is a type mismatch.
    @usableFromInline
    func valueInEnvelope<Value: Codable & Sendable>(_ key: String, stored: any Any.Type, as type: Value.Type) throws(CacheError) -> Value? {
        guard stored == CacheEnvelope<Value>.self else {
            throw CacheError.typeMismatch(key: key, stored: String(describing: stored), requested: String(describing: Value.self))
        }
        // Read again as the envelope, so the hit is counted and the eviction policy sees it.
        guard case .hit(let envelope) = try lookup(key, type: CacheEnvelope<Value>.self) else { return nil }
        guard let value = try patterns.value(in: envelope, as: Value.self, key: key) else {
            // Kept only for fail-safe: a miss for a plain read.
            storage.recountHitAsMiss(HashedKey(key))
            return nil
        }
        return value
    }

    @inlinable
    public func set<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?) async throws {
        try sampledSet(key, value, ttl: ttl, tags: [])
    }

    /// Stores `value` under `key` attached to `tags`; see ``invalidate(tag:)``.
    ///
    /// The tags replace those of an earlier value under `key` (storing without tags detaches the key from
    /// every tag). Whenever the entry goes (overwritten, deleted, expired, evicted, invalidated), its tags
    /// forget it, so the tag index only ever holds live entries.
    @inlinable
    public func set<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?, tags: Set<String>) async throws {
        try sampledSet(key, value, ttl: ttl, tags: tags)
    }

    /// ``setValue(_:_:ttl:tags:)``, timed when the latency sampler says so.
    @usableFromInline
    func sampledSet<Value: Codable & Sendable>(_ key: String, _ value: Value, ttl: Duration?, tags: Set<String>) throws(CacheError) {
        guard latency._withUnsafeGuaranteedRef({ $0.shouldSample() }) else { return try setValue(key, value, ttl: ttl, tags: tags) }
        try timedSet(key, value, ttl: ttl, tags: tags)
    }

    /// The sampled call of ``sampledSet(_:_:ttl:tags:)``, apart so that the common path does not set up a clock
    /// instant (a resilient type, whose stack space is sized at run time).
    @inline(never)
    private func timedSet<Value: Codable & Sendable>(_ key: String, _ value: Value, ttl: Duration?, tags: Set<String>) throws(CacheError) {
        let start = ContinuousClock.now
        defer { patterns.latency.recordSet(.now - start) }
        try setValue(key, value, ttl: ttl, tags: tags)
    }

    /// Removes every entry stored with `tag`, counted as deletes. Costs O(entries with the tag): each shard
    /// keeps an index from tag to entries.
    public func invalidate(tag: String) async throws {
        try invalidateValues(tag: tag)
    }

    /// Removes every entry whose key starts with `prefix` (compared byte for byte in UTF-8), counted as deletes.
    ///
    /// There is no ordered key index, because keeping one would slow down every `set`: this scans every
    /// shard's keys, holding one shard's lock at a time, so it costs O(entries in the cache). Reads and
    /// writes to other shards proceed meanwhile. For frequent invalidation of small groups, prefer tags.
    public func invalidate(prefix: String) async throws {
        try invalidateValues(prefix: prefix)
    }

    public func delete(_ key: String) async throws {
        try deleteValue(key)
    }

    public func exists(_ key: String) async throws -> Bool {
        try containsValue(key)
    }

    public func clear() async throws {
        try removeAllValues()
    }

    public func stats() async -> CacheStats {
        currentStats()
    }

    /// Stops the sweeper (waiting for a task of the cache's own to finish, and making ``run()`` return). Entries stay
    /// in memory until the cache is released.
    public func close() async throws {
        closed.store(true, ordering: .releasing)
        await background.close()
    }

    /// Runs the sweeper until graceful shutdown, cancellation or ``close()``; see ``Cache/run()``.
    public func run() async throws {
        await background.run()
    }

    // MARK: - Conditional writes, TTLs and bytes

    /// Stores `value` only when no live value is under `key`; the check and the write happen under the key's
    /// shard lock, so of concurrent calls exactly one stores.
    @discardableResult
    public func setIfAbsent<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?) async throws -> Bool {
        try checkOpen(key)
        try CacheKey.validate(key)
        let size = try encodedSize(of: value, key: key)
        try checkFits(key, size: size)
        let expiresAt = try expiry(for: ttl, key: key)
        guard let write = storage.setIfAbsent(HashedKey(key), value: value, size: size, expiresAt: expiresAt, clock: clock) else {
            return false
        }
        try finish(write, key: key, size: size)
        return true
    }

    /// Stores `value` with the expiry of the live value it replaces (read under the shard lock); without one,
    /// the value never expires.
    public func setKeepingTTL<Value: Codable & Sendable>(_ key: String, to value: Value) async throws {
        try checkOpen(key)
        try CacheKey.validate(key)
        let size = try encodedSize(of: value, key: key)
        try checkFits(key, size: size)
        try finish(storage.setKeepingExpiry(HashedKey(key), value: value, size: size, clock: clock), key: key, size: size)
    }

    /// The remaining time to live of the value under `key`, computed from its expiry; ``Swift/Duration/noExpiry``
    /// when it never expires, `nil` when absent or expired.
    public func ttl(_ key: String) async throws -> Duration? {
        guard let (_, remaining) = try peekValue(key) else { return nil }
        return remaining.map { .nanoseconds(Int64(clamping: $0)) } ?? .noExpiry
    }

    /// The value under `key` and its remaining time to live, read under one shard lock. Counts a hit or a miss.
    public func getWithTTL<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> (value: Value, ttl: Duration)? {
        try checkOpen(key)
        try CacheKey.validate(key)
        let (read, expiresAt) = storage.getWithExpiry(HashedKey(key), clock: clock, type: ObjectIdentifier(Value.self))
        switch read {
        case .hit(let value):
            // The shard checked that the dynamic type is exactly `Value`.
            guard let value = value as? Value else { return nil }
            guard expiresAt != .max else { return (value, .noExpiry) }
            let now = clock.now()
            return (value, .nanoseconds(Int64(clamping: expiresAt > now ? expiresAt - now : 1)))
        case .miss:
            return nil
        case .typeMismatch(let stored):
            // A value fail-safe or early refresh wrapped reads as itself, with the entry's TTL.
            guard let value = try valueInEnvelope(key, stored: stored, as: Value.self), let ttl = try await ttl(key) else {
                return nil
            }
            return (value, ttl)
        }
    }

    /// Keeps `bytes` as they are, charging their count against the memory limit.
    public func setBytes(_ key: String, to bytes: [UInt8], ttl: Duration?) async throws {
        try checkOpen(key)
        try CacheKey.validate(key)
        try store(key, StoredBytes(bytes), size: bytes.count, ttl: ttl, tags: [])
    }

    /// The bytes stored by ``setBytes(_:to:ttl:)``; for a value stored with `set`, its encoding by the codec (as
    /// Redis would return it).
    public func getBytes(_ key: String) async throws -> [UInt8]? {
        try checkOpen(key)
        try CacheKey.validate(key)
        switch storage.get(HashedKey(key), clock: clock, type: ObjectIdentifier(StoredBytes.self)) {
        case .hit(let value):
            return (value as? StoredBytes)?.bytes
        case .miss:
            return nil
        case .typeMismatch(let stored):
            // A typed value: its bytes are what the codec makes of it.
            guard let (value, _) = try peekValue(key), let encodable = value as? any Encodable else { return nil }
            do {
                return try patterns.encode(encodable, with: codec)
            } catch {
                throw CacheError.encodingFailed(key: key, type: stored, underlying: error)
            }
        }
    }

    private func checkFits(_ key: String, size: Int) throws(CacheError) {
        let limit = configuration.maxMemorySize
        if size > limit { throw CacheError.valueTooLarge(key: key, size: size, limit: limit) }
        if size > MemoryCacheSlot.maximumSize { throw Self.entryTooLarge(key: key, size: size) }
    }

    /// A value over the size one entry records (``MemoryCacheSlot/maximumSize``), whatever the limit.
    private static func entryTooLarge(key: String, size: Int) -> CacheError {
        CacheError(
            code: .valueTooLarge, key: key,
            message: "The value encodes to \(size) bytes, more than the \(MemoryCacheSlot.maximumSize) bytes (4 GiB) one memory cache entry can hold, whatever maxMemorySize is. Store a smaller value."
        )
    }

    /// Turns a shard's write outcome into a log line or an error.
    private func finish(_ write: ShardWrite, key: String, size: Int) throws(CacheError) {
        switch write {
        case .stored(let evicted, let expired):
            if evicted > 0 || expired > 0 {
                logger.debug("Made room for a write", metadata: ["cachelayer.evicted": "\(evicted)", "cachelayer.expired": "\(expired)"])
            }
        case .tooLarge(let budget):
            throw CacheError(
                code: .valueTooLarge, key: key,
                message: "The value encodes to \(size) bytes, more than this cache's shard share of about \(budget) bytes (a value must fit in one of its \(storage.shardCount) shards). Store a smaller value or raise maxMemorySize."
            )
        }
    }

    // MARK: - Synchronous core

    /// The value under `key`, or `nil` when absent or expired. What ``get(_:as:)`` does, without `async`.
    package func getValue<Value: Codable & Sendable>(_ key: String, as type: Value.Type = Value.self) throws(CacheError) -> Value? {
        try value(found: lookup(key, type: Value.self), key, as: Value.self)
    }

    /// ``lookup(_:type:)``, timed when the latency sampler says so: one relaxed atomic load while no metrics
    /// reporter runs, then one call in 64.
    @usableFromInline
    func sampledLookup(_ key: String, type: any Any.Type) throws(CacheError) -> MemoryLookup {
        guard latency._withUnsafeGuaranteedRef({ $0.shouldSample() }) else { return try lookup(key, type: type) }
        return try timedLookup(key, type: type)
    }

    /// The sampled call of ``sampledLookup(_:type:)``, apart for the reason given at ``timedSet(_:_:ttl:tags:)``.
    @inline(never)
    private func timedLookup(_ key: String, type: any Any.Type) throws(CacheError) -> MemoryLookup {
        let start = ContinuousClock.now
        defer { patterns.latency.recordGet(.now - start) }
        return try lookup(key, type: type)
    }

    /// The live value under `key` when its dynamic type is exactly `type`.
    private func lookup(_ key: String, type: any Any.Type) throws(CacheError) -> MemoryLookup {
        try checkOpen(key)
        try CacheKey.validate(key)
        switch storage.get(HashedKey(key), clock: clock, type: ObjectIdentifier(type)) {
        case .hit(let value):
            return .hit(value)
        case .miss:
            return .miss
        case .typeMismatch(let stored):
            return .otherType(stored)
        }
    }

    /// Stores `value`, charging its encoded size. What ``set(_:to:ttl:tags:)`` does, without `async`.
    package func setValue<Value: Codable & Sendable>(_ key: String, _ value: Value, ttl: Duration? = nil, tags: Set<String> = []) throws(CacheError) {
        try checkOpen(key)
        try CacheKey.validate(key)
        try store(key, value, size: encodedSize(of: value, key: key), ttl: ttl, tags: tags)
    }

    /// Stores `value` charging `size` bytes instead of its encoded size, for trace replay where only sizes
    /// are known.
    package func setValue<Value: Sendable>(_ key: String, _ value: Value, size: Int, ttl: Duration? = nil) throws(CacheError) {
        try checkOpen(key)
        try CacheKey.validate(key)
        precondition(size >= 0, "a size is never negative")
        try store(key, value, size: size, ttl: ttl, tags: [])
    }

    /// Removes `key`; returns whether it was stored (expired or not).
    @discardableResult
    package func deleteValue(_ key: String) throws(CacheError) -> Bool {
        try checkOpen(key)
        try CacheKey.validate(key)
        return storage.delete(HashedKey(key))
    }

    /// Whether a live value is stored under `key`; no hit or miss is counted.
    package func containsValue(_ key: String) throws(CacheError) -> Bool {
        try checkOpen(key)
        try CacheKey.validate(key)
        return storage.contains(HashedKey(key), now: clock.now())
    }

    /// The live value under `key` and its remaining lifetime in nanoseconds (`nil`: never expires), without
    /// counting a hit or informing the eviction policy.
    package func peekValue(_ key: String) throws(CacheError) -> (value: any Sendable, remainingNanoseconds: UInt64?)? {
        try checkOpen(key)
        try CacheKey.validate(key)
        let now = clock.now()
        guard let (value, expiresAt) = storage.peek(HashedKey(key), now: now) else { return nil }
        return (value, expiresAt == .max ? nil : expiresAt - now)
    }

    /// Removes every entry; counters other than size and entry count are kept.
    package func removeAllValues() throws(CacheError) {
        try checkOpen(nil)
        storage.removeAll()
    }

    /// Removes every entry stored with `tag`; returns how many. What ``invalidate(tag:)`` does, without `async`.
    @discardableResult
    package func invalidateValues(tag: String) throws(CacheError) -> Int {
        try checkOpen(nil)
        return storage.invalidate(tag: tag)
    }

    /// Removes every entry whose key starts with `prefix`; returns how many. What ``invalidate(prefix:)`` does,
    /// without `async`.
    @discardableResult
    package func invalidateValues(prefix: String) throws(CacheError) -> Int {
        try checkOpen(nil)
        return storage.invalidate(prefix: prefix)
    }

    /// The tag index's size over all shards: distinct tags, and (tag, entry) pairs. Both are zero whenever no
    /// live entry has a tag; tests use this to prove the index does not leak.
    package var tagIndexSize: (tags: Int, memberships: Int) {
        storage.tagIndexSize()
    }

    /// Records in the shards' expiry queues, stale ones included; tests use this to prove that overwrites do not
    /// pile records up.
    package var expiryRecordCount: Int {
        storage.expiryRecordCount()
    }

    /// The counters summed over the shards, each read under its lock.
    /// How far behind real time the cache's clock may read (nonzero only for ``CoarseMonotonicCacheClock``): an
    /// entry may be served until that long past its expiry.
    package var clockResolution: Duration {
        if case .coarseMonotonic = clock { return CoarseMonotonicCacheClock.resolution }
        return .zero
    }

    package func currentStats() -> CacheStats {
        storage.stats()
    }

    /// Removes every expired entry now; the background sweeper calls this. Returns how many were removed.
    @discardableResult
    package func sweepExpired() -> Int {
        Self.sweepExpired(storage, clock: clock, logger: logger)
    }

    @discardableResult
    private static func sweepExpired(_ storage: ShardedMemoryStorage, clock: CacheClockSource, logger: Logger) -> Int {
        let removed = storage.sweepExpired(now: clock.now())
        if removed > 0 {
            logger.debug("Swept expired entries", metadata: ["cachelayer.expired": "\(removed)"])
        }
        return removed
    }

    // MARK: - Internals

    @inline(__always)
    private func checkOpen(_ key: String?) throws(CacheError) {
        if closed.load(ordering: .acquiring) { throw CacheError.closed(key: key) }
    }

    private func encodedSize<Value: Encodable>(of value: Value, key: String) throws(CacheError) -> Int {
        if usesJSONSizes, let size = JSONSize.of(value) { return size }
        do {
            return try codec.encode(value).count
        } catch {
            throw CacheError.encodingFailed(key: key, type: Value.self, underlying: error)
        }
    }

    private func store<Value: Sendable>(_ key: String, _ value: Value, size: Int, ttl: Duration?, tags: Set<String>) throws(CacheError) {
        let limit = configuration.maxMemorySize
        if size > limit { throw CacheError.valueTooLarge(key: key, size: size, limit: limit) }
        if size > MemoryCacheSlot.maximumSize { throw Self.entryTooLarge(key: key, size: size) }
        let expiresAt = try expiry(for: ttl, key: key)
        switch storage.set(HashedKey(key), value: value, size: size, expiresAt: expiresAt, tags: tags, clock: clock) {
        case .stored(let evicted, let expired):
            if evicted > 0 || expired > 0 {
                logger.debug(
                    "Made room for a write",
                    metadata: ["cachelayer.evicted": "\(evicted)", "cachelayer.expired": "\(expired)"]
                )
            }
        case .tooLarge(let budget):
            throw CacheError(
                code: .valueTooLarge, key: key,
                message: "The value encodes to \(size) bytes. This cache holds \(limit) bytes split over \(storage.shardCount) shards of about \(budget) bytes so that threads do not wait for each other, and a value must fit in one shard. Store a smaller value or raise maxMemorySize (caches under 8 MiB use a single shard)."
            )
        }
    }

    /// The expiry time for `ttl` (`nil`: the default TTL). Reads the clock only for a finite TTL.
    private func expiry(for ttl: Duration?, key: String) throws(CacheError) -> UInt64 {
        let nanoseconds: UInt64
        if let ttl {
            guard !ttl.isNoExpiry else { return .max }
            guard ttl > .zero else { throw CacheError.invalidTTL(key: key, ttl: ttl) }
            // Sub-nanosecond TTLs round up so that a positive TTL never means "already expired".
            nanoseconds = max(1, ttl.saturatingNanoseconds)
        } else {
            guard let defaultTTLNanoseconds else { return .max }
            nanoseconds = defaultTTLNanoseconds
        }
        let now = clock.now()
        let (expiresAt, overflow) = now.addingReportingOverflow(nanoseconds)
        return overflow || expiresAt == .max ? .max - 1 : expiresAt
    }

}

/// What a read of the memory cache found.
@usableFromInline
enum MemoryLookup {
    /// A live value of the requested type.
    case hit(any Sendable)
    /// Nothing live.
    case miss
    /// A live value of this other type.
    case otherType(any Any.Type)
}
