import Foundation
import CommonSupport
import Logging
import Synchronization

/// A cache that keeps working when its backend (Redis) does not: reads fall back to an in-memory cache,
/// writes go to both.
///
/// - Reads go to the backend first. When it fails with ``CacheError/Code/unavailable``,
///   ``CacheError/Code/timeout`` or ``CacheError/Code/busy``, the read is served from memory and does not fail.
/// - ``CacheError/Code/busy`` (every pooled connection in use: a healthy backend under load) is served from memory
///   like an outage but does not count towards the circuit breaker, so load alone never switches the cache to
///   memory.
/// - Writes (`set`, `delete`, `clear`) go to memory and to the backend. When only the backend fails, the
///   write succeeds: memory has it, and the key is remembered as *pending*.
/// - After ``FallbackConfiguration/failureThreshold`` consecutive failures a circuit breaker opens: the
///   backend is not called at all (memory speed instead of a timeout per call) and is probed in the
///   background.
/// - Pending writes are replayed to the backend (the memory value written back, or the backend copy deleted)
///   before the backend serves reads of those keys again, so a value written during an outage is never
///   hidden by the older copy the backend kept.
/// - Losing and regaining the backend is logged once each, counted in ``CacheStats/outages`` and
///   ``CacheStats/recoveries``, and published by ``healthEvents()``.
///
/// - Batches (`getMany`, `setMany`, `deleteMany`) take one backend batch for the keys the backend may serve and
///   follow the same rules key by key.
/// - Tag and prefix invalidation go to memory and the backend. A memory cache without tag or prefix support is
///   cleared instead (so it never serves an invalidated entry during a later outage). While the backend is down,
///   the invalidation is remembered and replayed (after a pending `clear()`, before pending keys); until then every
///   read is served by memory.
///
/// Other errors (type mismatch, invalid key, value too large for both) are thrown as usual.
public final class FallbackCache: Cache {
    private let primary: any Cache
    private let local: any ReplayableCache
    private let probe: @Sendable () async throws -> Void
    private let configuration: FallbackConfiguration
    private let logger: Logger
    private let state: Locked<State>
    /// Runs the probe during an outage: in ``run()`` while a ``CacheService`` runs the cache, else in a task of its own.
    private let background = CacheBackgroundWork()
    private let replayRefusalCount = Atomic<Int>(0)
    /// Single-flight loads, pattern defaults and counters for `getOrSet` and friends.
    public let patterns: CachePatternsState

    private struct State {
        var breaker: CircuitBreaker
        /// Keys written while the backend failed, with the version of their latest such write.
        var pending: [String: UInt64] = [:]
        /// Tags of pending keys' writes (the union, as the backend's tag sets would have accumulated them).
        var pendingTags: [String: Set<String>] = [:]
        /// A `clear()` the backend has not seen yet; its generation.
        var clearPending: UInt64? = nil
        /// Tag and prefix invalidations the backend has not seen yet, in call order, each with its version.
        var pendingInvalidations: [(version: UInt64, invalidation: Invalidation)] = []
        var version: UInt64 = 0
        /// Whether the probe runs (set before it starts, so only one starts).
        var probing = false
        /// Where the latest probe ran.
        var probePlacement: CacheBackgroundWork.Placement? = nil
        var subscribers: [Int: AsyncStream<FallbackHealthEvent>.Continuation] = [:]
        var nextSubscriber = 0
        var closed = false
        var outages: UInt64 = 0
        var recoveries: UInt64 = 0
        /// ``FallbackConfiguration/maxPendingKeys``.
        var maxPendingKeys = Int.max
        /// Whether `pending` overflowed since the last recovery (a clear replaces it; logged once on replay).
        var journalOverflowed = false

        /// Whether reads and writes of `key` must stay in memory for now.
        func mustUseMemory(for key: String) -> Bool {
            mustUseMemoryForAll || pending[key] != nil
        }

        /// Whether every key must stay in memory: the breaker is open, or a clear or invalidation awaits replay
        /// (any key may be affected by it).
        var mustUseMemoryForAll: Bool {
            !breaker.allowsCalls || clearPending != nil || !pendingInvalidations.isEmpty
        }

