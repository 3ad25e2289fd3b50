import Foundation
import CommonSupport
import Logging
import NIOCore
import Synchronization

/// A cache that keeps working when its backend (Redis) does not: reads fall back to an in-memory copy, writes go to
/// both.
///
/// - Reads go to the backend first, and refresh the memory copy with what they read (with the backend's remaining
///   TTL). When the backend fails with ``CacheError/Code/unavailable``, ``CacheError/Code/timeout`` or
///   ``CacheError/Code/busy``, the read is served from memory and does not fail. So during an outage an instance
///   serves what it last wrote *or read*: never a value older than one it already returned (its own older write, say,
///   after it read another instance's newer one). A read in flight never overwrites a newer write of this instance
///   (a per-key generation check, as in the near cache of ``TwoLevelCache``).
/// - ``CacheError/Code/busy`` (every pooled connection in use: a healthy backend under load) is served from memory
///   like an outage but does not count towards the circuit breaker, so load alone never switches the cache to
///   memory.
/// - Writes (`set`, `delete`, `clear`) go to the backend, then memory. When the backend fails, the write succeeds:
///   memory has it, and the outage journal (bounded by ``FallbackConfiguration/maxPendingKeys``)
///   records the key.
/// - After ``FallbackConfiguration/failureThreshold`` consecutive failures a circuit breaker opens: the backend is not
///   called at all (memory speed instead of a timeout per call) and is probed in the background, by one probe at a
///   time.
/// - On recovery, by default (``FallbackRecovery/invalidate``), the keys written during the outage are removed from
///   the backend (`UNLINK`, in batches) and from memory, so no instance reads a value older than the newest
///   acknowledged write (another instance may have written a newer one meanwhile); ``FallbackRecovery/writeBack``
///   writes memory's values back instead, for a single writer. Until a key is replayed, memory serves it.
/// - ``FallbackConfiguration/maxOutageAge`` bounds how long after it was last written or read a value may be served
///   from memory.
/// - ``close()`` replays what the journal still holds if the backend answers within
///   ``FallbackConfiguration/closeTimeout``.
/// - Losing and regaining the backend is logged once each, counted in ``CacheStats/outages`` and
///   ``CacheStats/recoveries``, and published by ``healthEvents()``.
///
/// - Batches (`getMany`, `setMany`, `deleteMany`) take one backend batch for the keys the backend may serve and
///   follow the same rules key by key (`getMany` reads no TTLs, so it drops memory's copies instead of refreshing them).
/// - Tag and prefix invalidation go to memory and the backend. A tag invalidation also drops memory's copies of the
///   keys it removed (copies refreshed by reads do not know their tags); during an outage, when those keys are
///   unknown, it drops every copy refreshed by a read. While the backend is down the invalidation is journaled and replayed (after a pending `clear()`,
///   before pending keys); until then every read is served by memory.
///
/// Other errors (type mismatch, invalid key, value too large for both) are thrown as usual.
///
/// **Over a ``TwoLevelCache``** (``CacheConfiguration/nearCache`` with ``CacheConfiguration/enableFallback``): a read
/// looks in L1 first when nothing must stay in memory (open, breaker closed, journal empty: an atomic flag kept by
/// the lock's holders, so a hit takes no lock), otherwise after checking the key under the lock. An L1 hit writes
/// nothing to memory's copy, which was refreshed when L1 was filled (by a read of Redis or a write). Only reads that
/// reach Redis (L1 misses) refresh it. When Redis fails, L1 is emptied (tracking lost) and memory serves, as above. The
/// fallback wraps the two-level cache rather than letting L1 serve outages because L1 must be emptied whenever an
/// invalidation may be lost, which is the moment Redis fails: the copy that serves an outage has to live outside L1
/// anyway, and this reuses one breaker, journal, probe and recovery instead of a second implementation.
public final class FallbackCache: Cache {
    let primary: any Cache
    /// The backend when it is a ``TwoLevelCache``: reads try its L1 first, and only reads that reached Redis refresh
    /// memory's copy.
    let twoLevel: TwoLevelCache?
    /// The backend when it can hold distributed single-flight locks (see `FallbackCache+FlightLock.swift`).
    let backendLocking: (any DistributedFlightLocking)?
    let memory: FallbackMemory
    let probe: @Sendable () async throws -> Void
    let configuration: FallbackConfiguration
    let logger: Logger
    let state: Locked<State>
    /// The state's ``State/isQuiet`` without the lock.
    private let quiet = QuietMirror()
    /// Runs the probe during an outage: in ``run()`` while a ``CacheService`` runs the cache, else in a task of its own.
    let background = CacheBackgroundWork()
    let replayRefusalCount = Atomic<Int>(0)
    /// Tokens of distributed single-flight locks granted locally because the backend was unreachable.
    let localFlightTokens = Locked<Set<String>>([])
    /// Whether the backend reads TTLs (`getWithTTL`); refreshed copies then expire with the backend's.
    private let backendReadsTTL = Atomic<Bool>(true)
    /// Single-flight loads, pattern defaults and counters for `getOrSet` and friends.
    public let patterns: CachePatternsState

