import Logging

extension Cache {
    /// The default implementation: single flight per key through the cache's ``Cache/patterns``, with the
    /// options of ``GetOrSetOptions``.
    public func getOrSet<Value: Codable & Sendable>(
        _ key: String,
        as type: Value.Type,
        ttl: Duration?,
        options: GetOrSetOptions?,
        factory: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        try await singleFlightGetOrSet(key, ttl: ttl, options: options ?? patterns.defaultOptions, factory: factory)
    }

    /// The value under `key`, or the result of `factory` stored under `key` when there is none; the cache's
    /// ``CachePatternsState/defaultOptions`` apply.
    ///
    /// ```swift
    /// let user = try await cache.getOrSet("user:\(id)", ttl: .seconds(3600)) {
    ///     try await database.user(id: id)
    /// }
    /// ```
    ///
    /// Concurrent callers for one key share one factory call; see ``Cache/getOrSet(_:as:ttl:options:factory:)``.
    public func getOrSet<Value: Codable & Sendable>(
        _ key: String,
        as type: Value.Type = Value.self,
        ttl: Duration? = nil,
        factory: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        try await getOrSet(key, as: type, ttl: ttl, options: nil, factory: factory)
    }

    /// The value under `key`, or the result of `factory` stored under `key` when there is none, with these options.
    ///
    /// ```swift
    /// let price = try await cache.getOrSet("price:\(sku)", ttl: .seconds(60), options: .failSafe(gracePeriod: .seconds(3600))) {
    ///     try await pricing.price(sku)
    /// }
    /// ```
    public func getOrSet<Value: Codable & Sendable>(
        _ key: String,
        as type: Value.Type = Value.self,
        ttl: Duration? = nil,
        options: GetOrSetOptions,
        factory: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        try await getOrSet(key, as: type, ttl: ttl, options: Optional(options), factory: factory)
    }

    /// The backend-independent `getOrSet`; backends that override the requirement can still call it.
    package func singleFlightGetOrSet<Value: Codable & Sendable>(
        _ key: String,
        ttl: Duration?,
        options: GetOrSetOptions,
        factory: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        try CacheKey.validate(key)
        try options.validate()
        if let ttl, ttl <= .zero { throw CacheError.invalidTTL(key: key, ttl: ttl) }
        if options.usesEnvelope {
            return try await envelopeGetOrSet(EnvelopeLoad(key: key, ttl: ttl, options: options, factory: factory))
        }
        if let value = try await get(key, as: Value.self) { return value }
        let state = patterns
        return try await flight(key, timeout: options.hardTimeout, options: options) {
            try await self.get(key, as: Value.self)
        } load: { stillOwner in
            let value = try await state.callFactory(factory)
            if await stillOwner() {
                do {
                    try await self.set(key, to: value, ttl: ttl)
                } catch {
                    state.recordCacheWriteFailure("getOrSet", key: key, error: error)
                }
            }
            return value
        }
    }

    /// Runs `load` once for `key` in this process (and across instances with distributed single flight) while
    /// concurrent callers wait for its result; `current` is asked first, inside the flight, so that a caller that
    /// missed just before the previous flight stored its value does not load a second time.
    private func flight<Value: Sendable>(
        _ key: String,
        timeout: Duration?,
        options: GetOrSetOptions,
        current: @escaping @Sendable () async throws -> Value?,
        load: @escaping @Sendable (_ stillOwner: @escaping @Sendable () async -> Bool) async throws -> Value
    ) async throws -> Value {
        try await patterns.awaitFlight(key, timeout: timeout, flightBound: options.hardTimeout) { [self] in
            if let value = try await current() { return value }
            return try await self.distributedFlight(key, options: options, check: current, load: load)
        }
    }

    // MARK: Envelopes (fail-safe, early refresh)

    private func envelopeGetOrSet<Value: Codable & Sendable>(_ load: EnvelopeLoad<Value>) async throws -> Value {
        let (key, options) = (load.key, load.options)
        let state = patterns
        let now = state.nowMilliseconds()
        let envelope = try await readEnvelope(key, as: Value.self)
        if let envelope, now < envelope.expiresAt {
            if let refreshAt = envelope.refreshAt, now >= refreshAt, !state.flights.isRunning(key) {
                startEarlyRefresh(load)
            }
            return envelope.value
        }

        var stale: Value?
        if let gracePeriod = options.gracePeriod, let envelope,
           now < envelope.expiresAt.addingSaturating(gracePeriod.milliseconds) {
            stale = envelope.value
        }
        let timeout = stale == nil ? options.hardTimeout : (options.softTimeout ?? options.hardTimeout)
        do {
            return try await flight(key, timeout: timeout, options: options) {
                guard let current = try await self.readEnvelope(key, as: Value.self),
                      state.nowMilliseconds() < current.expiresAt else { return nil }
                return current.value
            } load: { stillOwner in
                try await self.loadIntoEnvelope(load, store: stillOwner)
            }
        } catch let error as CacheError where error.code == .cancelled {
            throw error
        } catch {
            guard let stale else { throw error }
            state.recordStaleValueServed()
            state.warning("Serving a stale value: the factory failed or exceeded its timeout", key: key, error: error)
            return stale
        }
    }

