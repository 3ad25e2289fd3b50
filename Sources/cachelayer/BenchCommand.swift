import CacheSimulation
import CommonSupport
import ArgumentParser
import CacheLayer
import Foundation
import Logging

/// `cachelayer bench`: throughput and latency of get and set on one backend.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure get/set throughput and latency of a cache backend.",
        discussion: """
            Workers pick keys from a Zipf distribution and read (get) or write (set) them for a fixed time, \
            after the key space has been filled once. Reports operations per second and p50/p99 latency per \
            operation, and the cache's statistics.
            """
    )

    @OptionGroup var target: BackendOptions

    /// Bench's workload defaults: 100,000 keys, Zipf 0.99, 2 workers, 256 MiB.
    enum Defaults: WorkloadDefaults {
        static let keys = 100_000
        static let zipf = 0.99
        static let concurrency = 2
        static let maxMemory = 256 * 1024 * 1024
    }

    @OptionGroup var workload: WorkloadOptions<Defaults>

    @Option(help: "Seconds of measurement after the warm-up fill.")
    var duration: Double = 5

    @OptionGroup var values: ValueOptions

    @Option(name: .customLong("read-ratio"), help: "Fraction of operations that are reads, from 0 to 1.")
    var readRatio: Double = 0.9

    @Option(help: "The memory cache's eviction strategy: expiry, lru, tinylfu or s3fifo. Default: the library default.")
    var strategy: String?

    @Flag(help: "With --backend redis: fall back to memory when Redis fails (with --near-cache: a fallback cache over the two-level cache).")
    var fallback = false

    @Flag(name: .customLong("near-cache"), help: "With --backend redis: put a near cache (a memory cache of --max-memory bytes, kept coherent by Redis client tracking) in front of Redis: the two-level cache.")
    var nearCache = false

    @Option(help: "With --near-cache: how L1 stays coherent: tracking (the default), pubSub or ttlOnly.")
    var coherence: NearCacheConfiguration.Coherence = .tracking

    @Flag(
        inversion: .prefixedNo,
        help: "With --near-cache: read every key once after the fill, untimed, so that L1 starts the measurement as full as the memory cache does (the fill's writes do not enter L1: see TwoLevelCache)."
    )
    var warmUp = true

    @Option(help: "Seconds to live of the values written (default: none). The near cache keeps values at most its maxTTL (5 minutes) anyway; give the memory cache the same to compare their hit paths like for like.")
    var ttl: Double?

    @Flag(help: "With --backend redis: run the same workload on the raw RedisClient pool (GET/SET of the bytes the cache would store), to measure the cache layer's own overhead.")
    var rawClient = false

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    func validate() throws {
        guard duration > 0, duration <= 3600 else { throw ValidationError("--duration must be between 0 and 3600 seconds.") }
        guard (0...1).contains(readRatio) else { throw ValidationError("--read-ratio must be between 0 and 1.") }
        if let ttl { guard ttl > 0, ttl <= 86_400 * 365 else { throw ValidationError("--ttl must be between 0 and a year.") } }
        if let strategy, EvictionStrategy(name: strategy) == nil {
            throw ValidationError("--strategy must be expiry, lru, tinylfu or s3fifo.")
        }
        let backend = target.backend
        if rawClient && (backend != .redis || fallback) { throw ValidationError("--raw-client needs --backend redis and no --fallback.") }
        if nearCache && (backend != .redis || rawClient) {
            throw ValidationError("--near-cache needs --backend redis, and not --raw-client.")
        }
        if backend == .memory && fallback { throw ValidationError("--fallback applies to --backend redis only.") }
    }

    func run() async throws {
        var configuration = try target.configuration()
        configuration.name = "bench"
        configuration.maxMemorySize = workload.maxMemory
        configuration.enableFallback = fallback
        if nearCache { configuration.nearCache = NearCacheConfiguration(maxMemorySize: workload.maxMemory, coherence: coherence) }
        configuration.defaultTTL = ttl.map { .milliseconds(Int64($0 * 1000)) } ?? .noExpiry
        if let strategy, let chosen = EvictionStrategy(name: strategy) { configuration.evictionStrategy = chosen }
        configuration.poolSize = max(configuration.poolSize, min(workload.concurrency, 256))
        configuration.maxIdleConnections = configuration.poolSize
        var workload = Workload(
            keys: workload.keys, valueSize: values.size, concurrency: workload.concurrency, readRatio: readRatio, zipf: workload.zipf,
            duration: .milliseconds(Int64(duration * 1000)), showProgress: !json,
            warmsReads: nearCache && warmUp
        )
        if rawClient {
            let result = try await RawClientWorkload(configuration: configuration, workload: workload).run()
            let report = BenchReport(backend: "redis-raw-client", result: result, stats: CacheStats())
            print(json ? try jsonLine(report) : report.table(concurrency: workload.concurrency, keys: workload.keys, valueSize: values.size, readRatio: readRatio, zipf: workload.zipf))
            return
        }
        let cache = try await makeCache(configuration, logger: Logger(label: "cachelayer.bench"))
        // The near cache's counters are reported for the timed phase only: taken once it starts, subtracted at the end.
        let nearCounters = Locked<(CacheStats, NearCacheStatistics)?>(nil)
        let nearStatistics: (@Sendable () -> NearCacheStatistics?)? =
            if let twoLevel = cache as? TwoLevelCache { { twoLevel.nearCacheStatistics } }
            else if let fallbackCache = cache as? FallbackCache, fallbackCache.nearCacheStatistics != nil { { fallbackCache.nearCacheStatistics } }
            else { nil }
        if let nearStatistics {
            workload.measurementStarts = {
                let stats = await cache.stats()
                if let statistics = nearStatistics() { nearCounters.withLock { $0 = (stats, statistics) } }
            }
        }

        let result: BenchResult
        do {
            result = try await workload.run(on: cache)
        } catch {
            try? await cache.close()
            throw error
        }
        let stats = await cache.stats()
        var near: BenchReport.NearCache?
        if let statistics = nearStatistics?(), let (startStats, startNear) = nearCounters.withLock({ $0 }) {
            near = BenchReport.NearCache(statistics, stats: stats).since(BenchReport.NearCache(startNear, stats: startStats))
        }
        try await cache.close()

        var backendName = !nearCache ? target.backend.rawValue : coherence == .tracking ? "redis+near-cache" : "redis+near-cache(\(coherence.rawValue))"
        if fallback && nearCache { backendName += "+fallback" }
        var report = BenchReport(backend: backendName, result: result, stats: stats)
        report.nearCache = near
        if json {
            print(try jsonLine(report))
        } else {
            print(report.table(concurrency: workload.concurrency, keys: workload.keys, valueSize: values.size, readRatio: readRatio, zipf: workload.zipf))
        }
    }
}

