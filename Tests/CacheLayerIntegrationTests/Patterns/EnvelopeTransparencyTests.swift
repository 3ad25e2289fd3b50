import CacheLayer
import Testing

/// Fail-safe and early refresh keep their timestamps next to the value; plain reads must not notice.
@Suite("Plain reads of values written by fail-safe and early refresh")
struct EnvelopeTransparencyTests {
    static let caches = CacheUnderTest.all
    static let failSafe = GetOrSetOptions(gracePeriod: .seconds(600))
    static let refreshAhead = GetOrSetOptions(refreshAhead: 0.8)

    struct Profile: Codable, Sendable, Equatable {
        var name: String
        var visits: Int
    }

    @Test(arguments: caches)
    func plainReadsReturnAValueWrittenWithFailSafe(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        let profile = Profile(name: "Ada", visits: 3)
        _ = try await cache.getOrSet("profile:1", ttl: .seconds(60), options: Self.failSafe) { profile }
        #expect(try await cache.get("profile:1", as: Profile.self) == profile)
        #expect(try await cache.require("profile:1", as: Profile.self) == profile)
        #expect(try await cache.getMany(["profile:1", "absent"], as: Profile.self) == ["profile:1": profile])
        // The fail-safe path still reads its own envelope.
        let again = try await cache.getOrSet("profile:1", ttl: .seconds(60), options: Self.failSafe) { Profile(name: "Bob", visits: 0) }
        #expect(again == profile)
    }

    @Test(arguments: caches)
    func plainReadsReturnAValueWrittenWithEarlyRefresh(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        _ = try await cache.getOrSet("count", ttl: .seconds(60), options: Self.refreshAhead) { 42 }
        #expect(try await cache.get("count", as: Int.self) == 42)
        #expect(try await cache.getMany(["count"], as: Int.self) == ["count": 42])
    }

    @Test(arguments: caches)
    func aPlainReadOfALogicallyExpiredValueIsAMissWhileFailSafeStillServesIt(backend: CacheUnderTest) async throws {
        let clock = TestClock()
        let cache = try await backend.make(clock)
        _ = try await cache.getOrSet("price", ttl: .seconds(60), options: Self.failSafe) { 100 }
        clock.advance(by: .seconds(59))
        #expect(try await cache.get("price", as: Int.self) == 100)
        clock.advance(by: .seconds(2))
        // Past its TTL: kept only for fail-safe, which plain reads do not use; counted as a miss.
        let before = await cache.stats()
        #expect(try await cache.get("price", as: Int.self) == nil)
        let after = await cache.stats()
        #expect(after.misses == before.misses + 1)
        #expect(after.hits == before.hits)
        #expect(try await cache.getMany(["price"], as: Int.self).isEmpty)
        let error = await #expect(throws: CacheError.self) { try await cache.require("price", as: Int.self) }
        #expect(error?.code == .miss)
        let stale = try await cache.getOrSet("price", ttl: .seconds(60), options: Self.failSafe) { () async throws -> Int in
            throw TestFailure()
        }
        #expect(stale == 100)
    }

    @Test(arguments: caches)
    func aPlainReadOfAnotherTypeIsStillATypeMismatch(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        _ = try await cache.getOrSet("k", ttl: .seconds(60), options: Self.failSafe) { Profile(name: "Ada", visits: 1) }
        let error = await #expect(throws: CacheError.self) { try await cache.get("k", as: [Int].self) }
        #expect(error?.code == .typeMismatch)
    }

    @Test(arguments: caches)
    func aPlainWriteOverAFailSafeValueIsReadByBoth(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        let calls = CallCounter()
        _ = try await cache.getOrSet("k", ttl: .seconds(60), options: Self.failSafe) { calls.increment(); return 1 }
        try await cache.set("k", to: 2, ttl: .seconds(60))
        #expect(try await cache.get("k", as: Int.self) == 2)
        // What fail-safe cannot read as its own is a miss for it: it loads and stores an envelope again.
        #expect(try await cache.getOrSet("k", ttl: .seconds(60), options: Self.failSafe) { calls.increment(); return 3 } == 3)
        #expect(try await cache.get("k", as: Int.self) == 3)
        #expect(calls.value == 2)
    }
}
