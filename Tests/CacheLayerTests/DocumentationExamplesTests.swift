import CacheLayer
import Foundation
import Logging
import Metrics
import MetricsTestKit
import ServiceLifecycle
import Synchronization
import Testing
import UnixSignals

/// The code of the DocC articles in `Sources/CacheLayer/Documentation.docc`, compiled and run so that it cannot
/// drift from the API.
///
/// Every `swift` code block of an article appears here line for line (indentation aside), followed by
/// assertions on what the article says it does; ``DocumentationCatalogTests`` checks that. Memory examples run;
/// Redis examples are compiled inside functions that no test calls, since they need servers at those addresses.
@Suite("Documentation examples")
struct DocumentationExamplesTests {
    struct User: Codable, Sendable, Equatable {
        var id: Int
        var name: String
    }

    /// A memory cache whose time (TTLs and the wall clock of `getOrSet` envelopes) moves only when `clock` is
    /// advanced.
    static func cache(on clock: ManualClock = ManualClock(), maxMemorySize: Int = 1 << 20) throws -> MemoryCache {
        var configuration = CacheConfiguration.development
        configuration.maxMemorySize = maxMemorySize
        return try MemoryCache(
            configuration: configuration, clock: clock, shardCount: nil, startSweeper: false,
            wallClock: { Date(timeIntervalSince1970: 1_700_000_000 + Double(clock.now()) / 1e9) }
        )
    }

    /// Polls `condition` every millisecond until it holds or five seconds pass.
    static func eventually(_ condition: @Sendable () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return try await condition()
    }

    // MARK: CacheLayer.md

    @Test func landingPage() async throws {
        let cache = try await makeCache(.development)
        try await cache.set("greeting", to: "hello", ttl: .seconds(60))
        let greeting = try await cache.get("greeting", as: String.self)   // "hello"
        try await cache.close()

        #expect(greeting == "hello")
    }

    // MARK: GettingStarted.md

    @Test func gettingStarted() async throws {
        let cache = try await makeCache(.development)
        #expect(cache is MemoryCache)

        try await cache.set("user:1", to: User(id: 1, name: "Ada"), ttl: .seconds(600))

        let ada = try await cache.get("user:1", as: User.self)     // User(id: 1, name: "Ada")
        let nobody = try await cache.get("user:2", as: User.self)  // nil
        let known = try await cache.exists("user:1")               // true

        try await cache.delete("user:1")

        #expect(ada == User(id: 1, name: "Ada"))
        #expect(nobody == nil)
        #expect(known)
        #expect(try await cache.get("user:1", as: User.self) == nil)

        try await cache.set("feature-flags", to: ["search": true])            // the default TTL
        try await cache.set("build", to: "2026.11", ttl: .noExpiry)           // never expires

        #expect(try await cache.get("feature-flags", as: [String: Bool].self) == ["search": true])
        await expectCacheError(.invalidTTL) { try await cache.set("build", to: "2026.12", ttl: .zero) }

        do {
            _ = try await cache.require("user:1", as: User.self)
        } catch let error as CacheError where error.code == .miss {
            // Not cached: load it from its source.
        }

        do {
            _ = try await cache.get("build", as: Int.self)
        } catch let error as CacheError where error.code == .typeMismatch {
            // "build" holds a String, not an Int.
        }

        await expectCacheError(.miss) { try await cache.require("user:1", as: User.self) }
        await expectCacheError(.typeMismatch) { try await cache.get("build", as: Int.self) }

        let grace = try await cache.getOrSet("user:3", ttl: .seconds(600)) {
            User(id: 3, name: "Grace")   // in an application: a database query
        }
        #expect(grace == User(id: 3, name: "Grace"))
        #expect(try await cache.get("user:3", as: User.self) == grace)

        let stats = await cache.stats()   // hits, misses, sets, …
        try await cache.close()

        #expect(stats.sets == 4)
        await expectCacheError(.closed) { try await cache.get("user:3", as: User.self) }
        try await cache.close()   // closing twice is allowed
    }

    // MARK: ChoosingABackend.md

