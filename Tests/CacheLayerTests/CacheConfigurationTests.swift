import CacheLayer
import Testing

@Suite("CacheConfiguration")
struct CacheConfigurationTests {
    @Test func defaultsAreValidAndUseMemory() throws {
        let configuration = CacheConfiguration.default
        try configuration.validate()
        #expect(configuration.backend == .memory)
        #expect(configuration.maxMemorySize == 100 * 1024 * 1024)
        #expect(configuration.defaultTTL == .seconds(3600))
        #expect(configuration.sweepInterval == .seconds(60))
    }

    @Test func presetsCarryTheSpecificationValues() throws {
        let development = CacheConfiguration.development
        #expect(development.backend == .memory)
        #expect(development.maxMemorySize == 50 * 1024 * 1024)
        #expect(development.defaultTTL == .seconds(1800))

        let production = CacheConfiguration.production(redisAddress: "redis.example.com:6379", password: "pw")
        try production.validate()
        #expect(production.backend == .redis)
        #expect(production.redisPassword == "pw")
        #expect(production.maxRetries == 3)
        #expect(production.connectTimeout == .seconds(5))
        #expect(production.readTimeout == .seconds(3))
        #expect(production.writeTimeout == .seconds(3))
        #expect(production.poolSize == 20)
        #expect(production.minIdleConnections == 10)
        #expect(production.maxIdleConnections == 20)
        #expect(production.connectionMaxLifetime == .seconds(300))
        #expect(production.enableFallback)

        let fast = CacheConfiguration.highPerformance(redisAddress: "redis-cluster:6379")
        try fast.validate()
        #expect(fast.poolSize == 50)
        #expect(fast.minIdleConnections == 20)
        #expect(fast.maxIdleConnections == 50)
        #expect(fast.readTimeout == .seconds(1))
        #expect(fast.writeTimeout == .seconds(1))
        #expect(!fast.enableFallback)
        #expect(fast.nearCache == NearCacheConfiguration())
        #expect(production.nearCache == nil)
    }

    /// Both together make a fallback cache over a two-level cache (issue 11); still refused without Redis.
    @Test func nearCacheAndFallbackCombineOnRedis() throws {
        var configuration = CacheConfiguration.highPerformance(redisAddress: "localhost:6379")
        configuration.enableFallback = true
        try configuration.validate()
        configuration.redisCluster = true
        try configuration.validate()
        configuration.backend = .memory
        let error = #expect(throws: CacheError.self) { try configuration.validate() }
        #expect(error?.code == .invalidConfiguration)
    }

    static let nonsense: [(String, @Sendable (inout CacheConfiguration) -> Void)] = [
        ("negative memory", { $0.maxMemorySize = -1 }),
        ("zero memory", { $0.maxMemorySize = 0 }),
        ("zero ttl", { $0.defaultTTL = .zero }),
        ("negative retries", { $0.maxRetries = -1 }),
        ("zero pool", { $0.poolSize = 0 }),
        ("min idle above pool", { $0.minIdleConnections = 11 }),
        ("max idle above pool", { $0.maxIdleConnections = 11 }),
        ("min idle above max idle", { $0.minIdleConnections = 5; $0.maxIdleConnections = 4 }),
        ("negative read timeout", { $0.readTimeout = .seconds(-1) }),
        ("zero lifetime", { $0.connectionMaxLifetime = .zero }),
        ("negative database", { $0.redisDatabase = -1 }),
        ("bad address", { $0.backend = .redis; $0.redisAddress = "no-port" }),
        ("glob namespace", { $0.namespace = "app*" }),
        ("near cache without Redis", { $0.nearCache = NearCacheConfiguration() }),
        ("zero near-cache memory", { $0.backend = .redis; $0.nearCache = NearCacheConfiguration(maxMemorySize: 0) }),
        ("zero near-cache TTL", { $0.backend = .redis; $0.nearCache = NearCacheConfiguration(maxTTL: .zero) }),
        ("unbounded near-cache TTL", { $0.backend = .redis; $0.nearCache = NearCacheConfiguration(maxTTL: .noExpiry) }),
        ("near-cache ping every microsecond", { $0.backend = .redis; $0.nearCache = NearCacheConfiguration(trackingPingInterval: .microseconds(1)) }),
        ("name with a space", { $0.name = "user sessions" }),
        ("name with a newline", { $0.name = "a\nb" }),
        ("name beyond ASCII", { $0.name = "café" }),
        ("fallback without Redis", { $0.enableFallback = true }),
        ("several addresses without cluster", { $0.backend = .redis; $0.redisAddress = "a:1,b:2" }),
        ("bad cluster seed", { $0.backend = .redis; $0.redisCluster = true; $0.redisAddress = "a:1,b" }),
        ("cluster with a database", { $0.backend = .redis; $0.redisCluster = true; $0.redisDatabase = 2 }),
        ("zero fallback max outage age", { $0.fallbackMaxOutageAge = .zero }),
        ("negative fallback close timeout", { $0.fallbackCloseTimeout = .seconds(-1) }),
    ]

