import CacheLayer
import Testing

/// The README's examples, compiled and run so they cannot drift from the API.
@Suite("README examples")
struct ReadmeExamplesTests {
    struct User: Codable, Sendable {
        var id: Int
        var name: String
    }

    @Test func quickStart() async throws {
        let cache = try await makeCache(.development)

        try await cache.set("user:123", to: User(id: 123, name: "Alice"), ttl: .seconds(3600))
        var printed: String?
        if let user = try await cache.get("user:123", as: User.self) {
            printed = user.name
        }
        #expect(printed == "Alice")
        try await cache.set("build", to: "2026.11", ttl: .noExpiry)
        let exists = try await cache.exists("user:123")
        #expect(exists)
        try await cache.delete("user:123")

        var missed = false
        do {
            _ = try await cache.require("user:123", as: User.self)
        } catch let error as CacheError where error.code == .miss {
            missed = true
        }
        #expect(missed)

        let stats = await cache.stats()
        #expect(stats.hits == 1)
        #expect(stats.misses == 1)
        #expect(stats.hitRate == 0.5)
        try await cache.close()
    }
}

/// A stand-in for the application's database in the README examples.
private struct ExampleDatabase: Sendable {
    func loadUser(id: Int) async throws -> ReadmeExamplesTests.User { .init(id: id, name: "User \(id)") }
    func loadPrices() async throws -> [String: Int] { ["tea": 350] }
    func loadUsers(keys: [String]) async throws -> [String: ReadmeExamplesTests.User] {
        Dictionary(uniqueKeysWithValues: keys.map { ($0, ReadmeExamplesTests.User(id: 0, name: $0)) })
    }
    func save(_ user: ReadmeExamplesTests.User) async throws {}
}

extension ReadmeExamplesTests {
    /// The README's Redis snippet: compiled here, not run (it needs servers at those addresses).
    static func redisExample() async throws -> [any Cache] {
        var redisOnly = try CacheConfiguration(redisURL: "redis://:secret@127.0.0.1:6379/0")
        redisOnly.namespace = "shop"
        let redis = try await makeCache(redisOnly)

        let resilient = try await makeCache(.production(redisAddress: "redis.internal:6379", password: "secret"))
        return [redis, resilient]
    }

    @Test func patterns() async throws {
        let cache = try await makeCache(.development)
        let database = ExampleDatabase()

        let user = try await cache.getOrSet("user:42", ttl: .seconds(600)) {
            try await database.loadUser(id: 42)
        }
        #expect(user.id == 42)

        let prices = try await cache.getOrSet(
            "prices", ttl: .seconds(60),
            options: .failSafe(gracePeriod: .seconds(3600), softTimeout: .milliseconds(200))
        ) {
            try await database.loadPrices()
        }
        #expect(prices["tea"] == 350)
        let cachedPrices = try await cache.get("prices", as: [String: Int].self)
        #expect(cachedPrices == prices)

        cache.patterns.defaultOptions = .failSafe(gracePeriod: .seconds(3600))
        print("stale values served: \(cache.patterns.counters.staleValuesServed)")
        #expect(cache.patterns.defaultOptions.gracePeriod == .seconds(3600))

        let users = try await cache.getOrSetMany(["user:1", "user:2", "user:3"], ttl: .seconds(600)) { missing in
            try await database.loadUsers(keys: missing)
        }
        #expect(users.count == 3)

        try await cache.writeThrough("user:42", value: user, ttl: .seconds(600)) {
            try await database.save(user)
        }

        try await cache.set("user:42:profile", to: user, ttl: nil, tags: ["user:42"])
        try await cache.invalidate(tag: "user:42")
        try await cache.invalidate(prefix: "user:42:")
        try await cache.deleteMany(["user:1", "user:2"])
        #expect(try await cache.get("user:42:profile", as: User.self) == nil)

        let report = await cache.warm(entries: users.map { (key: $0.key, value: $0.value) }, ttl: .seconds(600))
        #expect(report.succeeded == 3)
        try await cache.close()
    }
}