extension CacheConfiguration.Backend: ExpressibleByArgument {}
/// `tracking`, `pubSub` (also `pub-sub`, as `CACHE_NEAR_CACHE` spells it) or `ttlOnly`.
extension NearCacheConfiguration.Coherence: ExpressibleByArgument {
    public init?(argument: String) {
        self.init(rawValue: argument == "pub-sub" ? Self.pubSub.rawValue : argument)
    }
}

/// What a workload measured.
struct BenchResult: Sendable {
    var gets = LatencyRecorder()
    var sets = LatencyRecorder()
    var elapsed: Duration = .zero
}

/// A timed mixed get/set workload over Zipf-distributed keys.
struct Workload: Sendable {
    /// Distinct keys, bytes per value, and worker tasks.
    var keys, valueSize, concurrency: Int
    /// The share of reads, and the Zipf exponent of key popularity.
    var readRatio, zipf: Double
    var duration: Duration
    var showProgress: Bool
    /// Whether every key is read once after the fill, untimed: a near cache's L1 then starts full.
    var warmsReads = false
    /// Called once the fill (and warm-up) is done, just before the timed phase.
    var measurementStarts: (@Sendable () async -> Void)?

    /// Fills the key space, then measures `get` and `set` of the cache.
    ///
    /// Every key gets a string of its own (as values read from a database would be), not one shared string: with a
    /// shared one, every hit on every thread would retain and release the same object, and the bench would measure
    /// that contention rather than the cache.
    func run(on cache: any Cache) async throws -> BenchResult {
        let values = (0..<keys).map { _ in String(repeating: "v", count: valueSize) }
        return try await run(
            get: { key, _ in _ = try await cache.get(key, as: String.self) },
            set: { key, index in try await cache.set(key, to: values[index]) }
        )
    }