    @Test func clusterSeedsAreListedInTheAddressAndReadFromTheEnvironment() throws {
        var configuration = try CacheConfiguration.fromEnvironment(["REDIS_ADDR": "10.0.0.1:7000, 10.0.0.2:7001", "REDIS_CLUSTER": "true", "CACHE_BACKEND": "redis"])
        #expect(configuration.redisCluster && configuration.backend == .redis)
        try configuration.validate()
        #expect("\(configuration)".contains("redisCluster: true"))
        configuration.redisCluster = false
        let error = #expect(throws: CacheError.self) { try configuration.validate() }
        #expect(error?.message.contains("redisCluster") == true)
        #expect(throws: CacheError.self) { try CacheConfiguration.fromEnvironment(["REDIS_CLUSTER": "maybe"]) }
        // A near cache runs on a cluster too (one tracking connection per node).
        configuration.redisCluster = true
        configuration.nearCache = NearCacheConfiguration()
        try configuration.validate()
    }

    @Test func theFallbackSettingsReachTheFallbackConfiguration() throws {
        var configuration = CacheConfiguration.production(redisAddress: "cache.local:6379")
        #expect(configuration.fallbackConfiguration.recovery == .invalidate)
        configuration.fallbackRecovery = .writeBack
        configuration.fallbackMaxOutageAge = .seconds(30)
        configuration.fallbackCloseTimeout = .milliseconds(500)
        let fallback = configuration.fallbackConfiguration
        #expect(fallback.recovery == .writeBack)
        #expect(fallback.maxOutageAge == .seconds(30))
        #expect(fallback.closeTimeout == .milliseconds(500))
        try configuration.validate()
    }

    @Test func nearCacheIsReadFromTheEnvironment() throws {
        let base = ["REDIS_URL": "redis://cache.local:6379"]
        #expect(try CacheConfiguration.fromEnvironment(base.merging(["CACHE_NEAR_CACHE": "tracking"]) { $1 }).nearCache == NearCacheConfiguration())
        #expect(try CacheConfiguration.fromEnvironment(base.merging(["CACHE_NEAR_CACHE": "ttl-only"]) { $1 }).nearCache?.coherence == .ttlOnly)
        #expect(try CacheConfiguration.fromEnvironment(base.merging(["CACHE_NEAR_CACHE": "pub-sub"]) { $1 }).nearCache?.coherence == .pubSub)
        #expect(try CacheConfiguration.fromEnvironment(base.merging(["CACHE_NEAR_CACHE": "false"]) { $1 }, base: .highPerformance(redisAddress: "x:1")).nearCache == nil)
        let error = #expect(throws: CacheError.self) { try CacheConfiguration.fromEnvironment(base.merging(["CACHE_NEAR_CACHE": "maybe"]) { $1 }) }
        #expect(error?.code == .invalidConfiguration)
    }

    @Test func aNameThatRedisAcceptsIsValid() throws {
        var configuration = CacheConfiguration()
        configuration.name = "user-sessions_v2.eu:1"
        try configuration.validate()
    }

    @Test func statsCarryEveryCounterThroughTheInitializer() {
        let stats = CacheStats(hits: 1, misses: 2, sets: 3, deletes: 4, evictions: 5, expirations: 6, size: 7, entryCount: 8, fallbacks: 9, outages: 10, recoveries: 11)
        #expect([stats.fallbacks, stats.outages, stats.recoveries] == [9, 10, 11])
        #expect(CacheStats() == CacheStats(hits: 0))
    }

    @Test func everyEvictionStrategyIsACase() {
        func caseCount<S: CaseIterable>(_: S.Type) -> Int { S.allCases.count }
        #expect(caseCount(EvictionStrategy.self) == 4)
        #expect(EvictionStrategy.allCases.map(\.description) == ["expiry", "lru", "tinylfu", "s3fifo"])
        #expect(EvictionStrategy.allCases.allSatisfy { EvictionStrategy(name: $0.description) == $0 })
    }