    @Test func choosingTheMemoryBackend() async throws {
        var configuration = CacheConfiguration.development
        configuration.maxMemorySize = 64 * 1024 * 1024
        configuration.evictionStrategy = .tinyLFU
        let memory = try MemoryCache(configuration: configuration)

        try await memory.set("k", to: 1, ttl: nil)
        #expect(try await memory.get("k", as: Int.self) == 1)
        try await memory.close()

        let jsonCache = try await makeCache(.development, codec: JSONCacheCodec())
        #expect(jsonCache is MemoryCache)
        try await jsonCache.close()
    }

    @Test func fallbackIsRefusedByTheMemoryBackend() async throws {
        var configuration = CacheConfiguration.development
        configuration.enableFallback = true
        let error = await #expect(throws: CacheError.self) { try await makeCache(configuration) }
        #expect(error?.code == .invalidConfiguration)
    }

    /// ChoosingABackend.md and FallbackAndRecovery.md on Redis: compiled, not run.
    static func redisBackends() async throws -> [any Cache] {
        var configuration = try CacheConfiguration(redisURL: "redis://cache.internal:6379/0")
        configuration.namespace = "shop"
        let redis = try await RedisCache.connect(configuration: configuration)

        let resilient = try await makeCache(.production(redisAddress: "cache.internal:6379", password: "secret"))
        return [redis, resilient, try await fallbackAndRecovery(), try await twoLevel(), try await nearCacheWithFallback()]
    }

    /// ChoosingABackend.md, the two-level cache: compiled, not run.
    static func twoLevel() async throws -> any Cache {
        var configuration = CacheConfiguration.highPerformance(redisAddress: "cache.internal:6379")
        configuration.namespace = "shop"
        configuration.nearCache = NearCacheConfiguration(maxMemorySize: 64 * 1024 * 1024, maxTTL: .seconds(300))
        let cache = try await makeCache(configuration)   // a TwoLevelCache
        return cache
    }

    // MARK: RedisCluster.md

    /// Compiled, not run: it needs a Redis Cluster at those addresses.
    static func redisCluster(secret: String) async throws -> any Cache {
        var configuration = CacheConfiguration.production(redisAddress: "10.0.0.1:6379,10.0.0.2:6379", password: secret)
        configuration.redisCluster = true
        configuration.namespace = "myapp"
        let cache = try await makeCache(configuration)
        return cache
    }

    @Test func theClusterConfigurationOfTheArticleIsValid() throws {
        var configuration = CacheConfiguration.production(redisAddress: "10.0.0.1:6379,10.0.0.2:6379", password: "secret")
        configuration.redisCluster = true
        configuration.namespace = "myapp"
        try configuration.validate()
        configuration.redisDatabase = 1
        #expect(throws: CacheError.self) { try configuration.validate() }
    }

    // MARK: NearCacheCoherence.md

    /// Compiled, not run: it needs a Redis server at that address.
    static func pubSubCoherence() async throws -> any Cache {
        var configuration = CacheConfiguration.highPerformance(redisAddress: "cache.internal:6379")
        configuration.namespace = "shop"
        // Redis without CLIENT TRACKING (Redis 5, or a managed service that disables it): a pub/sub backplane.
        configuration.nearCache = NearCacheConfiguration(maxMemorySize: 64 * 1024 * 1024, coherence: .pubSub)
        let cache = try await makeCache(configuration)   // a TwoLevelCache
        return cache
    }

    // MARK: FallbackAndRecovery.md

    /// Compiled, not run: it needs a Redis server at that address.
    static func fallbackAndRecovery() async throws -> any Cache {
        var configuration = CacheConfiguration.production(redisAddress: "cache.internal:6379", password: "secret")
        configuration.fallbackFailureThreshold = 3
        configuration.fallbackProbeInterval = .seconds(1)
        configuration.fallbackMaxOutageAge = .seconds(600)   // serve nothing older than 10 minutes during an outage
        let cache = try await makeCache(configuration)

        if let fallback = cache as? FallbackCache {
            Task {
                for await event in fallback.healthEvents() {
                    switch event {
                    case .backendLost(let reason):
                        print("Redis lost: \(reason)")
                    case .backendRecovered(let reconciledKeys):
                        print("Redis back, \(reconciledKeys) keys reconciled")
                    }
                }
            }
        }
        return cache
    }

