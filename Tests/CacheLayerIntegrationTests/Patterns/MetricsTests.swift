import CacheLayer
import MetricsTestKit
import Testing

@Suite("Metrics")
struct MetricsTests {
    static let caches = CacheUnderTest.all

    @Test(arguments: caches)
    func theReporterExportsCounterDeltasAndGauges(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        let metrics = TestMetrics()
        let reporter = CacheMetricsReporter(cache: cache, name: "users", backend: "test", factory: metrics)
        let dimensions = [("cache", "users"), ("backend", "test")]

        try await cache.set("a", to: 1, ttl: .seconds(60))
        _ = try await cache.get("a", as: Int.self)
        _ = try await cache.get("b", as: Int.self)
        _ = try await cache.getOrSet("c", ttl: .seconds(60)) { 3 }
        await reporter.report()

        let hits = try metrics.expectCounter("cache_hits", dimensions)
        let misses = try metrics.expectCounter("cache_misses", dimensions)
        let sets = try metrics.expectCounter("cache_sets", dimensions)
        let factoryCalls = try metrics.expectCounter("cache_factory_calls", dimensions)
        let stats = await cache.stats()
        #expect(hits.totalValue == Int64(stats.hits))
        #expect(misses.totalValue == Int64(stats.misses))
        #expect(sets.totalValue == 2)
        #expect(factoryCalls.totalValue == 1)
        #expect(try metrics.expectGauge("cache_entries", dimensions).lastValue == Double(stats.entryCount))
        #expect(try metrics.expectGauge("cache_size_bytes", dimensions).lastValue == Double(stats.size))

        // Only what changed since the last report is added.
        _ = try await cache.get("a", as: Int.self)
        await reporter.report()
        #expect(hits.totalValue == Int64(stats.hits) + 1)
        #expect(sets.totalValue == 2)
        #expect(factoryCalls.totalValue == 1)

        _ = try? await cache.getOrSet("d", ttl: .seconds(60)) { () async throws -> Int in throw TestFailure() }
        await reporter.report()
        #expect(try metrics.expectCounter("cache_factory_errors", dimensions).totalValue == 1)
        #expect(factoryCalls.totalValue == 2)
    }

    @Test func namesAndBackendsDefaultToThePatternsState() async throws {
        let cache = DictionaryCache(name: "sessions")
        let metrics = TestMetrics()
        let reporter = CacheMetricsReporter(cache: cache, factory: metrics)
        #expect(reporter.dimensions.map { "\($0.0)=\($0.1)" } == ["cache=sessions", "backend=dictionary"])
        await reporter.report()
        _ = try metrics.expectCounter("cache_hits", [("cache", "sessions"), ("backend", "dictionary")])
    }

    @Test func whileTheReporterRunsOneGetInSixtyFourIsTimed() async throws {
        let cache = DictionaryCache()
        let metrics = TestMetrics()
        #expect(!cache.patterns.latency.isEnabled)
        let reporter = CacheMetricsReporter(cache: cache, interval: .seconds(3600), factory: metrics)
        let running = Task { try await reporter.run() }
        let settled1 = await eventually { cache.patterns.latency.isEnabled }
        #expect(settled1)
        for _ in 0..<640 { _ = try await cache.get("k", as: Int.self) }
        for _ in 0..<128 { try await cache.set("k", to: 1, ttl: .seconds(60)) }
        let getTimer = try metrics.expectTimer("cache_get_duration", reporter.dimensions)
        let setTimer = try metrics.expectTimer("cache_set_duration", reporter.dimensions)
        // The sampling counter is shared by gets and sets: calls 0, 64, …, 576 are gets, 640 and 704 are sets.
        #expect(getTimer.values.count == 10)
        #expect(setTimer.values.count == 2)
        running.cancel()
        try await running.value
        #expect(!cache.patterns.latency.isEnabled)
        // It reported a last time on the way out.
        #expect(try metrics.expectCounter("cache_misses", reporter.dimensions).totalValue == 640)
    }

    @Test func theMemoryCacheTimesOneCallInSixtyFourWhileTheReporterRuns() async throws {
        var configuration = CacheConfiguration.default
        configuration.name = "test"
        let cache = try MemoryCache(configuration: configuration, codec: JSONCacheCodec(), clock: ManualClock(), shardCount: 1, startSweeper: false)
        let metrics = TestMetrics()
        for _ in 0..<64 { _ = try await cache.get("k", as: Int.self) }
        let reporter = CacheMetricsReporter(cache: cache, interval: .seconds(3600), factory: metrics)
        let running = Task { try await reporter.run() }
        let settled2 = await eventually { cache.patterns.latency.isEnabled }
        #expect(settled2)
        for _ in 0..<640 { _ = try await cache.get("k", as: Int.self) }
        for _ in 0..<64 { try await cache.set("k", to: 1, ttl: .seconds(60)) }
        for _ in 0..<64 { try await cache.set("k", to: 1, ttl: .seconds(60), tags: ["t"]) }
        let getTimer = try metrics.expectTimer("cache_get_duration", reporter.dimensions)
        let setTimer = try metrics.expectTimer("cache_set_duration", reporter.dimensions)
        // Calls before the reporter started were not counted: calls 0, 64, …, 576 are gets, 640 and 704 are sets.
        #expect(getTimer.values.count == 10)
        #expect(setTimer.values.count == 2)
        running.cancel()
        try await running.value
        for _ in 0..<64 { _ = try await cache.get("k", as: Int.self) }
        #expect(getTimer.values.count == 10)
    }

    @Test func theCacheServiceClosesTheCacheWhenItStops() async throws {
        let cache = DictionaryCache()
        let metrics = TestMetrics()
        let service = CacheService(cache: cache, metricsInterval: .seconds(3600), metricsFactory: metrics)
        let running = Task { try await service.run() }
        // The service runs the cache's background work (DictionaryCache.run counts its calls) and the reporter.
        let settled3 = await eventually { cache.runCalls.value == 1 && cache.patterns.latency.isEnabled }
        #expect(settled3)
        #expect(!cache.isClosed)
        running.cancel()
        try await running.value
        #expect(cache.isClosed)
        _ = try metrics.expectCounter("cache_hits", [("cache", "dictionary"), ("backend", "dictionary")])
    }
}