    struct State {
        /// ``isQuiet``, readable without the lock: kept equal to it by every change of what it depends on.
        let quietMirror: QuietMirror
        var breaker: CircuitBreaker { didSet { quietMirror.store(isQuiet) } }
        var journal: OutageJournal { didSet { quietMirror.store(isQuiet) } }
        var probe = ProbeStateMachine()
        /// Where the latest probe ran.
        var probePlacement: CacheBackgroundWork.Placement? = nil
        /// Advanced by every clear and invalidation, before it reaches the backend: a written-back value in flight
        /// meanwhile may land after it, so it is replayed again.
        var invalidationEpoch: UInt64 = 0
        var subscribers: [Int: AsyncStream<FallbackHealthEvent>.Continuation] = [:]
        var nextSubscriber = 0
        var closed = false { didSet { quietMirror.store(isQuiet) } }
        var outages: UInt64 = 0
        var recoveries: UInt64 = 0

        /// ``FallbackConfiguration/recovery``.
        var recovery: FallbackRecovery = .invalidate

        /// Open, the breaker closed, nothing journaled: every key may be read from the backend.
        var isQuiet: Bool { !closed && breaker.allowsCalls && journal.isEmpty }

        /// Whether reads and writes of `key` must stay in memory for now.
        func mustUseMemory(for key: String) -> Bool {
            mustUseMemoryForAll || journal.contains(key)
        }

        /// Whether a write of `key` must stay in memory for now. Invalidating, a journaled key may be written to the
        /// backend once the breaker is closed: its pending `UNLINK` can only turn the new value into a miss, never into
        /// an older value, and the key leaves the journal with that `UNLINK` (so keys written steadily after an outage
        /// do not stay in memory for as long as the writes go on). Writing back, it stays in memory: a write-back in
        /// flight could land after the new value.
        func writeMustUseMemory(for key: String) -> Bool {
            recovery == .invalidate ? mustUseMemoryForAll : mustUseMemory(for: key)
        }

        /// Whether every key must stay in memory: the breaker is open, or a clear or invalidation awaits replay
        /// (any key may be affected by it).
        var mustUseMemoryForAll: Bool {
            !breaker.allowsCalls || journal.concernsEveryKey
        }

        /// Claims the probe unless one runs or the cache is closed; the owner id when the caller must start it.
        mutating func claimProbe() -> UInt64? {
            closed ? nil : probe.start()
        }
    }

    /// A fallback cache over `primary`, with `local` as the memory side.
    ///
    /// - Parameter probe: a cheap call that succeeds when the backend is reachable (Redis: `PING`).
    package init(
        primary: any Cache,
        local: MemoryCache,
        configuration: FallbackConfiguration = FallbackConfiguration(),
        name: String = "default",
        defaultTTL: Duration? = .seconds(3600),
        flightTimeout: Duration? = CacheConfiguration.defaultFlightTimeout,
        logger: Logger,
        wallClock: @escaping @Sendable () -> Date = { Date() },
        probe: @escaping @Sendable () async throws -> Void
    ) throws {
        try configuration.validate()
        self.primary = primary
        self.twoLevel = primary as? TwoLevelCache
        self.backendLocking = primary as? any DistributedFlightLocking
        self.memory = FallbackMemory(cache: local, maxAge: configuration.maxOutageAge)
        self.configuration = configuration
        self.logger = logger
        self.probe = probe
        self.state = Locked(State(
            quietMirror: quiet,
            breaker: CircuitBreaker(failureThreshold: configuration.failureThreshold),
            journal: OutageJournal(maxKeys: configuration.maxPendingKeys),
            recovery: configuration.recovery
        ))
        self.patterns = CachePatternsState(
            name: name, backend: "fallback", defaultTTL: defaultTTL, logger: logger, flightTimeout: flightTimeout, wallClock: wallClock
        )
    }

    var local: MemoryCache { memory.cache }

    // MARK: Reads