    /// The near cache inside the fallback: compiled, not run.
    static func nearCacheWithFallback() async throws -> any Cache {
        var configuration = CacheConfiguration.production(redisAddress: "cache.internal:6379", password: "secret")
        configuration.nearCache = NearCacheConfiguration(maxMemorySize: 32 * 1024 * 1024)
        let cache = try await makeCache(configuration)   // a FallbackCache over a TwoLevelCache
        return cache
    }

    @Test func theNearCacheWithFallbackConfigurationIsValid() throws {
        var configuration = CacheConfiguration.production(redisAddress: "cache.internal:6379", password: "secret")
        configuration.nearCache = NearCacheConfiguration(maxMemorySize: 32 * 1024 * 1024)
        try configuration.validate()
        #expect(configuration.enableFallback && configuration.nearCache != nil)
    }

    @Test func fallbackPresetEnablesTheFallback() {
        let configuration = CacheConfiguration.production(redisAddress: "cache.internal:6379", password: "secret")
        #expect(configuration.backend == .redis)
        #expect(configuration.enableFallback)
        #expect(configuration.fallbackConfiguration == FallbackConfiguration(failureThreshold: 3, probeInterval: .seconds(1)))
    }

    // MARK: CacheAsideAndSingleFlight.md

    @Test func cacheAside() async throws {
        let cache = try Self.cache()
        let database = DocsExampleDatabase()

        let user = try await cache.getOrSet("user:42", ttl: .seconds(600)) {
            try await database.loadUser(id: 42)
        }

        #expect(user == User(id: 42, name: "User 42"))
        let again = try await cache.getOrSet("user:42", ttl: .seconds(600)) { try await database.loadUser(id: 42) }
        #expect(again == user)
        #expect(database.userLoads == 1)
    }

