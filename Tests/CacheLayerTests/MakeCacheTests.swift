import CacheLayer
import Testing

@Suite("makeCache")
struct MakeCacheTests {
    @Test func memoryBackendReturnsAWorkingMemoryCache() async throws {
        let cache = try await makeCache(.development)
        #expect(cache is MemoryCache)
        try await cache.set("greeting", to: "hello", ttl: .seconds(60))
        #expect(try await cache.get("greeting", as: String.self) == "hello")
        try await cache.close()
    }

    @Test func redisBackendIsNotYetSupported() async throws {
        do {
            _ = try await makeCache(.production(redisAddress: "localhost:6379"))
            Issue.record("expected the redis backend to be unsupported")
        } catch let error as CacheError {
            #expect(error.code == .unsupported)
            #expect(error.message.contains("use .memory"))
        }
    }

    @Test func invalidConfigurationIsRejected() async throws {
        var configuration = CacheConfiguration.default
        configuration.sweepInterval = .zero
        await #expect(throws: CacheError.self) { try await makeCache(configuration) }
    }
}
