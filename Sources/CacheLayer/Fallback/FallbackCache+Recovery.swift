import CommonSupport
import Logging
import Synchronization

/// Who owns the probe of a ``FallbackCache``'s backend: nobody, one owner (identified, so a probe that was replaced
/// cannot release its successor), or nobody ever again (closed).
///
/// A value type driven by events, testable without a backend; the fallback cache keeps it behind its lock, and makes
/// every decision to start or stop a probe in the same critical section as the facts it depends on (the journal is
/// empty, the breaker is closed).
package struct ProbeStateMachine: Sendable, Equatable {
    package enum State: Sendable, Equatable {
        case idle
        case running(owner: UInt64)
        case closed
    }

    package private(set) var state: State = .idle
    private var lastOwner: UInt64 = 0

    package init() {}

    /// Claims the probe; returns the new owner's id when the caller must start one, `nil` when one runs (or the
    /// cache is closed).
    package mutating func start() -> UInt64? {
        guard case .idle = state else { return nil }
        lastOwner += 1
        state = .running(owner: lastOwner)
        return lastOwner
    }

    /// The probe of `owner` ends; returns whether it was the owner (a stale probe changes nothing).
    @discardableResult
    package mutating func stop(_ owner: UInt64) -> Bool {
        guard case .running(let current) = state, current == owner else { return false }
        state = .idle
        return true
    }

    /// No probe may start again.
    package mutating func close() {
        state = .closed
    }

    package var isRunning: Bool {
        if case .running = state { return true }
        return false
    }
}

extension FallbackCache {
    /// Keys replayed per backend batch: one `UNLINK` each when invalidating.
    static var replayBatchSize: Int { 256 }
    /// Writes in flight at once when writing back (spread over the pool's connections).
    static var writeBackConcurrency: Int { 8 }