    public func get<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> Value? {
        if let twoLevel {
            // The hit path, without a further async call: usually quiet, so the check needs no lock and hits on every
            // core do not contend for it (a read that sees the flag a moment before a concurrent write clears it is
            // ordered before that write). L1 checked that the dynamic type is exactly `Value`.
            if quiet.isQuiet, case .hit(let value) = try twoLevel.nearLookup(key, type: Value.self) { return value as? Value }
            return try await get(key, as: type, through: twoLevel)
        }
        try checkOpen()
        if let stamp = routeToBackend(key) {
            do {
                let (value, ttl) = try await readWithTTL(key, as: type)
                noteSuccess()
                memory.refresh(key, value, ttl: ttl, stamp: stamp)
                return value
            } catch where Self.isAvailabilityFailure(error) {
                noteFailure(error, fellBack: true)
            }
        }
        return try await local.get(key, as: type)
    }

    /// A read over a ``TwoLevelCache`` that was not a quiet L1 hit: L1 if the key need not stay in memory (checked
    /// under the lock; no write: L1 holds nothing newer than memory's copy, which was refreshed when L1 was filled, by
    /// a read of Redis or a write); on an L1 miss, Redis, whose answer refreshes memory's copy (under a stamp taken
    /// with the same check, as for any backend read) and fills L1.
    private func get<Value: Codable & Sendable>(_ key: String, as type: Value.Type, through twoLevel: TwoLevelCache) async throws -> Value? {
        try checkOpen()
        if !quiet.isQuiet, state.withLock({ !$0.mustUseMemory(for: key) }),
            case .hit(let value) = try twoLevel.nearLookup(key, type: Value.self) {
            return value as? Value
        }
        if let stamp = routeToBackend(key) {
            do {
                let read = try await twoLevel.readFromRedis(key, as: type, needsTTL: true)
                noteSuccess()
                // A TTL of zero: the key expired while it was read; memory keeps no copy.
                memory.refresh(key, read.ttl == .zero ? nil : read.value, ttl: read.ttl, stamp: stamp)
                return read.value
            } catch where Self.isAvailabilityFailure(error) {
                noteFailure(error, fellBack: true)
            }
        }
        return try await local.get(key, as: type)
    }

    /// The value with the backend's remaining TTL when the backend reads TTLs (Redis: `GET` and `PTTL` in one round
    /// trip), else with none.
    private func readWithTTL<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> (Value?, Duration?) {
        if backendReadsTTL.load(ordering: .relaxed) {
            do {
                let entry = try await primary.getWithTTL(key, as: type)
                return (entry?.value, entry?.ttl)
            } catch let error as CacheError where error.code == .unsupported {
                backendReadsTTL.store(false, ordering: .relaxed)
            }
        }
        return (try await primary.get(key, as: type), nil)
    }

    public func exists(_ key: String) async throws -> Bool {
        try checkOpen()
        if let stamp = routeToBackend(key) {
            do {
                let exists = try await primary.exists(key)
                noteSuccess()
                if !exists { memory.drop(key, stamp: stamp) }
                return exists
            } catch where Self.isAvailabilityFailure(error) {
                noteFailure(error, fellBack: true)
            }
        }
        return try await local.exists(key)
    }

    // MARK: Writes

