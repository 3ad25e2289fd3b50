@testable import CacheLayer
import RedisClient
import RedisTestSupport
import Testing

/// `invalidate(tag:)` either removes the members and the tag set, or leaves both, so a retry can finish the job.
@Suite("Redis tag invalidation atomicity (real redis-server)")
struct TagInvalidationTests {
    @Test("NOPERM on the members (ACL allows the tag set only) keeps the tag set and the members; a retry then works")
    func refusedInvalidationKeepsTheTagSet() async throws {
        let user = RedisServer.Options.User(name: "tagger", password: "tagger-pw", rules: ["~inv:__tag__:*", "+@all"])
        try await withRedisServer(.init(users: [user])) { server in
            let admin = try await RedisCache.connect(configuration: server.cacheConfiguration(namespace: "inv"), logger: quietLogger)
            try await admin.set("a", to: 1, ttl: .seconds(600), tags: ["t"])
            try await admin.set("b", to: 2, ttl: .seconds(600), tags: ["t"])
            var restricted = server.cacheConfiguration(namespace: "inv")
            restricted.redisUsername = user.name
            restricted.redisPassword = user.password
            let cache = try await RedisCache.connect(configuration: restricted, logger: quietLogger)

            await #expect(throws: CacheError.self) { try await cache.invalidate(tag: "t") }
            // Nothing was lost: the members are there, and so is the set that lists them.
            #expect(try await admin.get("a", as: Int.self) == 1)
            #expect(try await admin.get("b", as: Int.self) == 2)
            #expect(try await server.withRawConnection { try await $0.send(["SCARD", "inv:__tag__:t"]).int } == 2)

            // Once the user may touch the members, the retry removes them and the set.
            _ = try await server.withRawConnection { try await $0.send(["ACL", "SETUSER", user.name, "~inv:*"]) }
            try await cache.invalidate(tag: "t")
            #expect(try await admin.get("a", as: Int.self) == nil)
            #expect(try await admin.get("b", as: Int.self) == nil)
            #expect(try await server.withRawConnection { try await $0.send(["EXISTS", "inv:__tag__:t"]).int } == 0)
            try await cache.close()
            try await admin.close()
        }
    }

    @Test("a tag with more members than one UNLINK batch is removed entirely, and a key tagged afterwards survives")
    func largeTagIsRemovedAndLaterTagsSurvive() async throws {
        try await withRedisServer { server in
            let cache = try await RedisCache.connect(configuration: server.cacheConfiguration(namespace: "big"), logger: quietLogger)
            for i in 0..<2500 { try await cache.set("k\(i)", to: i, ttl: .seconds(600), tags: ["many"]) }
            try await cache.set("other", to: 0, ttl: .seconds(600), tags: ["else"])
            try await cache.invalidate(tag: "many")
            #expect(try await cache.getMany((0..<2500).map { "k\($0)" }, as: Int.self).isEmpty)
            #expect(try await cache.get("other", as: Int.self) == 0)
            try await cache.set("k1", to: 1, ttl: .seconds(600), tags: ["many"])
            #expect(try await cache.get("k1", as: Int.self) == 1)
            try await cache.invalidate(tag: "many")
            #expect(try await cache.get("k1", as: Int.self) == nil)
            try await cache.close()
        }
    }
}