        mutating func markPending(_ key: String, tags: Set<String> = []) {
            if pending[key] == nil, pending.count >= maxPendingKeys {
                // Past the bound, remember "everything under the namespace" instead: clearing it on recovery removes
                // every value the backend kept from before the outage, so none can shadow a newer one held in memory.
                // The keys written so far are not replayed (a miss after recovery, never an older value).
                markClearPending()
                journalOverflowed = true
            }
            version += 1
            pending[key] = version
            if !tags.isEmpty { pendingTags[key, default: []].formUnion(tags) }
        }

        mutating func markClearPending() {
            version += 1
            clearPending = version
            pending.removeAll()
            pendingTags.removeAll()
            // The clear removes everything those invalidations would have removed.
            pendingInvalidations.removeAll()
        }

        mutating func markInvalidationPending(_ invalidation: Invalidation) {
            version += 1
            pendingInvalidations.append((version, invalidation))
        }
    }

    /// A tag or prefix invalidation to replay.
    enum Invalidation: Sendable, Equatable {
        case tag(String)
        case prefix(String)
    }

    /// A fallback cache over `primary`, with `local` as the memory side.
    ///
    /// - Parameter probe: a cheap call that succeeds when the backend is reachable (Redis: `PING`).
    package init(
        primary: any Cache,
        local: any ReplayableCache,
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
        self.local = local
        self.configuration = configuration
        self.logger = logger
        self.probe = probe
        var initialState = State(breaker: CircuitBreaker(failureThreshold: configuration.failureThreshold))
        initialState.maxPendingKeys = configuration.maxPendingKeys
        self.state = Locked(initialState)
        self.patterns = CachePatternsState(
            name: name, backend: "fallback", defaultTTL: defaultTTL, logger: logger, flightTimeout: flightTimeout, wallClock: wallClock
        )
    }

    // MARK: Reads

    public func get<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> Value? {
        try checkOpen()
        if try routeToBackend(key) {
            do {
                let value = try await primary.get(key, as: type)
                noteSuccess()
                return value
            } catch where Self.isAvailabilityFailure(error) {
                noteFailure(error, fellBack: true)
            }
        }
        return try await local.get(key, as: type)
    }

