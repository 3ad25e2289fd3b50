import CommonSupport
import RedisClient
import CacheLayer
import Synchronization
import Testing

@Suite("Batch operations")
struct BatchTests {
    static let caches = CacheUnderTest.all

    @Test(arguments: caches)
    func getManyReturnsOnlyThePresentKeys(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        try await cache.setMany(["a": 1, "b": 2, "c": 3], ttl: .seconds(60))
        let values = try await cache.getMany(["a", "c", "missing", "a"], as: Int.self)
        #expect(values == ["a": 1, "c": 3])
        #expect(try await cache.getMany([String](), as: Int.self).isEmpty)
    }

    @Test(arguments: caches)
    func deleteManyRemovesEveryKey(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        let entries = Dictionary(uniqueKeysWithValues: (0..<100).map { ("k\($0)", $0) })
        try await cache.setMany(entries, ttl: .seconds(60))
        try await cache.deleteMany((0..<50).map { "k\($0)" } + ["absent"])
        let left = try await cache.getMany(Array(entries.keys), as: Int.self)
        #expect(left == entries.filter { $0.value >= 50 })
    }

    @Test(arguments: caches)
    func getManyReportsATypeMismatch(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        try await cache.set("a", to: "text", ttl: .seconds(60))
        let error = await #expect(throws: CacheError.self) { try await cache.getMany(["a"], as: Int.self) }
        #expect(error?.code == .typeMismatch)
    }

    @Test(arguments: caches)
    func getOrSetManyLoadsExactlyTheMissingKeysInOneCall(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        try await cache.setMany(["user:1": "Ada", "user:3": "Cy"], ttl: .seconds(60))
        let requests = Locked<[[String]]>([])
        let users = try await cache.getOrSetMany(["user:1", "user:2", "user:3", "user:4", "user:2"], as: String.self, ttl: .seconds(60)) { missing in
            requests.withLock { $0.append(missing) }
            // user:4 does not exist in the source; extra keys are ignored.
            return ["user:2": "Bo", "user:9": "ignored"]
        }
        #expect(requests.withLock { $0 } == [["user:2", "user:4"]])
        #expect(users == ["user:1": "Ada", "user:2": "Bo", "user:3": "Cy"])
        #expect(try await cache.get("user:2", as: String.self) == "Bo")
        #expect(try await cache.get("user:9", as: String.self) == nil)

        // Everything present now: the loader is not called.
        let again = try await cache.getOrSetMany(["user:1", "user:2"], as: String.self, ttl: .seconds(60)) { _ in
            Issue.record("loader called although every key is cached")
            return [:]
        }
        #expect(again == ["user:1": "Ada", "user:2": "Bo"])
    }

    @Test(arguments: caches)
    func aLoaderErrorIsThrownAndNothingIsCached(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        await #expect(throws: TestFailure.self) {
            try await cache.getOrSetMany(["a", "b"], as: Int.self, ttl: .seconds(60)) { _ in throw TestFailure() }
        }
        #expect(try await cache.getMany(["a", "b"], as: Int.self).isEmpty)
        #expect(cache.patterns.counters.factoryErrors == 1)
    }

    @Test(arguments: caches)
    func aFailedStoreStillReturnsTheLoadedValues(backend: CacheUnderTest) async throws {
        let cache = FaultInjectingCache(base: try await backend.make(TestClock()))
        cache.failSets { _ in true }
        let values = try await cache.getOrSetMany(["a"], as: Int.self, ttl: .seconds(60)) { _ in ["a": 1] }
        #expect(values == ["a": 1])
        #expect(cache.patterns.counters.cacheWriteFailures == 1)
    }
}

@Suite("Invalidation")
struct InvalidationTests {
    static let caches = CacheUnderTest.all

    @Test(arguments: caches)
    func invalidatingATagRemovesItsEntriesOnly(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        guard backend.supportsInvalidation else {
            let error = await #expect(throws: CacheError.self) {
                try await cache.set("user:1", to: "Ada", ttl: .seconds(60), tags: ["user:1"])
            }
            #expect(error?.code == .unsupported)
            let tagError = await #expect(throws: CacheError.self) { try await cache.invalidate(tag: "user:1") }
            #expect(tagError?.code == .unsupported)
            // Without tags, the default stores as usual.
            try await cache.set("plain", to: 1, ttl: .seconds(60), tags: [])
            #expect(try await cache.get("plain", as: Int.self) == 1)
            return
        }
        try await cache.set("user:1", to: "Ada", ttl: .seconds(60), tags: ["user:1"])
        try await cache.set("user:1:profile", to: "likes tea", ttl: .seconds(60), tags: ["user:1", "profiles"])
        try await cache.set("user:2", to: "Bob", ttl: .seconds(60), tags: ["user:2"])
        try await cache.invalidate(tag: "user:1")
        #expect(try await cache.get("user:1", as: String.self) == nil)
        #expect(try await cache.get("user:1:profile", as: String.self) == nil)
        #expect(try await cache.get("user:2", as: String.self) == "Bob")
        try await cache.invalidate(tag: "unknown")
    }

    @Test(arguments: caches)
    func invalidatingAPrefixRemovesTheMatchingKeys(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        guard backend.supportsInvalidation else {
            let error = await #expect(throws: CacheError.self) { try await cache.invalidate(prefix: "user:1") }
            #expect(error?.code == .unsupported)
            return
        }
        try await cache.setMany(["user:1": 1, "user:1:profile": 2, "user:10": 3, "user:2": 4], ttl: .seconds(60))
        try await cache.invalidate(prefix: "user:1:")
        #expect(try await cache.getMany(["user:1", "user:1:profile", "user:10", "user:2"], as: Int.self) == ["user:1": 1, "user:10": 3, "user:2": 4])
        try await cache.invalidate(prefix: "user:")
        #expect(try await cache.getMany(["user:1", "user:10", "user:2"], as: Int.self).isEmpty)
    }
}
