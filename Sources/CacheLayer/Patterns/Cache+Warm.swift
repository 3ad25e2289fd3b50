extension Cache {
    /// Pre-populates the cache: stores every entry, `concurrency` writes at a time, and reports what failed.
    ///
    /// ```swift
    /// let report = await cache.warm(entries: popularUsers.map { (key: "user:\($0.id)", value: $0) }, ttl: .seconds(3600)) {
    ///     print("\($0.completed)/\($0.total ?? 0)")
    /// }
    /// if !report.failures.isEmpty { logger.warning("warming: \(report.failed) failures, first: \(report.failures[0])") }
    /// ```
    ///
    /// One bad entry never stops the rest: each failed entry is counted and the first ``WarmReport/maximumRecordedFailures``
    /// are kept with their keys. Entries are written with ``setMany(_:ttl:)`` in chunks of `batchSize` (one round trip
    /// each on Redis); when a chunk fails, its entries are written one by one so that only the bad ones count as failed.
    ///
    /// - Parameters:
    ///   - entries: The keys and values to store.
    ///   - ttl: As in ``set(_:to:ttl:)``.
    ///   - concurrency: Chunks written at once.
    ///   - batchSize: Entries per `setMany`; 1 writes each with ``set(_:to:ttl:)``.
    ///   - progress: Called after each chunk, in order, from the calling task.
    public func warm<Entries: Sequence, Value: Codable & Sendable>(
        entries: Entries,
        ttl: Duration? = nil,
        concurrency: Int = 8,
        batchSize: Int = 100,
        progress: (@Sendable (WarmProgress) -> Void)? = nil
    ) async -> WarmReport where Entries.Element == (key: String, value: Value) {
        var warmer = Warmer<Self, Value>(cache: self, ttl: ttl, concurrency: concurrency, batchSize: batchSize, total: entries.underestimatedCount > 0 ? entries.underestimatedCount : nil, progress: progress)
        await warmer.run(entries.makeIterator())
        return warmer.report
    }

    /// Pre-populates the cache from an asynchronous sequence (a database cursor, a file being read); as
    /// ``warm(entries:ttl:concurrency:batchSize:progress:)``.
    ///
    /// An error thrown by the sequence itself ends the warming; it is recorded in ``WarmReport/sequenceError``.
    public func warm<Entries: AsyncSequence, Value: Codable & Sendable>(
        entries: Entries,
        ttl: Duration? = nil,
        concurrency: Int = 8,
        batchSize: Int = 100,
        progress: (@Sendable (WarmProgress) -> Void)? = nil
    ) async -> WarmReport where Entries.Element == (key: String, value: Value) {
        var warmer = Warmer<Self, Value>(cache: self, ttl: ttl, concurrency: concurrency, batchSize: batchSize, total: nil, progress: progress)
        await warmer.run(entries.makeAsyncIterator())
        return warmer.report
    }

    /// Pre-populates the cache with the values `loader` returns for `keys`, `concurrency` loads at a time.
    ///
    /// A key whose load or write fails is counted as failed; the others go on.
    public func warm<Keys: Sequence, Value: Codable & Sendable>(
        keys: Keys,
        as type: Value.Type = Value.self,
        ttl: Duration? = nil,
        concurrency: Int = 8,
        progress: (@Sendable (WarmProgress) -> Void)? = nil,
        loader: @escaping @Sendable (String) async throws -> Value
    ) async -> WarmReport where Keys.Element == String {
        let clock = ContinuousClock()
        let start = clock.now
        var report = WarmReport()
        let total = keys.underestimatedCount
        let state = patterns
        await forEachSettled(keys, limit: concurrency) { key -> (String, (any Error)?) in
            do {
                let value = try await state.callFactory { try await loader(key) }
                try await self.set(key, to: value, ttl: ttl)
                return (key, nil)
            } catch {
                return (key, error)
            }
        } onResult: { key, error in
            if let error { report.recordFailure(key: key, error: error) } else { report.succeeded += 1 }
            progress?(WarmProgress(completed: report.attempted, succeeded: report.succeeded, failed: report.failed, total: total > 0 ? total : nil))
        }
        report.duration = clock.now - start
        return report
    }
}

/// How far a warming has got; passed to the `progress` callback of the `warm` methods of ``Cache``.
public struct WarmProgress: Sendable, Hashable {
    /// Entries written or failed so far.
    public var completed: Int
    /// Entries written so far.
    public var succeeded: Int
    /// Entries that failed so far.
    public var failed: Int
    /// How many entries there are, when the sequence knows it (its `underestimatedCount`, if positive).
    public var total: Int?

    /// Creates a progress report.
    public init(completed: Int, succeeded: Int, failed: Int, total: Int?) {
        self.completed = completed
        self.succeeded = succeeded
        self.failed = failed
        self.total = total
    }
}

/// The summary of a warming.
public struct WarmReport: Sendable {
    /// How many failures keep their key and error in ``failures``.
    public static let maximumRecordedFailures = 100

    /// One entry that could not be warmed.
    public struct Failure: Sendable, CustomStringConvertible {
        /// The entry's key.
        public var key: String
        /// Why it failed.
        public var error: any Error

        public var description: String { "\(key): \(error)" }
    }