    public func exists(_ key: String) async throws -> Bool {
        try checkOpen()
        if try routeToBackend(key) {
            do {
                let exists = try await primary.exists(key)
                noteSuccess()
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

    /// Stores `value` in memory and the backend, attached to `tags` (see ``invalidate(tag:)``).
    ///
    /// When the memory cache does not support tags it stores the value untagged; tag invalidation then clears
    /// memory instead.
    public func set<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?, tags: Set<String>) async throws {
        try await store(key, value, ttl: ttl, tags: tags)
    }

    private func store<Value: Codable & Sendable>(_ key: String, _ value: Value, ttl: Duration?, tags: Set<String>) async throws {
        try checkOpen()
        let storedInMemory = try await storeInMemory(key, value, ttl: ttl, tags: tags)
        let useBackend = state.withLock { state -> Bool in
            if state.mustUseMemory(for: key) {
                state.markPending(key, tags: tags)
                patterns.recordFallbackEvent()
                return false
            }
            return true
        }
        guard useBackend else {
            if !storedInMemory {
                throw CacheError.unavailable("The backend is unreachable and the value is too large for the fallback memory cache, so it was not stored.", key: key)
            }
            return
        }
        do {
            if tags.isEmpty {
                try await primary.set(key, to: value, ttl: ttl)
            } else {
                try await primary.set(key, to: value, ttl: ttl, tags: tags)
            }
            noteSuccess()
        } catch where Self.isAvailabilityFailure(error) {
            state.withLock { $0.markPending(key, tags: tags) }
            noteFailure(error, fellBack: true)
            if !storedInMemory { throw error }
        }
    }

    /// Stores in memory; returns `false` when the value is too large for memory (its older copy is then dropped,
    /// so an outage never serves it).
    private func storeInMemory<Value: Codable & Sendable>(_ key: String, _ value: Value, ttl: Duration?, tags: Set<String>) async throws -> Bool {
        do {
            if tags.isEmpty {
                try await local.set(key, to: value, ttl: ttl)
            } else {
                do {
                    try await local.set(key, to: value, ttl: ttl, tags: tags)
                } catch let error as CacheError where error.code == .unsupported {
                    try await local.set(key, to: value, ttl: ttl)
                }
            }
            return true
        } catch let error as CacheError where error.code == .valueTooLarge {
            try await local.delete(key)
            return false
        }
    }

    public func delete(_ key: String) async throws {
        try checkOpen()
        try await local.delete(key)
        let useBackend = state.withLock { state -> Bool in
            if state.mustUseMemory(for: key) {
                state.markPending(key)
                patterns.recordFallbackEvent()
                return false
            }
            return true
        }
        guard useBackend else { return }
        do {
            try await primary.delete(key)
            noteSuccess()
        } catch where Self.isAvailabilityFailure(error) {
            state.withLock { $0.markPending(key) }
            noteFailure(error, fellBack: true)
        }
    }

    public func clear() async throws {
        try checkOpen()
        try await local.clear()
        let useBackend = state.withLock { state -> Bool in
            guard state.breaker.allowsCalls else {
                state.markClearPending()
                patterns.recordFallbackEvent()
                return false
            }
            return true
        }
        guard useBackend else { return }
        do {
            try await primary.clear()
            noteSuccess()
        } catch where Self.isAvailabilityFailure(error) {
            state.withLock { $0.markClearPending() }
            noteFailure(error, fellBack: true)
        }
    }

    // MARK: Batches

    /// The values under `keys`: one backend batch for the keys the backend may serve, memory for the rest
    /// (pending keys, or all of them while the backend is down).
    public func getMany<Value: Codable & Sendable>(_ keys: [String], as type: Value.Type) async throws -> [String: Value] {
        try checkOpen()
        let keys = distinct(keys)
        guard !keys.isEmpty else { return [:] }
        var (remote, inMemory) = state.withLock { state -> ([String], [String]) in
            if state.mustUseMemoryForAll {
                patterns.recordFallbackEvent()
                return ([], keys)
            }
            var remote: [String] = []
            var inMemory: [String] = []
            for key in keys {
                if state.pending[key] != nil { inMemory.append(key) } else { remote.append(key) }
            }
            if !inMemory.isEmpty {
                patterns.recordFallbackEvent()
            }
            return (remote, inMemory)
        }
        var values: [String: Value] = [:]
        if !remote.isEmpty {
            do {
                values = try await primary.getMany(remote, as: type)
                noteSuccess()
            } catch where Self.isAvailabilityFailure(error) {
                noteFailure(error, fellBack: true)
                inMemory += remote
            }
        }
        if !inMemory.isEmpty {
            values.merge(try await local.getMany(inMemory, as: type)) { _, memory in memory }
        }
        return values
    }

    /// Stores every entry in memory and, in one backend batch, in the backend; entries the backend does not get
    /// are pending, as with ``set(_:to:ttl:)``.
    public func setMany<Value: Codable & Sendable>(_ entries: [String: Value], ttl: Duration?) async throws {
        try checkOpen()
        guard !entries.isEmpty else { return }
        var tooLarge: Set<String> = []
        for (key, value) in entries {
            if try await !storeInMemory(key, value, ttl: ttl, tags: []) { tooLarge.insert(key) }
        }
        let remote = state.withLock { state -> [String: Value] in
            var remote: [String: Value] = [:]
            var fellBack = false
            for (key, value) in entries {
                if state.mustUseMemory(for: key) {
                    state.markPending(key)
                    fellBack = true
                } else {
                    remote[key] = value
                }
            }
            if fellBack {
                patterns.recordFallbackEvent()
            }
            return remote
        }
        if tooLarge.contains(where: { remote[$0] == nil }) {
            throw CacheError.unavailable("The backend is unreachable and some values are too large for the fallback memory cache, so they were not stored.")
        }
        guard !remote.isEmpty else { return }
        do {
            try await primary.setMany(remote, ttl: ttl)
            noteSuccess()
        } catch where Self.isAvailabilityFailure(error) {
            state.withLock { state in
                for key in remote.keys { state.markPending(key) }
            }
            noteFailure(error, fellBack: true)
            if !tooLarge.isEmpty { throw error }
        }
    }

    /// Removes every key from memory and, in one backend batch, from the backend; keys the backend does not get
    /// are pending, as with ``delete(_:)``.
    public func deleteMany(_ keys: [String]) async throws {
        try checkOpen()
        let keys = distinct(keys)
        guard !keys.isEmpty else { return }
        try await local.deleteMany(keys)
        let remote = state.withLock { state -> [String] in
            var remote: [String] = []
            for key in keys {
                if state.mustUseMemory(for: key) { state.markPending(key) } else { remote.append(key) }
            }
            if remote.count < keys.count {
                patterns.recordFallbackEvent()
            }
            return remote
        }
        guard !remote.isEmpty else { return }
        do {
            try await primary.deleteMany(remote)
            noteSuccess()
        } catch where Self.isAvailabilityFailure(error) {
            state.withLock { state in
                for key in remote { state.markPending(key) }
            }
            noteFailure(error, fellBack: true)
        }
    }

    // MARK: Invalidation

    /// Removes the entries stored with `tag`, from memory and the backend.
    ///
    /// When the memory cache does not support tags, it is cleared instead, so it never serves an invalidated entry
    /// during a later outage. While the backend is down the invalidation is remembered and replayed before the
    /// backend serves reads again (until then, every read is served by memory).
    public func invalidate(tag: String) async throws {
        try await invalidate(.tag(tag))
    }

    /// Removes the entries whose key starts with `prefix`, from memory and the backend; as ``invalidate(tag:)``.
    public func invalidate(prefix: String) async throws {
        try await invalidate(.prefix(prefix))
    }

    private func invalidate(_ invalidation: Invalidation) async throws {
        try checkOpen()
        do {
            switch invalidation {
            case .tag(let tag): try await local.invalidate(tag: tag)
            case .prefix(let prefix): try await local.invalidate(prefix: prefix)
            }
        } catch let error as CacheError where error.code == .unsupported {
            try await local.clear()
        }
        let useBackend = state.withLock { state -> Bool in
            if state.mustUseMemoryForAll {
                state.markInvalidationPending(invalidation)
                patterns.recordFallbackEvent()
                return false
            }
            return true
        }
        guard useBackend else { return }
        do {
            switch invalidation {
            case .tag(let tag): try await primary.invalidate(tag: tag)
            case .prefix(let prefix): try await primary.invalidate(prefix: prefix)
            }
            noteSuccess()
        } catch where Self.isAvailabilityFailure(error) {
            state.withLock { $0.markInvalidationPending(invalidation) }
            noteFailure(error, fellBack: true)
        }
    }

    // MARK: Stats, health, life cycle

    /// Hits and misses of both sides; writes as seen by memory (which sees them all); size and entry count
    /// of the backend; evictions and expirations of memory; plus fallback, outage and recovery counts.
    public func stats() async -> CacheStats {
        let backend = await primary.stats()
        let memory = await local.stats()
        let counts = state.withLock { ($0.outages, $0.recoveries) }
        var stats = CacheStats(
            hits: backend.hits + memory.hits, misses: backend.misses + memory.misses,
            sets: memory.sets, deletes: memory.deletes,
            evictions: memory.evictions, expirations: memory.expirations,
            size: backend.size, entryCount: backend.entryCount
        )
        // The pattern counters already count every call served by memory for the metrics; stats reads the same.
        stats.fallbacks = patterns.counters.fallbackEvents
        stats.outages = counts.0
        stats.recoveries = counts.1
        return stats
    }

    /// Whether the backend is currently considered reachable (the circuit breaker is closed).
    public var isBackendHealthy: Bool { state.withLock { $0.breaker.allowsCalls } }

    /// Keys written while the backend failed that are not yet replayed to it.
    public var pendingKeyCount: Int { state.withLock { $0.pending.count } }

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

    public func close() async throws {
        let (subscribers, alreadyClosed) = state.withLock { state in
            let result = (Array(state.subscribers.values), state.closed)
            state.closed = true
            state.subscribers.removeAll()
            return result
        }
        guard !alreadyClosed else { return }
        await background.close()
        for subscriber in subscribers { subscriber.finish() }
        let pending = pendingKeyCount
        if pending > 0 {
            logger.warning("Closing with writes the backend never received", metadata: ["cache.pending_keys": "\(pending)"])
        }
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

    /// Whether this read goes to the backend; counts a fallback when it does not.
    private func routeToBackend(_ key: String) throws -> Bool {
        state.withLock { state in
            if state.mustUseMemory(for: key) {
                patterns.recordFallbackEvent()
                return false
            }
            return true
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

    /// Counts an availability failure. The first failure starts the background probe, which replays pending
    /// writes as soon as the backend answers, whether or not the breaker opened.
    private func noteFailure(_ error: any Error, fellBack: Bool) {
        let (action, startProbe) = state.withLock { state -> (CircuitBreaker.Action, Bool) in
            if fellBack { patterns.recordFallbackEvent() }
            // A busy pool is load, not an outage: served from memory, replayed by the probe, but not counted.
            let action = Self.isOutage(error) ? state.breaker.recordFailure(now: .now) : .none
            if action == .opened { state.outages += 1 }
            let startProbe = !state.probing && !state.closed
            if startProbe { state.probing = true }
            return (action, startProbe)
        }
        if action == .opened {
            logger.warning(
                "Backend lost: serving from memory until it answers again",
                metadata: ["cache.failure": "\(keylessDescription(of: error))", "cache.failure_threshold": "\(configuration.failureThreshold)"]
            )
            publish(.backendLost(reason: keylessDescription(of: error)))
        }
        if startProbe { spawnProbe() }
    }

    /// Starts the probe (whose `probing` flag the caller set): it probes the backend until it answers, replays pending
    /// writes, closes the breaker, and goes on replaying until no key is pending. It holds the cache only for one
    /// round, so an abandoned cache is freed (and its deinit cancels the probe) even while the backend stays down.
    private func spawnProbe() {
        let interval = configuration.probeInterval.boundedForSleep
        let placement = background.spawn { [weak self] in
            var replayedSinceOutage = 0
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: interval)
                } catch {
                    break
                }
                guard let self else { return }
                if await self.probeOnce(replayedSinceOutage: &replayedSinceOutage) { return }
            }
            self?.state.withLock { $0.probing = false }
        }
        state.withLock { $0.probePlacement = placement }
    }

    /// Restarts the probe when ``run()`` ended (and cut it short) while the cache stays open and the backend is
    /// still down or has writes to replay.
    private func resumeProbeIfNeeded() {
        let resume = state.withLock { state -> Bool in
            let needed = !state.breaker.allowsCalls || !state.pending.isEmpty || state.clearPending != nil
                || !state.pendingInvalidations.isEmpty
            guard needed, !state.probing, !state.closed else { return false }
            state.probing = true
            return true
        }
        if resume { spawnProbe() }
    }

    /// Where the latest probe of the backend ran (`nil` before the first failure); for tests.
    package var probePlacement: CacheBackgroundWork.Placement? { state.withLock { $0.probePlacement } }

    /// One round of the probe: probes, replays, and closes the breaker when the backend answers.
    /// - Returns: Whether the probe is done (the backend recovered and no key is pending).
    private func probeOnce(replayedSinceOutage: inout Int) async -> Bool {
        do {
            try await probe()
        } catch {
            return false
        }
        guard let replayed = await reconcile() else { return false }
        replayedSinceOutage += replayed
        let (action, done) = state.withLock { state -> (CircuitBreaker.Action, Bool) in
            // A pending clear or invalidation concerns every key: the breaker stays open until it is replayed.
            guard state.clearPending == nil, state.pendingInvalidations.isEmpty else { return (.none, false) }
            // Keys written again while they were replayed are still pending: memory keeps serving them and the
            // next pass replays them. Closing the breaker now means sustained writes cannot keep the backend out
            // for ever (while it is open, every write makes its key pending).
            let action = state.breaker.recordRecovery()
            if action == .closed { state.recoveries += 1 }
            let done = state.pending.isEmpty
            if done { state.probing = false }
            return (action, done)
        }
        if action == .closed {
            logger.notice("Backend recovered: writes made during the outage replayed", metadata: ["cache.replayed_keys": "\(replayedSinceOutage)"])
            publish(.backendRecovered(reconciledKeys: replayedSinceOutage))
        }
        return done
    }

    /// Replays the pending clear, invalidations and keys once (keys written again meanwhile stay pending).
    ///
    /// Only the probe task runs this, one at a time, and writes to pending keys go to memory only, so it is
    /// the only writer of those keys to the backend and always writes memory's latest value.
    /// - Returns: the number of keys replayed, or `nil` when the backend failed again.
    private func reconcile() async -> Int? {
        var replayed = 0
        do {
            let (clearGeneration, invalidations, pending) = state.withLock {
                ($0.clearPending, $0.pendingInvalidations, $0.pending)
            }
            // Order: the clear, then invalidations in call order, then keys. Keys carry memory's latest state,
            // which already reflects every clear and invalidation, so replaying them last is always right.
            if let clearGeneration {
                if state.withLock({ state in defer { state.journalOverflowed = false }; return state.journalOverflowed }) {
                    logger.warning(
                        "More keys were written during the outage than the journal holds (maxPendingKeys): clearing the namespace in the backend instead of replaying them",
                        metadata: ["cache.max_pending_keys": "\(configuration.maxPendingKeys)"]
                    )
                }
                try await skippingRefusal("clear") { try await primary.clear() }
                state.withLock { state in
                    if state.clearPending == clearGeneration { state.clearPending = nil }
                }
            }
            for (version, invalidation) in invalidations {
                try await skippingRefusal("invalidate") {
                    switch invalidation {
                    case .tag(let tag): try await primary.invalidate(tag: tag)
                    case .prefix(let prefix): try await primary.invalidate(prefix: prefix)
                    }
                }
                state.withLock { state in
                    state.pendingInvalidations.removeAll { $0.version == version }
                }
            }
            for key in pending.keys {
                // The version now, not the snapshot's: a key rewritten since the snapshot is replayed with its
                // latest value, and stays pending only if it is rewritten during its own replay.
                guard let version = state.withLock({ $0.pending[key] }) else { continue }
                let keyTags = state.withLock { $0.pendingTags[key] } ?? []
                try await skippingRefusal("set", key: key) {
                    if let entry = try local.replayableEntry(key) {
                        if let stored = entry.value as? StoredBytes {
                            try await primary.setBytes(key, to: stored.bytes, ttl: entry.ttl ?? .noExpiry)
                        } else if keyTags.isEmpty {
                            try await primary.set(key, to: entry.value, ttl: entry.ttl ?? .noExpiry)
                        } else {
                            try await primary.set(key, to: entry.value, ttl: entry.ttl ?? .noExpiry, tags: keyTags)
                        }
                    } else {
                        try await primary.delete(key)
                    }
                }
                replayed += 1
                state.withLock { state in
                    if state.pending[key] == version {
                        state.pending.removeValue(forKey: key)
                        state.pendingTags.removeValue(forKey: key)
                    }
                }
            }
            return replayed
        } catch {
            if Self.isAvailabilityFailure(error) {
                noteFailure(error, fellBack: false)
            } else if Task.isCancelled || (error as? CacheError)?.code == .cancelled {
                // Closing: the probe task was cancelled mid-replay; close() reports what is still pending.
            } else {
                logger.error("Could not replay a write made during an outage", metadata: ["cache.failure": "\(keylessDescription(of: error))"])
                logger.debug("The failed replay", metadata: ["cache.failure": "\(error)"])
            }
            return nil
        }
    }

    /// Runs one replay step; an error that is not an availability failure (nor cancellation) is logged, counted in
    /// ``replayRefusals`` and skipped, so one write the backend refuses (a reserved key, a `clear()` Redis cannot do
    /// without a namespace, `OOM`) cannot stall recovery for every other key. Availability failures and cancellation
    /// are rethrown: the pass ends and the probe tries again.
    private func skippingRefusal(_ operation: String, key: String? = nil, _ step: () async throws -> Void) async throws {
        do {
            try await step()
        } catch {
            if Self.isAvailabilityFailure(error) || Task.isCancelled || (error as? CacheError)?.code == .cancelled { throw error }
            replayRefusalCount.add(1, ordering: .relaxed)
            var metadata: Logger.Metadata = ["cache.operation": "\(operation)", "cache.failure": "\(error)"]
            if let key, logger.logLevel <= .debug { metadata["cache.key"] = "\(key)" }
            logger.error("The backend refused a write made during an outage; it is skipped and the backend may keep an older value until it expires", metadata: metadata)
        }
    }

    /// Writes made during an outage that the backend refused when they were replayed (skipped, logged).
    package var replayRefusals: Int { replayRefusalCount.load(ordering: .relaxed) }

    private func publish(_ event: FallbackHealthEvent) {
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
        try checkOpen()
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
            _ = try await storeInMemory(key, value, ttl: ttl, tags: [])
        }
        return stored
    }

    /// Stores `value` in memory and the backend, each keeping its own copy's remaining TTL; as ``set(_:to:ttl:)``
    /// while the backend is down (memory keeps the write, replayed later with memory's TTL).
    public func setKeepingTTL<Value: Codable & Sendable>(_ key: String, to value: Value) async throws {
        try await writeBoth(key) {
            try await self.local.setKeepingTTL(key, to: value)
        } backend: {
            try await self.primary.setKeepingTTL(key, to: value)
        }
    }

    /// The backend's remaining TTL for `key`; memory's while the backend is down.
    public func ttl(_ key: String) async throws -> Duration? {
        try await read(key) { try await self.primary.ttl(key) } memory: { try await self.local.ttl(key) }
    }

    /// The value and TTL from the backend in one round trip; from memory while the backend is down.
    public func getWithTTL<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> (value: Value, ttl: Duration)? {
        try await read(key) {
            try await self.primary.getWithTTL(key, as: type)
        } memory: {
            try await self.local.getWithTTL(key, as: type)
        }
    }

    /// Stores the bytes in memory and the backend, as ``set(_:to:ttl:)`` does with a value.
    public func setBytes(_ key: String, to bytes: [UInt8], ttl: Duration?) async throws {
        try await writeBoth(key) {
            try await self.local.setBytes(key, to: bytes, ttl: ttl)
        } backend: {
            try await self.primary.setBytes(key, to: bytes, ttl: ttl)
        }
    }

    /// The bytes from the backend; from memory while the backend is down.
    public func getBytes(_ key: String) async throws -> [UInt8]? {
        try await read(key) { try await self.primary.getBytes(key) } memory: { try await self.local.getBytes(key) }
    }

    /// A read from the backend, or from memory when the key must stay there or the backend fails to answer.
    private func read<Output>(
        _ key: String,
        backend: @escaping @Sendable () async throws -> Output,
        memory: @escaping @Sendable () async throws -> Output
    ) async throws -> Output {
        try checkOpen()
        if try routeToBackend(key) {
            do {
                let result = try await backend()
                noteSuccess()
                return result
            } catch where Self.isAvailabilityFailure(error) {
                noteFailure(error, fellBack: true)
            }
        }
        return try await memory()
    }

    /// A write to memory, then to the backend unless the key must stay in memory; a backend that fails to answer
    /// leaves the key pending, as ``set(_:to:ttl:)`` does.
    private func writeBoth(
        _ key: String,
        memory: @escaping @Sendable () async throws -> Void,
        backend: @escaping @Sendable () async throws -> Void
    ) async throws {
        try checkOpen()
        var storedInMemory = true
        do {
            try await memory()
        } catch let error as CacheError where error.code == .valueTooLarge {
            try await local.delete(key)
            storedInMemory = false
        }
        let useBackend = state.withLock { state -> Bool in
            if state.mustUseMemory(for: key) {
                state.markPending(key)
                patterns.recordFallbackEvent()
                return false
            }
            return true
        }
        guard useBackend else {
            if !storedInMemory {
                throw CacheError.unavailable("The backend is unreachable and the value is too large for the fallback memory cache, so it was not stored.", key: key)
            }
            return
        }
        do {
            try await backend()
            noteSuccess()
        } catch where Self.isAvailabilityFailure(error) {
            state.withLock { $0.markPending(key) }
            noteFailure(error, fellBack: true)
            if !storedInMemory { throw error }
        }
    }
}