    /// Reloads `key` in the background through the single-flight table; readers keep the current value.
    private func startEarlyRefresh<Value: Codable & Sendable>(_ load: EnvelopeLoad<Value>) {
        let (key, options) = (load.key, load.options)
        let state = patterns
        do {
            let started = try state.flights.startIfIdle(key, timeout: options.hardTimeout ?? state.flightTimeout) {
                [self] () async throws -> Value in
                let now = state.nowMilliseconds()
                // Another process (or a flight that just ended) may have refreshed it already.
                if let current = try await self.readEnvelope(key, as: Value.self), now < current.expiresAt,
                   current.refreshAt.map({ now < $0 }) ?? true {
                    return current.value
                }
                do {
                    return try await self.loadIntoEnvelope(load)
                } catch {
                    state.recordBackgroundRefreshFailure()
                    state.warning("Early refresh failed; the current value is served until it expires", key: key, error: error)
                    throw error
                }
            }
            if started { state.recordBackgroundRefresh() }
        } catch {
            // A flight of another value type runs for this key; the reader's value is still good.
        }
    }

    /// Calls the factory and stores its value in an envelope; a failed store is counted, not thrown.
    private func loadIntoEnvelope<Value: Codable & Sendable>(
        _ load: EnvelopeLoad<Value>,
        store: @Sendable () async -> Bool = { true }
    ) async throws -> Value {
        let (key, ttl, options) = (load.key, load.ttl, load.options)
        let state = patterns
        let value = try await state.callFactory(load.factory)
        // A distributed flight's owner that lost its lock does not store its (older) value.
        guard await store() else { return value }
        let now = state.nowMilliseconds()
        let logicalTTL = ttl ?? state.defaultTTL ?? .noExpiry
        let envelope: CacheEnvelope<Value>
        let physicalTTL: Duration
        if logicalTTL.isNoExpiry {
            envelope = CacheEnvelope(value: value, expiresAt: .max, refreshAt: nil)
            physicalTTL = .noExpiry
        } else {
            let ttlMilliseconds = logicalTTL.milliseconds
            envelope = CacheEnvelope(
                value: value,
                expiresAt: now.addingSaturating(ttlMilliseconds),
                refreshAt: options.refreshAhead.map { now.addingSaturating(Int64(Double(ttlMilliseconds) * $0)) }
            )
            // Both are below `noExpiry` (2^40 s) unless one means "never": the sum cannot overflow.
            let grace = options.gracePeriod ?? .zero
            physicalTTL = grace.isNoExpiry ? .noExpiry : min(logicalTTL + grace, .noExpiry)
        }
        do {
            try await set(key, to: envelope, ttl: physicalTTL)
        } catch {
            state.recordCacheWriteFailure("getOrSet", key: key, error: error)
        }
        return value
    }

    /// The envelope under `key`; `nil` when absent or when something else is stored there.
    private func readEnvelope<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> CacheEnvelope<Value>? {
        do {
            return try await get(key, as: CacheEnvelope<Value>.self)
        } catch let error as CacheError where error.code == .typeMismatch || error.code == .decodingFailed {
            return nil
        }
    }
}

extension CachePatternsState {
    /// Waits for the flight of `key` (starting it with `operation` if none runs), at most `timeout` (by default the
    /// flight's bound).
    ///
    /// A flight this call starts is bounded by `flightBound`, else by ``flightTimeout``: after that the next caller
    /// starts a new flight (see ``SingleFlight``). On timeout the flight goes on and stores its value; the caller
    /// gets ``CacheError/Code/timeout``.
    func awaitFlight<Value: Sendable>(
        _ key: String,
        timeout: Duration?,
        flightBound: Duration?,
        operation: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        let bound = flightBound ?? flightTimeout
        guard let timeout = timeout ?? bound else { return try await flights.run(key, operation: operation) }
        let flights = self.flights
        let outcome = try await withThrowingTaskGroup(of: FlightOutcome<Value>.self) { group in
            group.addTask { .value(try await flights.run(key, timeout: bound, operation: operation)) }
            group.addTask {
                do {
                    try await Task.sleep(for: timeout.boundedForSleep)
                } catch {
                    throw CacheError.cancelled(key: key)
                }
                return .timedOut
            }
            defer { group.cancelAll() }
            return try await group.next() ?? .timedOut
        }
        switch outcome {
        case .value(let value):
            return value
        case .timedOut:
            recordTimeout()
            throw CacheError.timeout(
                "The factory did not finish within \(timeout). It keeps running and stores its value when it succeeds; raise the timeout or enable fail-safe to serve a stale value meanwhile.",
                key: key
            )
        }
    }
}

/// How a wait for a flight with a timeout ended.
private enum FlightOutcome<Value: Sendable>: Sendable {
    case value(Value)
    case timedOut
}

extension Int64 {
    /// `self + other`, clamped to the range of `Int64`.
    func addingSaturating(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        if overflow { return other > 0 ? .max : .min }
        return sum
    }
}

/// A `getOrSet` whose value is kept in a ``CacheEnvelope`` (fail-safe, early refresh): the key, how long the value
/// lives, the options and the factory that loads it.
private struct EnvelopeLoad<Value: Codable & Sendable>: Sendable {
    let key: String
    let ttl: Duration?
    let options: GetOrSetOptions
    let factory: @Sendable () async throws -> Value
}