    /// Entries stored.
    public var succeeded = 0
    /// Entries that could not be loaded or stored.
    public var failed = 0
    /// The first ``maximumRecordedFailures`` failures, in the order they happened.
    public var failures: [Failure] = []
    /// The error that ended an asynchronous sequence of entries early, if any.
    public var sequenceError: (any Error)?
    /// How long the warming took.
    public var duration: Duration = .zero

    /// Entries attempted: ``succeeded`` plus ``failed``.
    public var attempted: Int { succeeded + failed }

    /// Entries stored per second.
    public var entriesPerSecond: Double {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return seconds > 0 ? Double(succeeded) / seconds : 0
    }

    /// Creates an empty report.
    public init() {}

    mutating func recordFailure(key: String, error: any Error) {
        failed += 1
        if failures.count < Self.maximumRecordedFailures { failures.append(Failure(key: key, error: error)) }
    }
}

/// Writes chunks of entries with bounded concurrency and collects the report.
private struct Warmer<Base: Cache, Value: Codable & Sendable> {
    typealias Chunk = [(key: String, value: Value)]

    let cache: Base
    let ttl: Duration?
    let concurrency: Int
    let batchSize: Int
    let total: Int?
    let progress: (@Sendable (WarmProgress) -> Void)?
    let clock = ContinuousClock()
    var report = WarmReport()

    init(cache: Base, ttl: Duration?, concurrency: Int, batchSize: Int, total: Int?, progress: (@Sendable (WarmProgress) -> Void)?) {
        self.cache = cache
        self.ttl = ttl
        self.concurrency = max(concurrency, 1)
        self.batchSize = max(batchSize, 1)
        self.total = total
        self.progress = progress
    }

    mutating func run<Iterator: IteratorProtocol>(_ iterator: Iterator) async where Iterator.Element == (key: String, value: Value) {
        let start = clock.now
        var iterator = iterator
        let batchSize = self.batchSize
        let chunks = AnyIterator<Chunk> {
            var chunk: Chunk = []
            while chunk.count < batchSize, let entry = iterator.next() { chunk.append(entry) }
            return chunk.isEmpty ? nil : chunk
        }
        await write(IteratorSequence(chunks))
        report.duration = clock.now - start
    }

    mutating func run<Iterator: AsyncIteratorProtocol>(_ iterator: Iterator) async where Iterator.Element == (key: String, value: Value) {
        let start = clock.now
        var iterator = iterator
        // Read a window of chunks, write it concurrently, repeat: the sequence is consumed by this task only.
        var exhausted = false
        while !exhausted {
            var window: [Chunk] = []
            while window.count < concurrency, !exhausted {
                var chunk: Chunk = []
                do {
                    while chunk.count < batchSize, let entry = try await iterator.next() { chunk.append(entry) }
                } catch {
                    report.sequenceError = error
                    exhausted = true
                }
                if chunk.count < batchSize { exhausted = true }
                if !chunk.isEmpty { window.append(chunk) }
            }
            await write(window)
        }
        report.duration = clock.now - start
    }

    /// Writes the chunks, `concurrency` at a time, and adds their outcomes to the report.
    private mutating func write<Chunks: Sequence>(_ chunks: Chunks) async where Chunks.Element == Chunk {
        let cache = self.cache
        let ttl = self.ttl
        var report = self.report
        let progress = self.progress
        let total = self.total
        await forEachSettled(chunks, limit: concurrency) { chunk in
            await Self.write(chunk, to: cache, ttl: ttl)
        } onResult: { outcome in
            report.succeeded += outcome.succeeded
            for (key, error) in outcome.failures { report.recordFailure(key: key, error: error) }
            progress?(WarmProgress(completed: report.attempted, succeeded: report.succeeded, failed: report.failed, total: total))
        }
        self.report.succeeded = report.succeeded
        self.report.failed = report.failed
        self.report.failures = report.failures
    }

    /// Writes one chunk with `setMany`; when that fails, entry by entry to find the bad ones.
    private static func write(_ chunk: Chunk, to cache: Base, ttl: Duration?) async -> (succeeded: Int, failures: [(String, any Error)]) {
        if chunk.count > 1 {
            var entries: [String: Value] = [:]
            for entry in chunk { entries[entry.key] = entry.value }
            if (try? await cache.setMany(entries, ttl: ttl)) != nil { return (chunk.count, []) }
        }
        var succeeded = 0
        var failures: [(String, any Error)] = []
        for entry in chunk {
            do {
                try await cache.set(entry.key, to: entry.value, ttl: ttl)
                succeeded += 1
            } catch {
                failures.append((entry.key, error))
            }
        }
        return (succeeded, failures)
    }
}

/// Runs `operation` for every item with at most `limit` at once; results reach `onResult` in the calling task.
/// The operation reports its own failures, so nothing stops the others.
func forEachSettled<Items: Sequence, Output: Sendable>(
    _ items: Items,
    limit: Int,
    operation: @escaping @Sendable (Items.Element) async -> Output,
    onResult: (Output) -> Void
) async where Items.Element: Sendable {
    await withTaskGroup(of: Output.self) { group in
        var iterator = items.makeIterator()
        var running = 0
        while running < max(limit, 1), let item = iterator.next() {
            group.addTask { await operation(item) }
            running += 1
        }
        while let output = await group.next() {
            onResult(output)
            if let item = iterator.next() {
                group.addTask { await operation(item) }
            }
        }
    }
}