    @Test func singleFlight() async throws {
        let cache: any Cache = try Self.cache()

        let names = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<100 {
                group.addTask {
                    try await cache.getOrSet("greeting", ttl: .seconds(60)) {
                        try await Task.sleep(for: .milliseconds(20))   // a slow source
                        return "hello"
                    }
                }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        let loads = cache.patterns.counters.factoryCalls   // 1: one load served all 100 callers

        #expect(names.count == 100)
        #expect(names.allSatisfy { $0 == "hello" })
        #expect(loads == 1)
    }

    @Test func distributedSingleFlightOnAMemoryCacheIsLocal() async throws {
        let cache = try Self.cache()
        let database = DocsExampleDatabase()

        let options = GetOrSetOptions(distributed: DistributedSingleFlightOptions(lockTTL: .seconds(5)))
        let report = try await cache.getOrSet("report:daily", ttl: .seconds(3600), options: options) {
            try await database.buildReport()
        }

        let again = try await cache.getOrSet("report:daily", ttl: .seconds(3600), options: options) { try await database.buildReport() }
        #expect(again == report)
    }

    @Test func hardTimeoutAndDefaultOptions() async throws {
        let cache = try Self.cache()
        let database = DocsExampleDatabase()

        let options = GetOrSetOptions(hardTimeout: .seconds(30))
        let report = try await cache.getOrSet("report:daily", ttl: .seconds(3600), options: options) {
            try await database.buildReport()
        }
        #expect(report == "report")

        cache.patterns.defaultOptions = GetOrSetOptions(hardTimeout: .seconds(5))
        #expect(cache.patterns.defaultOptions.hardTimeout == .seconds(5))

        // A factory slower than the hard timeout: the caller gets `.timeout`, the load goes on and is stored.
        await expectCacheError(.timeout) {
            try await cache.getOrSet("slow", ttl: .seconds(60), options: GetOrSetOptions(hardTimeout: .milliseconds(20))) {
                try await Task.sleep(for: .milliseconds(200))
                return 7
            }
        }
        #expect(await Self.eventually { (try? await cache.get("slow", as: Int.self)) == 7 })
    }

    @Test func singleFlightWithoutACache() async throws {
        let database = DocsExampleDatabase()

        let flights = SingleFlight<Int>()
        let profile = try await flights.run(42) {
            try await database.loadUser(id: 42)
        }

        #expect(profile.id == 42)
        #expect(flights.runningCount == 0)
    }

    // MARK: FailSafeAndRefreshAhead.md

    @Test func failSafe() async throws {
        let clock = ManualClock()
        let cache = try Self.cache(on: clock)
        let pricing = DocsExamplePricing()

        @Sendable func readPrice() async throws -> Int {
            let options = GetOrSetOptions.failSafe(gracePeriod: .seconds(3600), softTimeout: .milliseconds(200))
            let price = try await cache.getOrSet("price:tea", ttl: .seconds(60), options: options) {
                try await pricing.price(of: "tea")
            }
            return price
        }

        #expect(try await readPrice() == 350)
        // A minute later the price is stale and the pricing service fails: the last known price is served.
        clock.advance(by: .seconds(61))
        pricing.isFailing = true
        #expect(try await readPrice() == 350)
        #expect(cache.patterns.counters.staleValuesServed == 1)
        // After the grace period there is nothing left to serve.
        clock.advance(by: .seconds(3600))
        await #expect(throws: DocsExamplePricing.Unavailable.self) { try await readPrice() }
    }

    @Test func refreshAhead() async throws {
        let clock = ManualClock()
        let cache = try Self.cache(on: clock)
        let pricing = DocsExamplePricing()

        @Sendable func readRates() async throws -> [String: Int] {
            let refreshing = GetOrSetOptions(refreshAhead: 0.8)
            let rates = try await cache.getOrSet("rates:EUR", ttl: .seconds(300), options: refreshing) {
                try await pricing.exchangeRates(base: "EUR")
            }
            return rates
        }

        #expect(try await readRates() == ["USD": 1])
        // After 80% of the TTL a read returns the current value at once and reloads in the background.
        clock.advance(by: .seconds(250))
        #expect(try await readRates() == ["USD": 1])
        #expect(await Self.eventually { (try? await readRates()) == ["USD": 2] })
        #expect(cache.patterns.counters.backgroundRefreshes == 1)
        // The value is stored with its times, which plain reads see through ("Stored values carry their times").
        #expect(try await cache.get("rates:EUR", as: [String: Int].self) == ["USD": 2])
    }

    // MARK: Batches.md

    @Test func batches() async throws {
        let cache = try Self.cache()
        let database = DocsExampleDatabase()

        try await cache.setMany(["user:1": "Ada", "user:2": "Grace"], ttl: .seconds(600))
        let names = try await cache.getMany(["user:1", "user:2", "user:3"], as: String.self)
        // ["user:1": "Ada", "user:2": "Grace"]: absent keys are left out
        try await cache.deleteMany(["user:1", "user:2"])

        #expect(names == ["user:1": "Ada", "user:2": "Grace"])
        #expect(try await cache.getMany(["user:1", "user:2"], as: String.self).isEmpty)

        try await cache.set("user:2", to: User(id: 2, name: "Grace"), ttl: .seconds(600))
        let users = try await cache.getOrSetMany(["user:1", "user:2", "user:3"], as: User.self, ttl: .seconds(600)) { missing in
            try await database.loadUsers(keys: missing)   // [key: User]
        }

        #expect(users.count == 3)
        #expect(users["user:2"] == User(id: 2, name: "Grace"))
        #expect(database.batchLoads == 1)
        #expect(database.keysLoaded == 2)   // only the missing ones
        #expect(try await cache.get("user:3", as: User.self) == users["user:3"])
    }

    // MARK: Invalidation.md

    @Test func invalidation() async throws {
        let cache = try Self.cache()
        let profile = User(id: 42, name: "Ada")
        let orders = [101, 102]
        let other = User(id: 7, name: "Grace")

        try await cache.set("user:42:profile", to: profile, ttl: nil, tags: ["user:42"])
        try await cache.set("user:42:orders", to: orders, ttl: nil, tags: ["user:42", "orders"])
        try await cache.set("user:7:profile", to: other, ttl: nil, tags: ["user:7"])

        try await cache.invalidate(tag: "orders")        // removes user:42:orders
        try await cache.invalidate(prefix: "user:42:")   // removes user:42:profile

        #expect(try await cache.get("user:42:orders", as: [Int].self) == nil)
        #expect(try await cache.get("user:42:profile", as: User.self) == nil)
        #expect(try await cache.get("user:7:profile", as: User.self) == other)
        try await cache.invalidate(tag: "no-such-tag")   // not an error

        // The tag alone removes only the entries that carry it.
        try await cache.set("user:42:profile", to: profile, ttl: nil, tags: ["user:42"])
        try await cache.set("user:42:orders", to: orders, ttl: nil, tags: ["user:42", "orders"])
        try await cache.invalidate(tag: "orders")
        #expect(try await cache.get("user:42:orders", as: [Int].self) == nil)
        #expect(try await cache.get("user:42:profile", as: User.self) == profile)
    }

    // MARK: Warming.md

    @Test func warming() async throws {
        let cache = try Self.cache()
        let database = DocsExampleDatabase()

        let products = (1...250).map { (key: "product:\($0)", value: "Product \($0)") }
        let report = await cache.warm(entries: products, ttl: .seconds(3600)) { progress in
            print("warmed \(progress.completed) of \(progress.total ?? 0)")
        }
        // report.succeeded == 250, report.failed == 0

        #expect(report.succeeded == 250)
        #expect(report.failed == 0)
        #expect(try await cache.get("product:250", as: String.self) == "Product 250")

        let warmed = await cache.warm(keys: ["user:1", "user:2", "user:3"], as: User.self, ttl: .seconds(600)) { key in
            try await database.loadUser(key: key)
        }

        if warmed.failed > 0 {
            print("\(warmed.failed) users not warmed, first: \(warmed.failures[0])")
        }

        // The example database has no user 3.
        #expect(warmed.succeeded == 2)
        #expect(warmed.failed == 1)
        #expect(warmed.failures.first?.key == "user:3")
        #expect(cache.patterns.counters.factoryCalls == 3)
    }

    // MARK: WriteThrough.md

    @Test func writeThrough() async throws {
        let cache = try Self.cache()
        let database = DocsExampleDatabase()

        let renamed = User(id: 42, name: "Ada Lovelace")
        let cached = try await cache.writeThrough("user:42", value: renamed, ttl: .seconds(600)) {
            try await database.save(renamed)
        }
        // cached == true: the cache holds the new value

        #expect(cached)
        #expect(database.saves == 1)
        #expect(try await cache.get("user:42", as: User.self) == renamed)
    }

    @Test func writeThroughWhoseCacheWriteFails() async throws {
        let cache = try Self.cache(maxMemorySize: 64)
        let database = DocsExampleDatabase()
        try await cache.set("user:42", to: "old", ttl: nil)

        // The update succeeds, the value is too large for the cache: nothing is thrown, the old value goes.
        let cached = try await cache.writeThrough("user:42", value: String(repeating: "x", count: 100)) {
            try await database.save(User(id: 42, name: "Ada"))
        }
        #expect(!cached)
        #expect(database.saves == 1)
        #expect(try await cache.get("user:42", as: String.self) == nil)
        #expect(cache.patterns.counters.cacheWriteFailures == 1)

        // The update fails: the cache is not touched and the error is rethrown.
        try await cache.set("user:42", to: "kept", ttl: nil)
        await #expect(throws: DocsFailure.self) {
            try await cache.writeThrough("user:42", value: "new") { throw DocsFailure() }
        }
        #expect(try await cache.get("user:42", as: String.self) == "kept")
    }

