@testable import CacheLayer
import Foundation
import RedisClient
import RedisTestSupport
import Testing

@Suite("RedisCache")
struct RedisCacheTests {
    struct User: Codable, Sendable, Equatable {
        var id: Int
        var name: String
    }

    @Test func storesReadsAndDeletesValuesUnderTheNamespace() async throws {
        try await withRedisServer { server in
            let cache = try await RedisCache.connect(configuration: server.cacheConfiguration(namespace: "myapp"), logger: quietLogger)
            let ada = User(id: 1, name: "Ada")
            try await cache.set("user:1", to: ada, ttl: .seconds(60))
            #expect(try await cache.get("user:1", as: User.self) == ada)
            #expect(try await cache.exists("user:1"))
            #expect(try await cache.get("user:2", as: User.self) == nil)
            // Stored as JSON under myapp:user:1, with a millisecond TTL.
            let (raw, ttl) = try await server.withRawConnection { connection in
                (try await connection.getString("myapp:user:1"), try await connection.pttl("myapp:user:1"))
            }
            #expect(try JSONDecoder().decode(User.self, from: Data((raw ?? "").utf8)) == ada)
            #expect(ttl > 50_000 && ttl <= 60_000)
            try await cache.delete("user:1")
            #expect(try await cache.get("user:1", as: User.self) == nil)
            #expect(try await !cache.exists("user:1"))
            try await cache.delete("user:1")

            let stats = await cache.stats()
            #expect(stats.hits == 1)
            #expect(stats.misses == 2)
            #expect(stats.sets == 1)
            #expect(stats.deletes == 2)
            #expect(stats.size == raw?.utf8.count)
            try await cache.close()
        }
    }

    @Test func clearRemovesOnlyTheNamespacesKeys() async throws {
        try await withRedisServer { server in
            let cache = try await RedisCache.connect(configuration: server.cacheConfiguration(namespace: "app"), logger: quietLogger)
            let other = try await RedisCache.connect(configuration: server.cacheConfiguration(namespace: "application"), logger: quietLogger)
            try await cache.setMany(Dictionary(uniqueKeysWithValues: (0..<2_500).map { ("k\($0)", $0) }), ttl: .seconds(60))
            try await cache.set("tagged", to: 1, ttl: .seconds(60), tags: ["t"])
            try await other.set("k1", to: "other", ttl: .seconds(60))
            _ = try await server.withRawConnection { try await $0.set("unrelated", value: "x") }

            try await cache.clear()
            #expect(try await cache.get("k1", as: Int.self) == nil)
            #expect(try await cache.getMany((0..<2_500).map { "k\($0)" }, as: Int.self).isEmpty)
            // Another namespace sharing the first letters and other applications keep their keys.
            #expect(try await other.get("k1", as: String.self) == "other")
            let remaining = try await server.withRawConnection { connection in
                try await connection.send(["KEYS", "*"]).array?.compactMap(\.string).sorted()
            }
            #expect(remaining == ["application:k1", "unrelated"])
            try await cache.close()
            try await other.close()
        }
    }

    @Test func clearWithoutANamespaceRefusesUnlessFlushingIsAllowed() async throws {
        try await withRedisServer { server in
            var configuration = server.cacheConfiguration(namespace: nil)
            let cache = try await RedisCache.connect(configuration: configuration, logger: quietLogger)
            try await cache.set("k", to: 1, ttl: .seconds(60))
            let error = await #expect(throws: CacheError.self) { try await cache.clear() }
            #expect(error?.code == .invalidConfiguration)
            #expect(error?.message.contains("allowFlushDatabase") == true)
            #expect(try await cache.get("k", as: Int.self) == 1)
            try await cache.close()

            configuration.allowFlushDatabase = true
            let flushing = try await RedisCache.connect(configuration: configuration, logger: quietLogger)
            try await flushing.clear()
            #expect(try await flushing.get("k", as: Int.self) == nil)
            try await flushing.close()
        }
    }

