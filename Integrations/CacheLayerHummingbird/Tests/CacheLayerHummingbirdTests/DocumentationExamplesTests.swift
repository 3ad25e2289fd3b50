import CacheLayer
import CacheLayerHummingbird
import Hummingbird
import HummingbirdTesting
import Testing

/// The README's and the DocC article's Hummingbird example, compiled and run so it cannot drift from the API.
@Suite("README example: Hummingbird")
struct DocumentationExamplesTests {
    func loadUserName(_ id: Int) async throws -> String { "user \(id)" }

    @Test func hummingbirdSection() async throws {
        let configuration = CacheConfiguration.development
        // README and the Hummingbird article: begin
        let cache = try await makeCache(configuration)
        let persist = CachePersistDriver(cache: cache)
        let router = Router()
        router.get("/users/:id") { _, context -> String in
            let id = try context.parameters.require("id", as: Int.self)
            return try await cache.getOrSet("user:\(id)", ttl: .seconds(60)) { try await loadUserName(id) }
        }
        let app = Application(router: router, services: [persist])
        // README and the Hummingbird article: end
        try await app.test(.router) { client in
            try await client.execute(uri: "/users/3", method: .get) { response in
                #expect(String(buffer: response.body) == "user 3")
            }
        }
        // The driver closed the cache on shutdown.
        let error = await #expect(throws: CacheError.self) { try await cache.get("user:3", as: String.self) }
        #expect(error?.code == .closed)
    }
}