    @Test(arguments: nonsense.indices)
    func validationRejectsNonsense(index: Int) {
        var configuration = CacheConfiguration()
        Self.nonsense[index].1(&configuration)
        let error = #expect(throws: CacheError.self) { try configuration.validate() }
        #expect(error?.code == .invalidConfiguration, "\(Self.nonsense[index].0)")
        #expect(error?.message.isEmpty == false)
    }

    @Test func redisURLIsParsed() throws {
        let plain = try CacheConfiguration(redisURL: "redis://cache.local")
        #expect(plain.backend == .redis)
        #expect(plain.redisAddress == "cache.local:6379")
        #expect(plain.redisPassword == nil)
        #expect(plain.redisDatabase == 0)
        #expect(!plain.redisTLS)

        let full = try CacheConfiguration(redisURL: "rediss://app:s%40cret@10.0.0.5:6380/3")
        #expect(full.redisTLS)
        #expect(full.redisUsername == "app")
        #expect(full.redisPassword == "s@cret")
        #expect(full.redisAddress == "10.0.0.5:6380")
        #expect(full.redisDatabase == 3)

        let passwordOnly = try CacheConfiguration(redisURL: "redis://:pw@[::1]:7000/1")
        #expect(passwordOnly.redisUsername == nil)
        #expect(passwordOnly.redisPassword == "pw")
        #expect(passwordOnly.redisAddress == "[::1]:7000")
    }

    @Test func redisURLsMeanWhatTheyMeanToTheClient() throws {
        // Decoded by the client's parser: an invalid escape is an error, not two lost bytes.
        #expect(throws: CacheError.self) { try CacheConfiguration(redisURL: "redis://:p%zz@h") }
        let options = try CacheConfiguration(redisURL: "redis://h?db=2&connect_timeout=250ms&command_timeout=2s")
        #expect(options.redisDatabase == 2)
        #expect(options.connectTimeout == .milliseconds(250))
        #expect(options.readTimeout == .seconds(2) && options.writeTimeout == .seconds(2))
        #expect(throws: CacheError.self) { try CacheConfiguration(redisURL: "redis://h?pool=3") }
    }

    @Test(arguments: ["http://host", "redis://", "redis://host:99999", "redis://host/abc", "redis://u:secret@host:0", "redis://u:secret%@host"])
    func malformedRedisURLsAreRejected(url: String) {
        let error = #expect(throws: CacheError.self) { try CacheConfiguration(redisURL: url) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("secret") == false, "passwords never appear in messages")
    }

    @Test func environmentOverridesTheBase() throws {
        let configuration = try CacheConfiguration.fromEnvironment([
            "REDIS_URL": "redis://:pw@redis:6379/2",
            "CACHE_MAX_MEMORY": "1048576",
            "CACHE_DEFAULT_TTL": "0",
            "CACHE_ENABLE_FALLBACK": "true",
            "CACHE_NAMESPACE": "shop",
        ])
        #expect(configuration.backend == .redis)
        #expect(configuration.redisAddress == "redis:6379")
        #expect(configuration.redisPassword == "pw")
        #expect(configuration.redisDatabase == 2)
        #expect(configuration.maxMemorySize == 1_048_576)
        #expect(configuration.defaultTTL == .noExpiry)
        #expect(configuration.enableFallback)
        #expect(configuration.namespace == "shop")

        #expect(throws: CacheError.self) { try CacheConfiguration.fromEnvironment(["CACHE_MAX_MEMORY": "lots"]) }
        #expect(throws: CacheError.self) { try CacheConfiguration.fromEnvironment(["CACHE_BACKEND": "disk"]) }
    }
}

@Suite("CacheError and CacheKey")
struct CacheErrorTests {
    @Test func errorsCompareByCodeAndKey() {
        #expect(CacheError.miss(key: "a") == CacheError.miss(key: "a"))
        #expect(CacheError.miss(key: "a") != CacheError.miss(key: "b"))
        #expect(CacheError.closed() != CacheError.miss(key: "a"))
        #expect(CacheError.miss(key: "a").description.contains("miss"))
    }

    @Test func keysAreValidated() throws {
        try CacheKey.validate("user:1")
        try CacheKey.validate(String(repeating: "k", count: CacheKey.maximumLength))
        #expect(throws: CacheError.self) { try CacheKey.validate("") }
        let error = #expect(throws: CacheError.self) { try CacheKey.validate(String(repeating: "k", count: CacheKey.maximumLength + 1)) }
        #expect(error?.code == .invalidKey)
    }

    @Test func noExpiryIsRecognised() {
        #expect(Duration.noExpiry.isNoExpiry)
        #expect(!Duration.seconds(3600).isNoExpiry)
    }
}