    public func set<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?) async throws {
        try await store(key, value, ttl: ttl, tags: [])
    }

    /// Stores `value` in the backend and memory, attached to `tags` (see ``invalidate(tag:)``).
    public func set<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?, tags: Set<String>) async throws {
        try await store(key, value, ttl: ttl, tags: tags)
    }

    private func store<Value: Codable & Sendable>(_ key: String, _ value: Value, ttl: Duration?, tags: Set<String>) async throws {
        try await write(key, tags: tags) {
            if tags.isEmpty {
                try await self.primary.set(key, to: value, ttl: ttl)
            } else {
                try await self.primary.set(key, to: value, ttl: ttl, tags: tags)
            }
        } memory: { duringOutage in
            try await self.storeInMemory(key, value, ttl: self.memoryTTL(ttl, duringOutage: duringOutage), tags: tags)
        }
    }

    /// The TTL of a copy in memory: capped by ``FallbackConfiguration/maxOutageAge``, except for a write made during
    /// an outage that will be written back (memory holds the only copy until then).
    func memoryTTL(_ ttl: Duration?, duringOutage: Bool) -> Duration? {
        duringOutage && configuration.recovery == .writeBack ? ttl : memory.capped(ttl)
    }

    /// Stores in memory; returns `false` when the value is too large for memory (its older copy is then dropped,
    /// so an outage never serves it).
    private func storeInMemory<Value: Codable & Sendable>(_ key: String, _ value: Value, ttl: Duration?, tags: Set<String>) async throws -> Bool {
        do {
            if tags.isEmpty {
                try await local.set(key, to: value, ttl: ttl)
            } else {
                try await local.set(key, to: value, ttl: ttl, tags: tags)
            }
            return true
        } catch let error as CacheError where error.code == .valueTooLarge {
            try await local.delete(key)
            return false
        }
    }

    /// A write of `key`: to the backend, then to memory (`memory` gets whether the backend missed it, and returns
    /// whether memory holds the value); when the key must stay in memory or the backend fails to answer, to memory and
    /// the journal. Throws ``CacheError/Code/unavailable`` when neither has it.
    func write(
        _ key: String,
        tags: Set<String> = [],
        backend: () async throws -> Void,
        memory writeMemory: (_ duringOutage: Bool) async throws -> Bool
    ) async throws {
        try checkOpen()
        let useBackend = state.withLock { !$0.writeMustUseMemory(for: key) }
        var backendError: (any Error)?
        if useBackend {
            do {
                try await backend()
                noteSuccess()
                _ = try await memory.changing(key) { try await writeMemory(false) }
                return
            } catch where Self.isAvailabilityFailure(error) {
                noteFailure(error, fellBack: true)
                backendError = error
            }
        } else {
            patterns.recordFallbackEvent()
        }
        // Journaled before memory changes (so reads of the key stay in memory from now on) and again after (so a
        // write-back that read memory meanwhile does not count as replaying this write).
        record(key, tags: tags)
        let stored = try await memory.changing(key) { try await writeMemory(true) }
        record(key, tags: tags)
        if !stored {
            throw backendError ?? CacheError.unavailable(
                "The backend is unreachable and the value is too large for the fallback memory cache, so it was not stored.", key: key
            )
        }
    }

    /// Records `key` in the journal, and makes sure a probe runs to replay it.
    private func record(_ key: String, tags: Set<String>) {
        let owner = state.withLock { state -> UInt64? in
            state.journal.record(key, tags: tags)
            return state.claimProbe()
        }
        if let owner { spawnProbe(owner: owner) }
    }

    public func delete(_ key: String) async throws {
        try await write(key) {
            try await self.primary.delete(key)
        } memory: { _ in
            try await self.local.delete(key)
            return true
        }
    }

    public func clear() async throws {
        try checkOpen()
        let useBackend = state.withLock { state -> Bool in
            state.invalidationEpoch += 1
            return state.breaker.allowsCalls
        }
        if useBackend {
            do {
                try await primary.clear()
                noteSuccess()
                try await memory.changingAll { try await local.clear() }
                return
            } catch where Self.isAvailabilityFailure(error) {
                noteFailure(error, fellBack: true)
            }
        } else {
            patterns.recordFallbackEvent()
        }
        journal { $0.recordClear() }
        try await memory.changingAll { try await local.clear() }
    }

    /// Changes the journal (a clear or an invalidation), and makes sure a probe runs to replay it.
    private func journal(_ change: (inout OutageJournal) -> Void) {
        let owner = state.withLock { state -> UInt64? in
            state.invalidationEpoch += 1
            change(&state.journal)
            return state.claimProbe()
        }
        if let owner { spawnProbe(owner: owner) }
    }

    // MARK: Batches

    /// The values under `keys`: one backend batch for the keys the backend may serve, memory for the rest
    /// (journaled keys, or all of them while the backend is down). The batch reads no TTLs, so memory drops its copies
    /// of those keys rather than keep ones older than what was returned; over a ``TwoLevelCache``, of the keys that
    /// were not L1 hits.
    public func getMany<Value: Codable & Sendable>(_ keys: [String], as type: Value.Type) async throws -> [String: Value] {
        try checkOpen()
        let keys = distinct(keys)
        guard !keys.isEmpty else { return [:] }
        var (remote, inMemory) = state.withLock { state -> ([(String, NearCacheFillGate.Stamp)], [String]) in
            if state.mustUseMemoryForAll {
                patterns.recordFallbackEvent()
                return ([], keys)
            }
            var remote: [(String, NearCacheFillGate.Stamp)] = []
            var inMemory: [String] = []
            for key in keys {
                if state.journal.contains(key) { inMemory.append(key) } else { remote.append((key, memory.stamp(key))) }
            }
            if !inMemory.isEmpty {
                patterns.recordFallbackEvent()
            }
            return (remote, inMemory)
        }
        var values: [String: Value] = [:]
        if let twoLevel {
            // L1 hits are served as by `get`, and keep memory's copies (refreshed when L1 was filled).
            remote = try remote.filter { key, _ in
                guard let value = try twoLevel.nearValue(key, as: Value.self) else { return true }
                values[key] = value
                return false
            }
        }
        if !remote.isEmpty {
            do {
                values.merge(try await primary.getMany(remote.map(\.0), as: type)) { near, _ in near }
                noteSuccess()
                for (key, stamp) in remote { memory.drop(key, stamp: stamp) }
            } catch where Self.isAvailabilityFailure(error) {
                noteFailure(error, fellBack: true)
                inMemory += remote.map(\.0)
            }
        }
        if !inMemory.isEmpty {
            values.merge(try await local.getMany(inMemory, as: type)) { _, memory in memory }
        }
        return values
    }

    /// Stores every entry in one backend batch, then in memory; entries the backend does not get are journaled, as
    /// with ``set(_:to:ttl:)``.
    public func setMany<Value: Codable & Sendable>(_ entries: [String: Value], ttl: Duration?) async throws {
        try checkOpen()
        guard !entries.isEmpty else { return }
        let remote = state.withLock { state -> [String: Value] in
            entries.filter { !state.writeMustUseMemory(for: $0.key) }
        }
        var offline = entries.filter { remote[$0.key] == nil }
        if !offline.isEmpty { patterns.recordFallbackEvent() }
        if !remote.isEmpty {
            do {
                try await primary.setMany(remote, ttl: ttl)
                noteSuccess()
                for (key, value) in remote {
                    _ = try await memory.changing(key) { try await storeInMemory(key, value, ttl: memoryTTL(ttl, duringOutage: false), tags: []) }
                }
            } catch where Self.isAvailabilityFailure(error) {
                noteFailure(error, fellBack: true)
                offline.merge(remote) { $1 }
            }
        }
        var tooLarge = false
        for (key, value) in offline {
            record(key, tags: [])
            let stored = try await memory.changing(key) {
                try await storeInMemory(key, value, ttl: memoryTTL(ttl, duringOutage: true), tags: [])
            }
            record(key, tags: [])
            if !stored { tooLarge = true }
        }
        if tooLarge {
            throw CacheError.unavailable("The backend is unreachable and some values are too large for the fallback memory cache, so they were not stored.")
        }
    }

    /// Removes every key in one backend batch, then from memory; keys the backend does not get are journaled, as with
    /// ``delete(_:)``.
    public func deleteMany(_ keys: [String]) async throws {
        try checkOpen()
        let keys = distinct(keys)
        guard !keys.isEmpty else { return }
        let (remote, offlineKeys) = state.withLock { state -> ([String], [String]) in
            var remote: [String] = []
            var offline: [String] = []
            for key in keys {
                if state.writeMustUseMemory(for: key) { offline.append(key) } else { remote.append(key) }
            }
            return (remote, offline)
        }
        var offline = offlineKeys
        if !offline.isEmpty { patterns.recordFallbackEvent() }
        if !remote.isEmpty {
            do {
                try await primary.deleteMany(remote)
                noteSuccess()
                for key in remote { memory.forget(key) }
            } catch where Self.isAvailabilityFailure(error) {
                noteFailure(error, fellBack: true)
                offline += remote
            }
        }
        for key in offline {
            record(key, tags: [])
            memory.forget(key)
            record(key, tags: [])
        }
    }

    // MARK: Invalidation

    /// Removes the entries stored with `tag`, from the backend and memory.
    ///
    /// Memory also drops its copies of the keys the backend removed (copies refreshed by reads do not know their tags);
    /// when those keys cannot be known (the backend is down, or is not a ``RedisCache``), every copy refreshed by a
    /// read. While the backend
    /// is down the invalidation is journaled and replayed before the backend serves reads again.
    public func invalidate(tag: String) async throws {
        try await invalidate(.tag(tag))
    }

    /// Removes the entries whose key starts with `prefix`, from the backend and memory; as ``invalidate(tag:)``.
    public func invalidate(prefix: String) async throws {
        try await invalidate(.prefix(prefix))
    }

    private func invalidate(_ invalidation: OutageJournal.Invalidation) async throws {
        try checkOpen()
        let useBackend = state.withLock { state -> Bool in
            state.invalidationEpoch += 1
            return !state.mustUseMemoryForAll
        }
        if useBackend {
            do {
                switch invalidation {
                case .tag(let tag):
                    if let redis = primary as? RedisCache {
                        let removed = try await redis.removeTagged(tag)
                        let prefix = redis.keyspace.prefix
                        try await memory.changingAll {
                            _ = try local.invalidateValues(tag: tag)
                            for buffer in removed {
                                let key = String(buffer: buffer)
                                if key.hasPrefix(prefix) { _ = try local.deleteValue(String(key.dropFirst(prefix.count))) }
                            }
                        }
                    } else if let twoLevel {
                        let removed = try await twoLevel.removeTagged(tag)
                        try await memory.changingAll {
                            _ = try local.invalidateValues(tag: tag)
                            for key in removed { _ = try local.deleteValue(key) }
                        }
                    } else {
                        try await primary.invalidate(tag: tag)
                        try await memory.changingAll {
                            _ = try local.invalidateValues(tag: tag)
                            _ = try local.invalidateValues(tag: FallbackMemory.refreshedTag)
                        }
                    }
                case .prefix(let prefix):
                    try await primary.invalidate(prefix: prefix)
                    try await memory.changingAll { try await local.invalidate(prefix: prefix) }
                }
                noteSuccess()
                return
            } catch where Self.isAvailabilityFailure(error) {
                noteFailure(error, fellBack: true)
            }
        } else {
            patterns.recordFallbackEvent()
        }
        journal { $0.recordInvalidation(invalidation) }
        try await memory.changingAll {
            switch invalidation {
            case .tag(let tag):
                _ = try local.invalidateValues(tag: tag)
                _ = try local.invalidateValues(tag: FallbackMemory.refreshedTag)
            case .prefix(let prefix):
                try await local.invalidate(prefix: prefix)
            }
        }
    }

    // MARK: Stats, health, life cycle

    /// Hits and misses of both sides; writes as seen by memory (which sees them all; refreshes by reads not counted); size and entry count
    /// of the backend; evictions and expirations of memory; plus fallback, outage and recovery counts.
    public func stats() async -> CacheStats {
        let backend = await primary.stats()
        let memory = await local.stats()
        let refreshes = self.memory.refreshCounts
        let counts = state.withLock { ($0.outages, $0.recoveries) }
        var stats = CacheStats(
            hits: backend.hits + memory.hits, misses: backend.misses + memory.misses,
            sets: memory.sets - min(memory.sets, refreshes.sets), deletes: memory.deletes - min(memory.deletes, refreshes.deletes),
            evictions: memory.evictions, expirations: memory.expirations,
            size: backend.size, entryCount: backend.entryCount
        )
        // The pattern counters already count every call served by memory for the metrics; stats reads the same.
        stats.fallbacks = patterns.counters.fallbackEvents
        stats.outages = counts.0
        stats.recoveries = counts.1
        return stats
    }

    /// The near cache's counters when the backend is a ``TwoLevelCache`` (``CacheConfiguration/nearCache`` with
    /// ``CacheConfiguration/enableFallback``); `nil` otherwise.
    public var nearCacheStatistics: NearCacheStatistics? { twoLevel?.nearCacheStatistics }

    /// Whether the backend is currently considered reachable (the circuit breaker is closed).
    public var isBackendHealthy: Bool { state.withLock { $0.breaker.allowsCalls } }

    /// Keys written while the backend failed that are not yet replayed to it.
    public var pendingKeyCount: Int { state.withLock { $0.journal.keyCount } }

    /// A stream of backend health changes, from now until the cache is closed. Each call makes a new stream.
    public func healthEvents() -> AsyncStream<FallbackHealthEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: FallbackHealthEvent.self, bufferingPolicy: .bufferingNewest(64))
        let finished = state.withLock { state -> Bool in
            guard !state.closed else { return true }
            let id = state.nextSubscriber
            state.nextSubscriber += 1
            state.subscribers[id] = continuation
            continuation.onTermination = { [weak self] _ in
                self?.state.withLock { _ = $0.subscribers.removeValue(forKey: id) }
            }
            return false
        }
        if finished { continuation.finish() }
        return stream
    }

    /// Stops the probe, replays what the outage journal still holds if the backend answers within
    /// ``FallbackConfiguration/closeTimeout`` (a delete made during an outage is not lost when the backend is back),
    /// then closes the backend and memory. Later calls throw ``CacheError/Code/closed``; closing twice is allowed.
    public func close() async throws {
        let (subscribers, alreadyClosed) = state.withLock { state in
            let result = (Array(state.subscribers.values), state.closed)
            state.closed = true
            state.probe.close()
            state.subscribers.removeAll()
            return result
        }
        guard !alreadyClosed else { return }
        await background.close()
        for subscriber in subscribers { subscriber.finish() }
        await drainJournal()
        var firstError: (any Error)?
        do { try await primary.close() } catch { firstError = error }
        do { try await local.close() } catch { firstError = firstError ?? error }
        if let firstError { throw firstError }
    }

    /// Runs the background work of the backend and of the memory cache, and the probe of an unreachable backend,
    /// until graceful shutdown, cancellation or ``close()``; see ``Cache/run()``.
    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await self.primary.run() }
            group.addTask { try await self.local.run() }
            group.addTask {
                await self.background.run()
                self.resumeProbeIfNeeded()
            }
        }
    }

    deinit {
        background.cancelOwnTasks()
    }

    // MARK: Internals

    private func checkOpen() throws {
        if state.withLock({ $0.closed }) { throw CacheError.closed() }
    }

    /// The stamp for refreshing memory when this read goes to the backend; `nil` (a fallback, counted) when it must
    /// stay in memory.
    private func routeToBackend(_ key: String) -> NearCacheFillGate.Stamp? {
        state.withLock { state in
            if state.mustUseMemory(for: key) {
                patterns.recordFallbackEvent()
                return nil
            }
            return memory.stamp(key)
        }
    }

    static func isAvailabilityFailure(_ error: any Error) -> Bool {
        guard let error = error as? CacheError else { return false }
        return error.code == .unavailable || error.code == .timeout || error.code == .busy
    }

    /// Whether the failure says the backend is down (and counts towards the breaker), not merely busy.
    static func isOutage(_ error: any Error) -> Bool {
        isAvailabilityFailure(error) && (error as? CacheError)?.code != .busy
    }

    private func noteSuccess() {
        state.withLock { $0.breaker.recordSuccess() }
    }

    /// Counts an availability failure. The first failure starts the background probe (one at a time), which replays
    /// the journal as soon as the backend answers, whether or not the breaker opened.
    func noteFailure(_ error: any Error, fellBack: Bool) {
        let (action, owner) = state.withLock { state -> (CircuitBreaker.Action, UInt64?) in
            if fellBack { patterns.recordFallbackEvent() }
            // A busy pool is load, not an outage: served from memory, replayed by the probe, but not counted.
            let action = Self.isOutage(error) ? state.breaker.recordFailure(now: .now) : .none
            if action == .opened { state.outages += 1 }
            return (action, state.claimProbe())
        }
        if action == .opened {
            logger.warning(
                "Backend lost: serving from memory until it answers again",
                metadata: ["cache.failure": "\(keylessDescription(of: error))", "cache.failure_threshold": "\(configuration.failureThreshold)"]
            )
            publish(.backendLost(reason: keylessDescription(of: error)))
        }
        if let owner { spawnProbe(owner: owner) }
    }

    /// Where the latest probe of the backend ran (`nil` before the first failure); for tests.
    package var probePlacement: CacheBackgroundWork.Placement? { state.withLock { $0.probePlacement } }

    /// Whether a probe runs now; for tests.
    package var isProbing: Bool { state.withLock { $0.probe.isRunning } }

    /// Writes made during an outage that the backend refused when they were replayed (skipped, logged).
    package var replayRefusals: Int { replayRefusalCount.load(ordering: .relaxed) }

    func publish(_ event: FallbackHealthEvent) {
        let subscribers = state.withLock { Array($0.subscribers.values) }
        for subscriber in subscribers { subscriber.yield(event) }
    }
}