    // MARK: EvictionPoliciesAndReplay.md

    @Test func eviction() async throws {
        var configuration = CacheConfiguration.development
        configuration.maxMemorySize = 2_000            // bytes of encoded values
        configuration.evictionStrategy = .lru
        let small = try MemoryCache(configuration: configuration)

        for index in 0..<500 {
            try await small.set("key:\(index)", to: "value number \(index)", ttl: .noExpiry)
        }
        let stats = await small.stats()
        // stats.size <= 2_000, stats.evictions > 0: the oldest keys made room for the newest

        #expect(stats.size <= 2_000)
        #expect(stats.evictions > 0)
        #expect(stats.evictions + UInt64(stats.entryCount) == 500)
        #expect(try await small.get("key:499", as: String.self) == "value number 499")
        #expect(try await small.get("key:0", as: String.self) == nil)
        try await small.close()

        let strategy = EvictionStrategy(name: "s3fifo") ?? .default
        #expect(strategy == .s3fifo)
        #expect(EvictionStrategy.default == .tinyLFU)
        #expect(Set(EvictionStrategy.allCases.map(\.description)) == ["tinylfu", "s3fifo", "lru", "expiry"])
    }

    // MARK: Observability.md

    @Test func statistics() async throws {
        let cache = try Self.cache()

        _ = try await cache.get("user:1", as: String.self)   // a miss
        try await cache.set("user:1", to: "Ada")
        _ = try await cache.get("user:1", as: String.self)   // a hit

        let stats = await cache.stats()
        // stats.hits == 1, stats.misses == 1, stats.hitRate == 0.5, stats.entryCount == 1

        #expect(stats.hits == 1)
        #expect(stats.misses == 1)
        #expect(stats.hitRate == 0.5)
        #expect(stats.entryCount == 1)

        let loaded = try await cache.getOrSet("user:2", ttl: .seconds(60)) { "Grace" }
        let counters = cache.patterns.counters
        // counters.factoryCalls == 1, counters.factoryErrors == 0

        #expect(loaded == "Grace")
        #expect(counters.factoryCalls == 1)
        #expect(counters.factoryErrors == 0)
    }

