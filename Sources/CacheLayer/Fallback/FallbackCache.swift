import Logging
import Synchronization

/// A cache that keeps working when its backend (Redis) does not: reads fall back to an in-memory cache,
/// writes go to both.
///
/// - Reads go to the backend first. When it fails with ``CacheError/Code/unavailable`` or
///   ``CacheError/Code/timeout``, the read is served from memory and does not fail.
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
/// Other errors (type mismatch, invalid key, value too large for both) are thrown as usual.
public final class FallbackCache: Cache {
    private let primary: any Cache
    private let local: any ReplayableCache
    private let probe: @Sendable () async throws -> Void
    private let configuration: FallbackConfiguration
    private let logger: Logger
    private let state: Mutex<State>
    /// Single-flight loads, pattern defaults and counters for `getOrSet` and friends.
    public let patterns: CachePatternsState

    private struct State {
        var breaker: CircuitBreaker
        /// Keys written while the backend failed, with the version of their latest such write.
        var pending: [String: UInt64] = [:]
        /// A `clear()` the backend has not seen yet; its generation.
        var clearPending: UInt64? = nil
        var version: UInt64 = 0
        /// Whether the probe task runs (set before the task exists, so only one starts).
        var probing = false
        var probeTask: Task<Void, Never>? = nil
        var subscribers: [Int: AsyncStream<FallbackHealthEvent>.Continuation] = [:]
        var nextSubscriber = 0
        var closed = false
        var fallbacks: UInt64 = 0
        var outages: UInt64 = 0
        var recoveries: UInt64 = 0

        /// Whether reads and writes of `key` must stay in memory for now.
        func mustUseMemory(for key: String) -> Bool {
            !breaker.allowsCalls || clearPending != nil || pending[key] != nil
        }

