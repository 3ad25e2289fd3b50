import CacheLayer
import CacheLayerHummingbird
import Foundation
import Hummingbird

/// A minimal Hummingbird service that caches a slow lookup with `getOrSet`.
///
/// `swift run HummingbirdExample` (memory), or with `REDIS_ADDRESS=localhost:6379` (Redis with memory fallback);
/// then `curl localhost:8080/users/1` twice (slow, then fast) and `curl localhost:8080/stats`.
@main
struct HummingbirdExample {
    static func main() async throws {
        var configuration = CacheConfiguration.development
        if let address = ProcessInfo.processInfo.environment["REDIS_ADDRESS"] {
            configuration = .production(redisAddress: address)
            configuration.namespace = "hummingbird-example"
        }
        let cache = try await makeCache(configuration)

        let router = Router()
        router.get("/users/:id") { _, context -> String in
            let id = try context.parameters.require("id", as: Int.self)
            return try await cache.getOrSet("user:\(id)", ttl: .seconds(60)) {
                try await Task.sleep(for: .milliseconds(500))  // the slow lookup
                return "user \(id)\n"
            }
        }
        router.get("/stats") { _, _ -> String in
            let stats = await cache.stats()
            return "hits \(stats.hits) misses \(stats.misses) sets \(stats.sets) entries \(stats.entryCount)\n"
        }
        // The driver runs the cache's background work and closes it on shutdown; it is also the app's persist store.
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 8080)),
            services: [CachePersistDriver(cache: cache)]
        )
        try await app.runService()
    }
}
