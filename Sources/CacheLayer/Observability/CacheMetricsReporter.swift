import CommonSupport
import Metrics
import ServiceLifecycle
import Synchronization

/// Exports a cache's counters to swift-metrics without touching its hot path.
///
/// Every `interval` the reporter reads ``Cache/stats()`` and ``CachePatternsState/counters`` and adds what grew
/// since the last reading to its counters; gauges get the current size and entry count. The latency timers are fed
/// by the built-in backends, one call in 64, while the reporter runs. With the default
/// no-op metrics backend this costs one `stats()` call per interval.
///
/// | Metric | Type | Source |
/// |---|---|---|
/// | `cache_hits`, `cache_misses`, `cache_sets`, `cache_deletes`, `cache_evictions`, `cache_expirations` | counter | ``CacheStats`` |
/// | `cache_fallback_events`, `cache_factory_calls`, `cache_factory_errors`, `cache_stale_served`, `cache_timeouts`, `cache_background_refreshes`, `cache_write_failures` | counter | ``CachePatternCounters`` |
/// | `cache_size_bytes`, `cache_entries` | gauge | ``CacheStats`` |
/// | `cache_get_duration`, `cache_set_duration` | timer | sampled by the built-in backends |
///
/// Every metric has the dimensions `cache` (the cache's name) and `backend`.
///
/// It is a `Service`: add it (or a ``CacheService``, which includes one) to your application's `ServiceGroup`;
/// it reports a last time and stops on graceful shutdown.
public final class CacheMetricsReporter: Service, Sendable {
    /// The `cache` and `backend` dimensions of every metric.
    public let dimensions: [(String, String)]
    /// Time between two readings.
    public let interval: Duration

    private let cache: any Cache
    private let counters: [(label: String, counter: Counter)]
    private let size: Gauge
    private let entries: Gauge
    private let getDuration: Metrics.Timer
    private let setDuration: Metrics.Timer
    private let last = Locked<[UInt64]?>(nil)

    /// The names of the counters, in the order of ``readings(stats:patterns:)``.
    static let counterLabels = [
        "cache_hits", "cache_misses", "cache_sets", "cache_deletes", "cache_evictions", "cache_expirations",
        "cache_fallback_events", "cache_factory_calls", "cache_factory_errors", "cache_stale_served", "cache_timeouts",
        "cache_background_refreshes", "cache_write_failures",
    ]

    /// Creates a reporter for `cache`.
    ///
    /// - Parameters:
    ///   - cache: The cache whose counters are exported.
    ///   - name: The `cache` dimension; `nil` uses ``CachePatternsState/name``.
    ///   - backend: The `backend` dimension; `nil` uses ``CachePatternsState/backend``.
    ///   - interval: Time between two readings of the counters.
    ///   - factory: Where metrics go; by default the one bootstrapped with `MetricsSystem.bootstrap`.
    public init(
        cache: any Cache,
        name: String? = nil,
        backend: String? = nil,
        interval: Duration = .seconds(10),
        factory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.cache = cache
        self.interval = interval
        let dimensions = [("cache", name ?? cache.patterns.name), ("backend", backend ?? cache.patterns.backend)]
        self.dimensions = dimensions
        self.counters = Self.counterLabels.map { ($0, Counter(label: $0, dimensions: dimensions, factory: factory)) }
        self.size = Gauge(label: "cache_size_bytes", dimensions: dimensions, factory: factory)
        self.entries = Gauge(label: "cache_entries", dimensions: dimensions, factory: factory)
        self.getDuration = Metrics.Timer(label: "cache_get_duration", dimensions: dimensions, factory: factory)
        self.setDuration = Metrics.Timer(label: "cache_set_duration", dimensions: dimensions, factory: factory)
    }

    /// Reports every `interval` until graceful shutdown or cancellation, then reports a last time.
    ///
    /// While it runs, the backend's sampled `get`/`set` latencies go to the timers.
    public func run() async throws {
        let sampler = cache.patterns.latency
        sampler.install(get: getDuration, set: setDuration)
        defer { sampler.uninstall() }
        await report()
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { [interval] in try await Task.sleep(for: interval) }
            } catch {
                break
            }
            await report()
        }
        await report()
    }

    /// Reads the cache's counters once and exports what changed since the previous reading.
    public func report() async {
        let stats = await cache.stats()
        let readings = Self.readings(stats: stats, patterns: cache.patterns.counters)
        let deltas = last.withLock { last -> [UInt64] in
            defer { last = readings }
            guard let previous = last else { return readings }
            // A counter that went down was reset (e.g. the backend restarted): count it from zero.
            return zip(readings, previous).map { now, before in now >= before ? now - before : now }
        }
        for (delta, (_, counter)) in zip(deltas, counters) where delta > 0 {
            counter.increment(by: Int64(clamping: delta))
        }
        size.record(stats.size)
        entries.record(stats.entryCount)
    }

    /// The counter values in the order of ``counterLabels``.
    static func readings(stats: CacheStats, patterns: CachePatternCounters) -> [UInt64] {
        [
            stats.hits, stats.misses, stats.sets, stats.deletes, stats.evictions, stats.expirations,
            patterns.fallbackEvents, patterns.factoryCalls, patterns.factoryErrors, patterns.staleValuesServed,
            patterns.timeouts, patterns.backgroundRefreshes, patterns.cacheWriteFailures,
        ]
    }
}
