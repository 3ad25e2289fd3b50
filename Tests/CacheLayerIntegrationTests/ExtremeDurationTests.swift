@testable import CacheLayer
import RedisTestSupport
import Testing

/// TTLs and grace periods at the ends of `Duration`'s range are stored as "never expires" (or refused with
/// `invalidTTL`), never a crash.
@Suite("Extreme durations")
struct ExtremeDurationTests {
    static let huge: [Duration] = [.seconds(Int64.max), .seconds(Int64.max / 1000 + 1), .noExpiry + .seconds(1)]

    static func exercise(_ cache: any Cache) async throws {
        for ttl in Self.huge {
            try await cache.set("k", to: 1, ttl: ttl)
            #expect(try await cache.get("k", as: Int.self) == 1)
            try await cache.setMany(["a": 1, "b": 2], ttl: ttl)
            #expect(try await cache.getOrSet("g", ttl: ttl) { 3 } == 3)
            #expect(try await cache.getOrSet("f", ttl: ttl, options: .failSafe(gracePeriod: ttl)) { 4 } == 4)
            #expect(try await cache.getOrSet("r", ttl: ttl, options: GetOrSetOptions(refreshAhead: 0.5)) { 5 } == 5)
            #expect(try await cache.getOrSet("h", ttl: .seconds(60), options: GetOrSetOptions(hardTimeout: ttl)) { 6 } == 6)
            // A short TTL with the longest grace period.
            #expect(try await cache.getOrSet("s\(ttl)", ttl: .seconds(60), options: .failSafe(gracePeriod: .seconds(Int64.max))) { 7 } == 7)
        }
        await #expect(throws: CacheError.self) { try await cache.set("k", to: 1, ttl: .seconds(Int64.min)) }
    }

    @Test("memory cache")
    func memory() async throws {
        var configuration = CacheConfiguration.default
        configuration.name = "extreme"
        let cache = try MemoryCache(configuration: configuration)
        try await Self.exercise(cache)
        try await cache.close()
    }

    @Test("Redis cache (real redis-server)")
    func redis() async throws {
        try await withRedisServer { server in
            let cache = try await RedisCache.connect(configuration: server.cacheConfiguration(), logger: quietLogger)
            try await Self.exercise(cache)
            try await cache.set("t", to: 1, ttl: .seconds(Int64.max), tags: ["tag"])
            try await cache.close()
        }
    }
}