// MARK: - Conditional writes, TTLs and bytes

extension FallbackCache {
    /// Stores `value` only when the backend holds no live value under `key` (`SET NX` on Redis, atomic across
    /// instances), then in memory too; returns whether it stored.
    ///
    /// While the backend is unreachable, or `key` has a write awaiting replay, this throws
    /// ``CacheError/Code/unavailable`` and stores nothing: memory alone cannot know whether another instance stored
    /// the key, so its answer would promise nothing.
    @discardableResult
    public func setIfAbsent<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?) async throws -> Bool {
        guard state.withLock({ !$0.closed }) else { throw CacheError.closed() }
        guard state.withLock({ !$0.mustUseMemory(for: key) }) else {
            throw CacheError.unavailable(
                "The backend is unreachable, so whether another instance already stored this key cannot be known; nothing was stored. Retry when the backend is back, or use set.",
                key: key
            )
        }
        let stored: Bool
        do {
            stored = try await primary.setIfAbsent(key, to: value, ttl: ttl)
            noteSuccess()
        } catch where Self.isAvailabilityFailure(error) {
            noteFailure(error, fellBack: false)
            throw error
        }
        if stored {
            _ = try await memory.changing(key) { try await memoryOnlyStore(key, value, ttl: memoryTTL(ttl, duringOutage: false)) }
        }
        return stored
    }

    private func memoryOnlyStore<Value: Codable & Sendable>(_ key: String, _ value: Value, ttl: Duration?) async throws -> Bool {
        do {
            try await local.set(key, to: value, ttl: ttl)
            return true
        } catch let error as CacheError where error.code == .valueTooLarge {
            try await local.delete(key)
            return false
        }
    }

    /// Stores `value` in the backend and memory, each keeping its own copy's remaining TTL; as ``set(_:to:ttl:)``
    /// while the backend is down (memory keeps the write, journaled).
    public func setKeepingTTL<Value: Codable & Sendable>(_ key: String, to value: Value) async throws {
        try await write(key) {
            try await self.primary.setKeepingTTL(key, to: value)
        } memory: { _ in
            try await self.tooLargeDropped(key) { try await self.local.setKeepingTTL(key, to: value) }
        }
    }

    /// The backend's remaining TTL for `key`; memory's while the backend is down.
    public func ttl(_ key: String) async throws -> Duration? {
        try await read(key) { _ in try await self.primary.ttl(key) } memory: { try await self.local.ttl(key) }
    }

    /// The value and TTL from the backend in one round trip (refreshing memory's copy); from memory while the backend
    /// is down.
    public func getWithTTL<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> (value: Value, ttl: Duration)? {
        try await read(key) { stamp in
            let entry = try await self.primary.getWithTTL(key, as: type)
            self.memory.refresh(key, entry?.value, ttl: entry?.ttl, stamp: stamp)
            return entry
        } memory: {
            try await self.local.getWithTTL(key, as: type)
        }
    }

    /// Stores the bytes in the backend and memory, as ``set(_:to:ttl:)`` does with a value.
    public func setBytes(_ key: String, to bytes: [UInt8], ttl: Duration?) async throws {
        try await write(key) {
            try await self.primary.setBytes(key, to: bytes, ttl: ttl)
        } memory: { duringOutage in
            try await self.tooLargeDropped(key) {
                try await self.local.setBytes(key, to: bytes, ttl: self.memoryTTL(ttl, duringOutage: duringOutage))
            }
        }
    }

    /// The bytes from the backend (memory drops its copy, which it cannot refresh from bytes); from memory while the
    /// backend is down.
    public func getBytes(_ key: String) async throws -> [UInt8]? {
        try await read(key) { stamp in
            let bytes = try await self.primary.getBytes(key)
            self.memory.drop(key, stamp: stamp)
            return bytes
        } memory: {
            try await self.local.getBytes(key)
        }
    }

    /// Runs a memory write; `false` when the value is too large for memory (its older copy is then dropped).
    private func tooLargeDropped(_ key: String, _ write: () async throws -> Void) async throws -> Bool {
        do {
            try await write()
            return true
        } catch let error as CacheError where error.code == .valueTooLarge {
            try await local.delete(key)
            return false
        }
    }

    /// A read from the backend (given the stamp for refreshing memory), or from memory when the key must stay there or
    /// the backend fails to answer.
    private func read<Output>(
        _ key: String,
        backend: @escaping @Sendable (NearCacheFillGate.Stamp) async throws -> Output,
        memory: @escaping @Sendable () async throws -> Output
    ) async throws -> Output {
        guard state.withLock({ !$0.closed }) else { throw CacheError.closed() }
        let stamp = state.withLock { state -> NearCacheFillGate.Stamp? in
            if state.mustUseMemory(for: key) {
                patterns.recordFallbackEvent()
                return nil
            }
            return self.memory.stamp(key)
        }
        if let stamp {
            do {
                let result = try await backend(stamp)
                state.withLock { $0.breaker.recordSuccess() }
                return result
            } catch where Self.isAvailabilityFailure(error) {
                noteFailure(error, fellBack: true)
            }
        }
        return try await memory()
    }
}

/// The fallback state's ``FallbackCache/State/isQuiet``, mirrored for a read without the lock (the L1 hit path over a
/// ``TwoLevelCache``). Stored under the state's lock only, on every change of what it depends on.
final class QuietMirror: Sendable {
    private let quiet = Atomic<Bool>(true)

    var isQuiet: Bool { quiet.load(ordering: .acquiring) }

    func store(_ isQuiet: Bool) { quiet.store(isQuiet, ordering: .releasing) }
}