    @Test func ttlsAreMillisecondsAndDefaultsApply() async throws {
        try await withRedisServer { server in
            var configuration = server.cacheConfiguration()
            configuration.defaultTTL = .seconds(30)
            let cache = try await RedisCache.connect(configuration: configuration, logger: quietLogger)
            try await cache.set("short", to: "x", ttl: .milliseconds(200))
            try await cache.set("medium", to: "x", ttl: .milliseconds(5_500))
            try await cache.set("default", to: "x", ttl: nil)
            try await cache.set("forever", to: "x", ttl: .noExpiry)
            let ttls = try await server.withRawConnection { connection in
                [try await connection.pttl("test:medium"), try await connection.pttl("test:default"), try await connection.pttl("test:forever")]
            }
            #expect(ttls[0] > 0 && ttls[0] <= 5_500)
            #expect(ttls[1] > 20_000 && ttls[1] <= 30_000)
            #expect(ttls[2] == -1)
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await cache.get("short", as: String.self) == nil)
            #expect(try await cache.get("forever", as: String.self) == "x")
            await #expect(throws: CacheError.invalidTTL(key: "k", ttl: .zero)) { try await cache.set("k", to: 1, ttl: .zero) }
            try await cache.close()

            configuration.defaultTTL = .noExpiry
            let noDefault = try await RedisCache.connect(configuration: configuration, logger: quietLogger)
            try await noDefault.set("none", to: 1, ttl: nil)
            #expect(try await server.withRawConnection { try await $0.pttl("test:none") } == -1)
            try await noDefault.close()
        }
    }

    @Test func readingAnotherTypeIsATypeMismatchWithTheKey() async throws {
        try await withRedisServer { server in
            let cache = try await RedisCache.connect(configuration: server.cacheConfiguration(), logger: quietLogger)
            try await cache.set("user:1", to: "not a user", ttl: .seconds(60))
            let error = await #expect(throws: CacheError.self) { try await cache.get("user:1", as: User.self) }
            #expect(error?.code == .typeMismatch)
            #expect(error?.key == "user:1")
            #expect(error?.underlying is DecodingError)
            // A Redis list under the key (written by someone else) is a type mismatch too, not a crash.
            _ = try await server.withRawConnection { try await $0.send(["RPUSH", "test:list", "a"]) }
            let listError = await #expect(throws: CacheError.self) { try await cache.get("list", as: String.self) }
            #expect(listError?.code == .typeMismatch)
            #expect(listError?.key == "list")
            try await cache.close()
        }
    }

    @Test func invalidAndReservedKeysAreRejected() async throws {
        try await withRedisServer { server in
            let cache = try await RedisCache.connect(configuration: server.cacheConfiguration(), logger: quietLogger)
            await #expect(throws: CacheError.self) { try await cache.set("", to: 1, ttl: nil) }
            let error = await #expect(throws: CacheError.self) { try await cache.set("__tag__:x", to: 1, ttl: nil) }
            #expect(error?.code == .invalidKey)
            try await cache.close()
        }
    }

    @Test func serverInfoReportsMemoryAndKeyspaceFigures() async throws {
        try await withRedisServer { server in
            let cache = try await RedisCache.connect(configuration: server.cacheConfiguration(), logger: quietLogger)
            try await cache.set("a", to: 1, ttl: .seconds(60))
            _ = try await cache.get("a", as: Int.self)
            _ = try await cache.get("b", as: Int.self)
            let info = try await cache.serverInfo()
            #expect(!info.version.isEmpty)
            #expect(info.usedMemory > 0)
            #expect(info.keys == 1)
            #expect(info.keyspaceHits >= 1)
            #expect(info.keyspaceMisses >= 1)
            #expect(info.evictedKeys == 0)
            try await cache.close()
        }
    }

    @Test func closeReleasesEveryConnectionAndLaterCallsThrowClosed() async throws {
        try await withRedisServer { server in
            let cache = try await RedisCache.connect(configuration: server.cacheConfiguration(), logger: quietLogger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<20 { group.addTask { try await cache.set("k\(index)", to: index, ttl: .seconds(60)) } }
                try await group.waitForAll()
            }
            #expect(try await Self.clientCount(server) > 0)
            try await cache.close()
            try await cache.close()
            #expect(try await Self.clientCount(server) == 0)
            await #expect(throws: CacheError.closed(key: "k")) { try await cache.get("k", as: Int.self) }
            await #expect(throws: CacheError.closed()) { try await cache.ping() }
        }
    }

    @Test func connectsOverTLSWithAPrivateCertificateAuthority() async throws {
        try await withRedisServer(.init(tls: true)) { server in
            var configuration = server.cacheConfiguration()
            configuration.redisTLS = true
            configuration.redisCACertificatePath = server.caCertificatePath
            let cache = try await RedisCache.connect(configuration: configuration, logger: quietLogger)
            try await cache.set("secure", to: true, ttl: .seconds(60))
            #expect(try await cache.get("secure", as: Bool.self) == true)
            try await cache.close()
        }
    }

    /// Clients connected to `server` other than the one asking, named by RedisCache (`cachelayer-…`).
    static func clientCount(_ server: RedisServer) async throws -> Int {
        let list = try await server.withRawConnection { try await $0.send(["CLIENT", "LIST"]).string ?? "" }
        return list.split(separator: "\n").filter { $0.contains("name=cachelayer-") }.count
    }
}
