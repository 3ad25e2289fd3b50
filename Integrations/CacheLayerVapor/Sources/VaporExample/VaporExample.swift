import CacheLayer
import CacheLayerVapor
import Vapor

/// A minimal Vapor service that caches a slow lookup with `getOrSet`.
///
/// `swift run VaporExample serve` (memory), or with `REDIS_ADDRESS=localhost:6379` (Redis with memory fallback);
/// then `curl localhost:8080/users/1` twice (slow, then fast) and `curl localhost:8080/stats`.
@main
struct VaporExample {
    static func main() async throws {
        let app = try await Application.make(try Environment.detect())
        var configuration = CacheConfiguration.development
        if let address = Environment.get("REDIS_ADDRESS") {
            configuration = .production(redisAddress: address)
            configuration.namespace = "vapor-example"
        }
        app.caches.use(.cacheLayer(configuration))

        app.get("users", ":id") { req async throws -> String in
            let id = try req.parameters.require("id", as: Int.self)
            return try await req.application.caches.cacheLayer().getOrSet("user:\(id)", ttl: .seconds(60)) {
                try await Task.sleep(for: .milliseconds(500))  // the slow lookup
                return "user \(id)\n"
            }
        }
        app.get("stats") { req async throws -> String in
            let stats = try await req.application.caches.cacheLayer().stats()
            return "hits \(stats.hits) misses \(stats.misses) sets \(stats.sets) entries \(stats.entryCount)\n"
        }
        do {
            try await app.execute()
        } catch {
            app.logger.report(error: error)
            try? await app.asyncShutdown()
            throw error
        }
        try await app.asyncShutdown()
    }
}