    /// Operations drawn per worker before the timed phase, then replayed in a loop.
    static let operationsPerWorker = 1 << 16
    /// Marks a write in a worker's plan.
    static let writeBit: UInt32 = 1 << 31

    /// Fills the key space with `set`, then runs the timed mix of `get` and `set` on Zipf-chosen keys. The closures
    /// receive the key and its index.
    ///
    /// Each worker draws its keys and its read/write choices before the timed phase (as the JMH benchmarks of
    /// Caffeine do), so the timed loop costs an array read per operation, not a Zipf sample with its logarithms.
    func run(
        get: @escaping @Sendable (String, Int) async throws -> Void,
        set: @escaping @Sendable (String, Int) async throws -> Void
    ) async throws -> BenchResult {
        let keyNames = (0..<keys).map { "key:\($0)" }

        // Fill the key space once so reads measure hits, as redis-benchmark's GET does after SET.
        let progress = ProgressLine(total: keys, label: "filling")
        let fillers = min(concurrency, 8)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<fillers {
                group.addTask {
                    for index in stride(from: worker, to: keyNames.count, by: fillers) {
                        try await set(keyNames[index], index)
                        if showProgress && worker == 0 && index % 4096 == 0 {
                            progress.update(done: index, detail: "\(index.grouped) keys")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        if showProgress {
            progress.update(done: keys, detail: "\(keys.grouped) keys")
            progress.finish()
        }
        if warmsReads {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<fillers {
                    group.addTask {
                        for index in stride(from: worker, to: keyNames.count, by: fillers) { try await get(keyNames[index], index) }
                    }
                }
                try await group.waitForAll()
            }
        }

        // Each worker's operations: the key's index, with the top bit set for a write.
        let sampler = ZipfSampler(count: keys, exponent: zipf)
        let plans: [[UInt32]] = (0..<concurrency).map { worker in
            var random = SplitMix64(seed: 0x5EED + UInt64(worker))
            return (0..<Self.operationsPerWorker).map { _ in
                let index = UInt32(sampler.next(using: &random) - 1)
                return Double.random(in: 0..<1, using: &random) < readRatio ? index : index | Self.writeBit
            }
        }

        await measurementStarts?()
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start + duration
        let measuring = ProgressLine(total: Int(duration / .milliseconds(100)), label: "measuring")
        var result = BenchResult()
        try await withThrowingTaskGroup(of: BenchResult.self) { group in
            for worker in 0..<concurrency {
                let plan = plans[worker]
                group.addTask {
                    var partial = BenchResult()
                    var operations = 0
                    while true {
                        if operations & 63 == 0 && clock.now >= deadline { break }
                        let operation = plan[operations & (Self.operationsPerWorker - 1)]
                        operations += 1
                        let index = Int(operation & ~Self.writeBit)
                        let began = clock.now
                        if operation & Self.writeBit == 0 {
                            try await get(keyNames[index], index)
                            partial.gets.record(clock.now - began)
                        } else {
                            try await set(keyNames[index], index)
                            partial.sets.record(clock.now - began)
                        }
                    }
                    return partial
                }
            }
            if showProgress {
                group.addTask {
                    while clock.now < deadline {
                        let elapsed = clock.now - start
                        measuring.update(done: Int(elapsed / .milliseconds(100)), detail: String(format: "%.1fs", Double(elapsed / .milliseconds(1)) / 1000))
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                    measuring.update(done: Int.max, detail: "done")
                    measuring.finish()
                    return BenchResult()
                }
            }
            for try await partial in group {
                result.gets.merge(partial.gets)
                result.sets.merge(partial.sets)
            }
        }
        result.elapsed = clock.now - start
        return result
    }
}

/// The bench's output, as a table or as JSON.
struct BenchReport: Encodable {
    struct Stats: Encodable {
        var hits, misses, sets, deletes, evictions, expirations: UInt64
        var size: Int
        var entries: Int
        var hitRate: Double
    }

    /// How a two-level cache's L1 served the reads: where its hits went.
    struct NearCache: Encodable {
        var hits, misses, coalescedMisses, fills, refusedFills, invalidatedKeys, invalidationMessages, flushes: UInt64

        /// L1 misses are the reads L1 did not serve: the cache's hits and misses less L1's hits.
        init(_ statistics: NearCacheStatistics, stats: CacheStats) {
            hits = statistics.nearHits
            misses = stats.hits + stats.misses - min(statistics.nearHits, stats.hits + stats.misses)
            coalescedMisses = statistics.coalescedMisses
            fills = statistics.fills
            refusedFills = statistics.refusedFills
            invalidatedKeys = statistics.invalidatedKeys
            invalidationMessages = statistics.invalidationMessages
            flushes = statistics.flushes
        }

        /// What the counters grew by since `start`.
        func since(_ start: NearCache) -> NearCache {
            var delta = self
            delta.hits -= min(start.hits, hits)
            delta.misses -= min(start.misses, misses)
            delta.coalescedMisses -= min(start.coalescedMisses, coalescedMisses)
            delta.fills -= min(start.fills, fills)
            delta.refusedFills -= min(start.refusedFills, refusedFills)
            delta.invalidatedKeys -= min(start.invalidatedKeys, invalidatedKeys)
            delta.invalidationMessages -= min(start.invalidationMessages, invalidationMessages)
            delta.flushes -= min(start.flushes, flushes)
            return delta
        }
    }

    var backend: String
    var elapsedSeconds: Double
    var operations: [OperationSummary]
    var stats: Stats
    /// With `--near-cache`: L1's counters during the timed phase.
    var nearCache: NearCache?
    private var renderedStats: String

    enum CodingKeys: CodingKey {
        case backend, elapsedSeconds, operations, stats, nearCache
    }

    init(backend: String, result: BenchResult, stats: CacheStats) {
        self.backend = backend
        let seconds = Double(result.elapsed / .milliseconds(1)) / 1000
        elapsedSeconds = seconds
        var all = result.gets
        all.merge(result.sets)
        operations = [("get", result.gets), ("set", result.sets), ("total", all)].map {
            OperationSummary(name: $0.0, recorder: $0.1, seconds: seconds)
        }
        self.stats = Stats(
            hits: stats.hits, misses: stats.misses, sets: stats.sets, deletes: stats.deletes,
            evictions: stats.evictions, expirations: stats.expirations, size: stats.size,
            entries: stats.entryCount, hitRate: stats.hitRate
        )
        renderedStats = statsTable(stats)
    }

    func table(concurrency: Int, keys: Int, valueSize: Int, readRatio: Double, zipf: Double) -> String {
        var table = TextTable("operation", "count", "ops/s", "p50 ms", "p99 ms")
        for operation in operations {
            table.add(
                operation.name, operation.operations.grouped, Int(operation.opsPerSec).grouped,
                String(format: "%.4f", operation.p50Ms), String(format: "%.4f", operation.p99Ms)
            )
        }
        var near = ""
        if let nearCache {
            near = """


                near cache: \(nearCache.hits.grouped) L1 hits, \(nearCache.misses.grouped) L1 misses (\(nearCache.coalescedMisses.grouped) coalesced), \(nearCache.fills.grouped) fills, \
                \(nearCache.refusedFills.grouped) refused fills, \(nearCache.invalidatedKeys.grouped) keys invalidated, \
                \(nearCache.invalidationMessages.grouped) invalidation messages, \(nearCache.flushes.grouped) flushes
                """
        }
        return """
            backend \(backend), \(concurrency) workers, \(keys.grouped) keys, \(valueSize)-byte values, \
            \(Int(readRatio * 100))% reads, zipf \(zipf), \(String(format: "%.1f", elapsedSeconds)) s

            \(table.render())

            \(renderedStats)\(near)
            """
    }
}