    @Test func metricsAndLogging() async throws {
        let cache = try Self.cache()
        try await cache.set("user:1", to: "Ada")
        _ = try await cache.get("user:1", as: String.self)

        let metrics = TestMetrics()   // from MetricsTestKit
        let reporter = CacheMetricsReporter(cache: cache, interval: .seconds(10), factory: metrics)
        await reporter.report()       // one reading now; run() reads every interval

        let dimensions = [("cache", "development"), ("backend", "memory")]
        #expect(try metrics.expectCounter("cache_hits", dimensions).totalValue == 1)
        #expect(try metrics.expectCounter("cache_sets", dimensions).totalValue == 1)
        #expect(try metrics.expectGauge("cache_entries", dimensions).lastValue == 1)

        var logger = Logger(label: "app.cache")
        logger.logLevel = .info
        let logged = try await makeCache(.development, logger: logger)

        #expect(logged.patterns.logger.logLevel == .info)
        try await logged.close()
    }

    /// Observability.md's service group: compiled, not run (it runs until SIGTERM).
    static func serviceGroupExample(logger: Logger) async throws {
        let service = try await makeCache(.development)
        let serviceGroup = ServiceGroup(
            services: [CacheService(cache: service, metricsInterval: .seconds(10))],
            gracefulShutdownSignals: [.sigterm],
            logger: logger
        )
        try await serviceGroup.run()
    }

