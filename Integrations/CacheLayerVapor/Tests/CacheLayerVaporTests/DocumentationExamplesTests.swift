import CacheLayer
import CacheLayerVapor
import RedisTestSupport
import Testing
import Vapor
import VaporTesting

/// The README's and the DocC article's Vapor example, compiled and run (against a real redis-server) so it cannot drift from the API.
@Suite("README example: Vapor")
struct DocumentationExamplesTests {
    @Test func vaporSection() async throws {
        let server = try await RedisServer.shared()
        try await withApp { app in
            @Sendable func loadUserName(_ id: Int) async throws -> String { "user \(id)" }
            var configuration = CacheConfiguration.production(redisAddress: "\(server.host):\(server.port)")
            configuration.namespace = "readme-\(UInt64.random(in: 0...UInt64.max))"
            // README and the Vapor article: begin
            app.caches.use(.cacheLayer(configuration))   // for example .production(redisAddress: "redis:6379")
            app.get("users", ":id") { req async throws -> String in
                let id = try req.parameters.require("id", as: Int.self)
                try await req.cache.set("last-user", to: id, expiresIn: .minutes(5))
                return try await req.application.caches.cacheLayer().getOrSet("user:\(id)", ttl: .seconds(60)) {
                    try await loadUserName(id)
                }
            }
            // README and the Vapor article: end
            try await app.asyncBoot()
            try await app.testing().test(.GET, "users/4") { response in
                #expect(response.body.string == "user 4")
            }
            #expect(try await app.cache.get("last-user", as: Int.self) == 4)
        }
    }
}
