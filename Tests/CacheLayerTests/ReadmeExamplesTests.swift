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