    @Test func cacheServiceClosesTheCacheOnGracefulShutdown() async throws {
        let cache = try await makeCache(.development)
        let serviceGroup = ServiceGroup(
            services: [CacheService(cache: cache, metricsInterval: nil)],
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await serviceGroup.run() }
            try await cache.set("k", to: 1, ttl: nil)
            await serviceGroup.triggerGracefulShutdown()
            try await group.waitForAll()
        }
        await expectCacheError(.closed) { try await cache.get("k", as: Int.self) }
    }

    // MARK: ConfigurationReference.md

    @Test func configuration() throws {
        var configuration = CacheConfiguration.production(redisAddress: "cache.internal:6379", password: "secret")
        configuration.name = "catalog"
        configuration.namespace = "catalog"
        configuration.defaultTTL = .seconds(600)
        try configuration.validate()

        #expect(configuration.poolSize == 20)
        #expect(configuration.connectionMaxLifetime == .seconds(300))

        var broken = CacheConfiguration.default
        broken.poolSize = 4
        broken.minIdleConnections = 8
        do {
            try broken.validate()
        } catch {
            // error.code == .invalidConfiguration
            // error.message: "minIdleConnections (8) is larger than poolSize (4). Lower minIdleConnections or raise poolSize."
        }

        let error = #expect(throws: CacheError.self) { try broken.validate() }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message == "minIdleConnections (8) is larger than poolSize (4). Lower minIdleConnections or raise poolSize.")

        let fromURL = try CacheConfiguration(redisURL: "rediss://reader:s%40fe@cache.internal:6380/2?command_timeout=500ms")
        // backend .redis, redisAddress "cache.internal:6380", redisUsername "reader", redisPassword "s@fe",
        // redisDatabase 2, redisTLS true, readTimeout and writeTimeout 500 ms

        #expect(fromURL.backend == .redis)
        #expect(fromURL.redisAddress == "cache.internal:6380")
        #expect(fromURL.redisUsername == "reader")
        #expect(fromURL.redisPassword == "s@fe")
        #expect(fromURL.redisDatabase == 2)
        #expect(fromURL.redisTLS)
        #expect(fromURL.readTimeout == .milliseconds(500))
        #expect(fromURL.writeTimeout == .milliseconds(500))
        #expect(throws: CacheError.self) { try CacheConfiguration(redisURL: "redis://cache.internal:6379/0?comand_timeout=1s") }
        #expect(throws: CacheError.self) { try CacheConfiguration(redisURL: "redis://:p%zz@cache.internal:6379") }

        let environment = ["CACHE_MAX_MEMORY": "33554432", "CACHE_DEFAULT_TTL": "120"]
        let fromEnvironment = try CacheConfiguration.fromEnvironment(environment, base: .development)
        // maxMemorySize 32 MiB, defaultTTL 120 seconds, everything else as in .development

        var expected = CacheConfiguration.development
        expected.maxMemorySize = 32 * 1024 * 1024
        expected.defaultTTL = .seconds(120)
        #expect(fromEnvironment == expected)
    }

    @Test func presetsMatchTheReferenceTable() {
        let presets: [(CacheConfiguration, String, Int, Duration, Bool)] = [
            (.default, "default", 10, .seconds(3), false),
            (.development, "development", 10, .seconds(3), false),
            (.production(redisAddress: "h:1"), "production", 20, .seconds(3), true),
            (.highPerformance(redisAddress: "h:1"), "high-performance", 50, .seconds(1), false),
        ]
        for (configuration, name, poolSize, readTimeout, fallback) in presets {
            #expect(configuration.name == name)
            #expect(configuration.poolSize == poolSize)
            #expect(configuration.readTimeout == readTimeout)
            #expect(configuration.enableFallback == fallback)
        }
    }
}

// MARK: - Stand-ins for the application's code in the articles

struct DocsFailure: Error, Equatable {
    var message = "boom"
}

/// The application's database in the articles.
final class DocsExampleDatabase: Sendable {
    typealias User = DocumentationExamplesTests.User

    private let userLoadCount = Atomic<Int>(0)
    private let batchLoadCount = Atomic<Int>(0)
    private let keysLoadedCount = Atomic<Int>(0)
    private let saveCount = Atomic<Int>(0)

    var userLoads: Int { userLoadCount.load(ordering: .relaxed) }
    var batchLoads: Int { batchLoadCount.load(ordering: .relaxed) }
    var keysLoaded: Int { keysLoadedCount.load(ordering: .relaxed) }
    var saves: Int { saveCount.load(ordering: .relaxed) }

    func loadUser(id: Int) async throws -> User {
        userLoadCount.add(1, ordering: .relaxed)
        return User(id: id, name: "User \(id)")
    }

    /// Knows users 1 and 2 only.
    func loadUser(key: String) async throws -> User {
        guard let id = Int(key.dropFirst("user:".count)), id <= 2 else { throw DocsFailure(message: "no \(key)") }
        return try await loadUser(id: id)
    }

    func loadUsers(keys: [String]) async throws -> [String: User] {
        batchLoadCount.add(1, ordering: .relaxed)
        keysLoadedCount.add(keys.count, ordering: .relaxed)
        return Dictionary(uniqueKeysWithValues: keys.map { ($0, User(id: Int($0.dropFirst("user:".count)) ?? 0, name: $0)) })
    }

    func buildReport() async throws -> String { "report" }

    func save(_ user: User) async throws {
        saveCount.add(1, ordering: .relaxed)
    }
}

