import CacheLayer
import Testing

@Suite("writeThrough")
struct WriteThroughTests {
    static let caches = CacheUnderTest.all

    @Test(arguments: caches)
    func updatesTheSourceThenTheCache(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        let source = CallCounter()
        let stored = try await cache.writeThrough("user:1", value: "Ada", ttl: .seconds(60)) { source.increment() }
        #expect(stored)
        #expect(source.value == 1)
        #expect(try await cache.get("user:1", as: String.self) == "Ada")
    }

    @Test(arguments: caches)
    func aFailedSourceUpdateLeavesTheCacheAlone(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        try await cache.set("user:1", to: "old", ttl: .seconds(60))
        await #expect(throws: TestFailure.self) {
            try await cache.writeThrough("user:1", value: "new", ttl: .seconds(60)) { throw TestFailure() }
        }
        #expect(try await cache.get("user:1", as: String.self) == "old")
    }

    @Test(arguments: caches)
    func aFailedCacheWriteIsCountedNotThrownAndTheOldValueIsDropped(backend: CacheUnderTest) async throws {
        let cache = FaultInjectingCache(base: try await backend.make(TestClock()))
        try await cache.set("user:1", to: "old", ttl: .seconds(60))
        cache.failSets { $0 == "user:1" }
        let source = CallCounter()
        let stored = try await cache.writeThrough("user:1", value: "new", ttl: .seconds(60)) { source.increment() }
        #expect(!stored)
        #expect(source.value == 1)
        #expect(cache.patterns.counters.cacheWriteFailures == 1)
        #expect(try await cache.get("user:1", as: String.self) == nil)
    }
}