        mutating func markPending(_ key: String) {
            version += 1
            pending[key] = version
        }
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
        logger: Logger,
        probe: @escaping @Sendable () async throws -> Void
    ) throws {
        try configuration.validate()
        self.primary = primary
        self.local = local
        self.configuration = configuration
        self.logger = logger
        self.probe = probe
        self.state = Mutex(State(breaker: CircuitBreaker(failureThreshold: configuration.failureThreshold)))
        self.patterns = CachePatternsState(name: name, backend: "fallback", defaultTTL: defaultTTL, logger: logger)
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
        try checkOpen()
        var storedInMemory = true
        do {
            try await local.set(key, to: value, ttl: ttl)
        } catch let error as CacheError where error.code == .valueTooLarge {
            // Memory cannot hold it, the backend may. Drop the older memory copy so an outage never serves it.
            storedInMemory = false
            try await local.delete(key)
        }
        let useBackend = state.withLock { state -> Bool in
            if state.mustUseMemory(for: key) {
                state.markPending(key)
                state.fallbacks += 1
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
            try await primary.set(key, to: value, ttl: ttl)
            noteSuccess()
        } catch where Self.isAvailabilityFailure(error) {
            state.withLock { $0.markPending(key) }
            noteFailure(error, fellBack: true)
            if !storedInMemory { throw error }
        }
    }

    public func delete(_ key: String) async throws {
        try checkOpen()
        try await local.delete(key)
        let useBackend = state.withLock { state -> Bool in
            if state.mustUseMemory(for: key) {
                state.markPending(key)
                state.fallbacks += 1
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
                state.version += 1
                state.clearPending = state.version
                state.pending.removeAll()
                state.fallbacks += 1
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
            state.withLock { state in
                state.version += 1
                state.clearPending = state.version
                state.pending.removeAll()
            }
            noteFailure(error, fellBack: true)
        }
    }

    // MARK: Stats, health, life cycle

    /// Hits and misses of both sides; writes as seen by memory (which sees them all); size and entry count
    /// of the backend; evictions and expirations of memory; plus fallback, outage and recovery counts.
    public func stats() async -> CacheStats {
        let backend = await primary.stats()
        let memory = await local.stats()
        let counts = state.withLock { ($0.fallbacks, $0.outages, $0.recoveries) }
        var stats = CacheStats(
            hits: backend.hits + memory.hits, misses: backend.misses + memory.misses,
            sets: memory.sets, deletes: memory.deletes,
            evictions: memory.evictions, expirations: memory.expirations,
            size: backend.size, entryCount: backend.entryCount
        )
        stats.fallbacks = counts.0
        stats.outages = counts.1
        stats.recoveries = counts.2
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
        let (task, subscribers, alreadyClosed) = state.withLock { state in
            let result = (state.probeTask, Array(state.subscribers.values), state.closed)
            state.closed = true
            state.probeTask = nil
            state.subscribers.removeAll()
            return result
        }
        guard !alreadyClosed else { return }
        task?.cancel()
        await task?.value
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

    // MARK: Internals

    private func checkOpen() throws {
        if state.withLock({ $0.closed }) { throw CacheError.closed() }
    }

    /// Whether this read goes to the backend; counts a fallback when it does not.
    private func routeToBackend(_ key: String) throws -> Bool {
        state.withLock { state in
            if state.mustUseMemory(for: key) {
                state.fallbacks += 1
                patterns.recordFallbackEvent()
                return false
            }
            return true
        }
    }

    static func isAvailabilityFailure(_ error: any Error) -> Bool {
        guard let error = error as? CacheError else { return false }
        return error.code == .unavailable || error.code == .timeout
    }

    private func noteSuccess() {
        state.withLock { $0.breaker.recordSuccess() }
    }

    /// Counts an availability failure. The first failure starts the background probe, which replays pending
    /// writes as soon as the backend answers, whether or not the breaker opened.
    private func noteFailure(_ error: any Error, fellBack: Bool) {
        let (action, startProbe) = state.withLock { state -> (CircuitBreaker.Action, Bool) in
            if fellBack { state.fallbacks += 1
                patterns.recordFallbackEvent() }
            let action = state.breaker.recordFailure(now: .now)
            if action == .opened { state.outages += 1 }
            let startProbe = !state.probing && !state.closed
            if startProbe { state.probing = true }
            return (action, startProbe)
        }
        if action == .opened {
            logger.warning(
                "Backend lost: serving from memory until it answers again",
                metadata: ["cache.failure": "\(error)", "cache.failure_threshold": "\(configuration.failureThreshold)"]
            )
            publish(.backendLost(reason: String(describing: error)))
        }
        if startProbe {
            let task = Task { [self] in await self.probeUntilRecovered() }
            state.withLock { state in
                if state.closed { task.cancel() } else { state.probeTask = task }
            }
        }
    }

    /// Probes the backend until it answers, replays pending writes, then closes the breaker.
    private func probeUntilRecovered() async {
        defer { state.withLock { $0.probing = false } }
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: configuration.probeInterval)
                try await probe()
            } catch {
                continue
            }
            guard let replayed = await reconcile() else { continue }
            let (action, done) = state.withLock { state -> (CircuitBreaker.Action, Bool) in
                // A write may have failed again while replaying; keep going until nothing is pending.
                guard state.pending.isEmpty, state.clearPending == nil else { return (.none, false) }
                let action = state.breaker.recordRecovery()
                if action == .closed { state.recoveries += 1 }
                state.probing = false
                state.probeTask = nil
                return (action, true)
            }
            if action == .closed {
                logger.notice("Backend recovered: writes made during the outage replayed", metadata: ["cache.replayed_keys": "\(replayed)"])
                publish(.backendRecovered(reconciledKeys: replayed))
            }
            if done { return }
        }
    }

    /// Replays pending writes until none are left.
    ///
    /// Only the probe task runs this, one at a time, and writes to pending keys go to memory only, so it is
    /// the only writer of those keys to the backend and always writes memory's latest value.
    /// - Returns: the number of keys replayed, or `nil` when the backend failed again.
    private func reconcile() async -> Int? {
        var replayed = 0
        while true {
            let (clearGeneration, pending) = state.withLock { ($0.clearPending, $0.pending) }
            if pending.isEmpty && clearGeneration == nil { return replayed }
            do {
                if let clearGeneration {
                    try await primary.clear()
                    state.withLock { state in
                        if state.clearPending == clearGeneration { state.clearPending = nil }
                    }
                }
                for (key, version) in pending {
                    if let entry = try local.replayableEntry(key) {
                        try await primary.set(key, to: entry.value, ttl: entry.ttl ?? .noExpiry)
                    } else {
                        try await primary.delete(key)
                    }
                    replayed += 1
                    state.withLock { state in
                        if state.pending[key] == version { state.pending.removeValue(forKey: key) }
                    }
                }
            } catch {
                if Self.isAvailabilityFailure(error) {
                    noteFailure(error, fellBack: false)
                } else {
                    logger.error("Could not replay a write made during an outage", metadata: ["cache.failure": "\(error)"])
                }
                return nil
            }
        }
    }

    private func publish(_ event: FallbackHealthEvent) {
        let subscribers = state.withLock { Array($0.subscribers.values) }
        for subscriber in subscribers { subscriber.yield(event) }
    }
}