/// The pricing service of the fail-safe article: it can be made to fail.
final class DocsExamplePricing: Sendable {
    struct Unavailable: Error {}

    private let failing = Atomic<Bool>(false)
    private let rateLoads = Atomic<Int>(0)

    var isFailing: Bool {
        get { failing.load(ordering: .relaxed) }
        set { failing.store(newValue, ordering: .relaxed) }
    }

    func price(of item: String) async throws -> Int {
        if isFailing { throw Unavailable() }
        return 350
    }

    /// The rate is the number of loads so far, so a test can tell a reload from the first value.
    func exchangeRates(base: String) async throws -> [String: Int] {
        if isFailing { throw Unavailable() }
        return ["USD": rateLoads.add(1, ordering: .relaxed).newValue]
    }
}

// MARK: - The articles and this file agree

/// Every `swift` code block of the DocC catalogs appears, line for line, in a `*DocumentationExamples*.swift`
/// test file, so every line of code a reader sees has been compiled.
@Suite("Documentation catalogs")
struct DocumentationCatalogTests {
    static let catalogs = ["Sources/CacheLayer/Documentation.docc", "Sources/RedisClient/Documentation.docc"]

    @Test(arguments: catalogs)
    func everyCodeBlockIsCompiledByATest(catalog: String) throws {
        let root = try Self.packageRoot()
        // The framework adapters (Integrations/*) mirror their articles' code in their own test targets.
        let adapterTests = (try? FileManager.default.contentsOfDirectory(at: root.appendingPathComponent("Integrations"), includingPropertiesForKeys: nil))?
            .map { $0.appendingPathComponent("Tests") } ?? []
        let mirrors = try ([root.appendingPathComponent("Tests")] + adapterTests).flatMap { try Self.files(under: $0) }
            .filter { $0.lastPathComponent.contains("DocumentationExamples") && $0.pathExtension == "swift" }
        #expect(!mirrors.isEmpty)
        let mirrored = try mirrors.map { try Self.normalizedLines(String(contentsOf: $0, encoding: .utf8)) }

        let articles = try Self.files(under: root.appendingPathComponent(catalog)).filter { $0.pathExtension == "md" }
        #expect(articles.count >= 2)
        var blocks = 0
        for article in articles {
            for block in Self.swiftBlocks(in: try String(contentsOf: article, encoding: .utf8)) {
                blocks += 1
                let lines = Self.normalizedLines(block)
                let found = mirrored.contains { Self.contains($0, lines) }
                #expect(found, "\(article.lastPathComponent): this block is not in any DocumentationExamples test:\n\(block)")
            }
        }
        #expect(blocks > 0)
    }

    /// The `swift` code blocks of a Markdown text, except manifest excerpts (first line `// Package.swift`).
    static func swiftBlocks(in markdown: String) -> [String] {
        var blocks: [String] = []
        var current: [Substring]?
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if current == nil {
                if trimmed == "```swift" { current = [] }
            } else if trimmed == "```" {
                if let block = current, block.first?.trimmingCharacters(in: .whitespaces).hasPrefix("// Package.swift") != true {
                    blocks.append(block.joined(separator: "\n"))
                }
                current = nil
            } else {
                current?.append(line)
            }
        }
        return blocks
    }

    /// Lines without indentation, blank lines and imports (which stand at the top of a test file).
    static func normalizedLines(_ text: String) -> [String] {
        text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("import ") }
    }

    /// Whether `lines` occur in `haystack` one after another.
    static func contains(_ haystack: [String], _ lines: [String]) -> Bool {
        guard !lines.isEmpty else { return true }
        guard haystack.count >= lines.count else { return false }
        return (0...(haystack.count - lines.count)).contains { start in
            haystack[start..<(start + lines.count)].elementsEqual(lines)
        }
    }

    static func files(under directory: URL) throws -> [URL] {
        guard let enumerator = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil) else { return [] }
        return enumerator.compactMap { $0 as? URL }
    }

    /// The directory holding `Package.swift`, found from this file's path.
    static func packageRoot() throws -> URL {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) { return directory }
            directory.deleteLastPathComponent()
        }
        throw DocsFailure(message: "no Package.swift above \(#filePath)")
    }
}