    /// Starts the probe for `owner` (who claimed it under the lock): it probes the backend until it answers, replays
    /// the journal, closes the breaker, and goes on replaying until the journal is empty. It holds the cache only for
    /// one round, so an abandoned cache is freed (and its deinit cancels the probe) even while the backend stays down.
    func spawnProbe(owner: UInt64) {
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
                if await self.probeRound(owner: owner, replayedSinceOutage: &replayedSinceOutage) { return }
            }
            // Cancelled (closing, or run() ended): give up ownership; run()'s end starts a new probe if needed.
            self?.state.withLock { _ = $0.probe.stop(owner) }
        }
        state.withLock { state in
            state.probePlacement = placement
            if placement == .dropped { state.probe.stop(owner) }
        }
    }

    /// Restarts the probe when ``run()`` ended (and cut it short) while the cache stays open and the backend is
    /// still down or has writes to replay.
    func resumeProbeIfNeeded() {
        let owner = state.withLock { state -> UInt64? in
            guard !state.breaker.allowsCalls || !state.journal.isEmpty else { return nil }
            return state.probe.start()
        }
        if let owner { spawnProbe(owner: owner) }
    }

    /// One round of the probe: probes, replays, and closes the breaker when the backend answered and the journal's
    /// clear and invalidations went through.
    /// - Returns: Whether the probe is done (its ownership released: the breaker is closed and the journal empty).
    private func probeRound(owner: UInt64, replayedSinceOutage: inout Int) async -> Bool {
        do {
            try await probe()
        } catch {
            return false
        }
        guard let replayed = await replayPass() else { return false }
        replayedSinceOutage += replayed
        let (action, done) = state.withLock { state -> (CircuitBreaker.Action, Bool) in
            // A pending clear or invalidation concerns every key: the breaker stays open until it is replayed.
            guard !state.journal.concernsEveryKey else { return (.none, false) }
            // Keys written again while they were replayed are still in the journal: memory keeps serving them and the
            // next pass replays them. Closing the breaker now means sustained writes cannot keep the backend out for
            // ever (while it is open, every write records its key).
            let action = state.breaker.recordRecovery()
            if action == .closed { state.recoveries += 1 }
            guard state.journal.isEmpty else { return (action, false) }
            state.probe.stop(owner)
            return (action, true)
        }
        if action == .closed {
            logger.notice(
                "Backend recovered: writes made during the outage \(configuration.recovery == .invalidate ? "invalidated in" : "written back to") the backend",
                metadata: ["cache.replayed_keys": "\(replayedSinceOutage)"]
            )
            publish(.backendRecovered(reconciledKeys: replayedSinceOutage))
        }
        return done
    }

    /// Replays the journal once, in its order (the clear, invalidations, then keys in batches); keys recorded again
    /// meanwhile stay for the next pass.
    /// - Returns: the number of keys replayed, or `nil` when the backend failed again (or the pass was cancelled).
    func replayPass() async -> Int? {
        let plan = state.withLock { $0.journal.plan(batchSize: Self.replayBatchSize) }
        var replayed = 0
        do {
            if let clear = plan.clear {
                if state.withLock({ $0.journal.takeOverflowNotice() }) {
                    logger.warning(
                        "More keys were written during the outage than the journal holds (maxPendingKeys): clearing the namespace in the backend instead of replaying them",
                        metadata: ["cache.max_pending_keys": "\(configuration.maxPendingKeys)"]
                    )
                }
                try await skippingRefusal("clear") { try await primary.clear() }
                state.withLock { $0.journal.completeClear(clear) }
            }
            for record in plan.invalidations {
                try await skippingRefusal("invalidate") {
                    switch record.invalidation {
                    case .tag(let tag): try await primary.invalidate(tag: tag)
                    case .prefix(let prefix): try await primary.invalidate(prefix: prefix)
                    }
                }
                state.withLock { $0.journal.completeInvalidation(record.version) }
            }
            for batch in plan.batches {
                let epoch = state.withLock { $0.invalidationEpoch }
                switch configuration.recovery {
                case .invalidate: try await invalidate(batch)
                case .writeBack: try await writeBack(batch)
                }
                replayed += batch.count
                state.withLock { state in
                    if configuration.recovery == .writeBack, state.invalidationEpoch != epoch {
                        // A clear or invalidation reached the backend while these writes were in flight, and a write
                        // that landed after it would undo it: replay the keys again (memory no longer holds what it
                        // removed, so the next pass deletes them).
                        for record in batch { state.journal.record(record.key, tags: record.tags) }
                        return
                    }
                    let completed = state.journal.completeKeys(batch)
                    if configuration.recovery == .invalidate {
                        // Memory now agrees with the backend, which has no value: the next read loads a fresh one.
                        for key in completed { memory.forget(key) }
                    }
                }
            }
            return replayed
        } catch {
            if Self.isAvailabilityFailure(error) {
                noteFailure(error, fellBack: false)
            } else if !Self.isCancellation(error) {
                // skippingRefusal lets only availability failures and cancellation through; anything else is a bug.
                logger.error("Could not replay the writes made during an outage", metadata: ["cache.failure": "\(keylessDescription(of: error))"])
            }
            return nil
        }
    }

    /// Removes the keys from the backend with one batch (`UNLINK`); when the batch is refused (a key the backend does
    /// not accept), key by key, skipping the refused ones.
    private func invalidate(_ batch: [OutageJournal.KeyRecord]) async throws {
        let keys = batch.map(\.key)
        do {
            try await primary.deleteMany(keys)
        } catch where !Self.isAvailabilityFailure(error) && !Self.isCancellation(error) {
            for key in keys {
                try await skippingRefusal("delete", key: key) { try await primary.delete(key) }
            }
        }
    }

    /// Writes memory's values back to the backend (deletes the keys memory no longer holds), a few at a time.
    private func writeBack(_ batch: [OutageJournal.KeyRecord]) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = batch.makeIterator()
            var running = 0
            while true {
                while running < Self.writeBackConcurrency, let record = next.next() {
                    group.addTask { try await self.writeBack(record) }
                    running += 1
                }
                guard running > 0 else { break }
                try await group.next()
                running -= 1
            }
        }
    }

    /// Writes one key back; when the backend refuses the write (`OOM`, a reserved key), deletes the key there instead,
    /// so it does not keep a value older than the one written during the outage.
    private func writeBack(_ record: OutageJournal.KeyRecord) async throws {
        let key = record.key
        var refused = false
        try await skippingRefusal("set", key: key, onRefusal: { refused = true }) {
            guard let entry = try memory.cache.replayableEntry(key) else {
                try await primary.delete(key)
                return
            }
            let ttl = entry.ttl ?? .noExpiry
            if let stored = entry.value as? StoredBytes {
                try await primary.setBytes(key, to: stored.bytes, ttl: ttl)
            } else if record.tags.isEmpty {
                try await primary.set(key, to: entry.value, ttl: ttl)
            } else {
                try await primary.set(key, to: entry.value, ttl: ttl, tags: record.tags)
            }
        }
        if refused {
            do {
                try await primary.delete(key)
            } catch where !Self.isAvailabilityFailure(error) && !Self.isCancellation(error) {
                // Refused too (a key the backend does not accept at all): already counted and logged once.
            }
        }
    }

    /// Runs one replay step; an error that is not an availability failure (nor cancellation) is logged (the key at
    /// debug level only), counted in ``replayRefusals`` and skipped, so one write the backend refuses (a reserved key, a
    /// `clear()` Redis cannot do without a namespace, `OOM`) cannot stall recovery for every other key. Availability
    /// failures and cancellation are rethrown: the pass ends and the probe tries again.
    private func skippingRefusal(
        _ operation: String, key: String? = nil, onRefusal: () -> Void = {}, _ step: () async throws -> Void
    ) async throws {
        do {
            try await step()
        } catch {
            if Self.isAvailabilityFailure(error) || Self.isCancellation(error) { throw error }
            onRefusal()
            replayRefusalCount.add(1, ordering: .relaxed)
            var metadata: Logger.Metadata = ["cache.operation": "\(operation)", "cache.failure": "\(keylessDescription(of: error))"]
            if let key, logger.logLevel <= .debug { metadata["cache.key"] = "\(key)" }
            logger.error("The backend refused to replay a change made during an outage; it is skipped (a refused write is deleted in the backend instead)", metadata: metadata)
        }
    }

    static func isCancellation(_ error: any Error) -> Bool {
        Task.isCancelled || error is CancellationError || (error as? CacheError)?.code == .cancelled
    }

    /// Replays what the journal still holds, if the backend answers within ``FallbackConfiguration/closeTimeout``;
    /// called by ``close()`` after the probe stopped. Past the deadline the rest is dropped, and logged.
    func drainJournal() async {
        guard !state.withLock({ $0.journal.isEmpty }) else { return }
        let drained = await Self.within(configuration.closeTimeout) { [self] in
            do {
                try await probe()
            } catch {
                return false
            }
            guard await replayPass() != nil else { return false }
            return state.withLock { $0.journal.isEmpty }
        }
        if !drained {
            let pending = state.withLock { $0.journal.keyCount }
            logger.warning(
                "Closing with writes made during an outage that the backend never received",
                metadata: ["cache.pending_keys": "\(pending)", "cache.close_timeout": "\(configuration.closeTimeout)"]
            )
        }
    }

    /// Runs `operation` and returns its result, or `false` once `timeout` passed (the operation then goes on in the
    /// background until its own calls fail or return; closing the backend ends them).
    static func within(_ timeout: Duration, _ operation: @escaping @Sendable () async -> Bool) async -> Bool {
        let (results, sink) = AsyncStream.makeStream(of: Bool.self, bufferingPolicy: .bufferingNewest(2))
        let work = Task {
            sink.yield(await operation())
            sink.finish()
        }
        let timer = Task {
            try? await Task.sleep(for: timeout.boundedForSleep)
            sink.yield(false)
            sink.finish()
        }
        var iterator = results.makeAsyncIterator()
        let result = await iterator.next() ?? false
        timer.cancel()
        work.cancel()
        return result
    }
}
