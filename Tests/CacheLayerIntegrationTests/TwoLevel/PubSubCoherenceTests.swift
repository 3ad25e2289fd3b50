@testable import CacheLayer
import Foundation
import NIOCore
import RedisClient
import RedisTestSupport
import Testing

/// The two-level cache kept coherent by the pub/sub backplane (`coherence: .pubSub`), against real redis-server
/// processes: several instances in this process, each with its own pool and subscriber connection.
///
/// Waits are bound to a name before `#expect` (see `TwoLevelCacheTests`).
@Suite("TwoLevelCache with pub/sub coherence")
struct PubSubCoherenceTests {
    static func near(maxTTL: Duration = .seconds(300)) -> NearCacheConfiguration {
        NearCacheConfiguration(maxMemorySize: 4 * 1024 * 1024, maxTTL: maxTTL, coherence: .pubSub, trackingPingInterval: .milliseconds(200))
    }

    /// An instance on `server`, returned once its subscription is confirmed.
    static func instance(_ server: RedisServer, namespace: String = "shared") async throws -> TwoLevelCache {
        var configuration = server.cacheConfiguration(namespace: namespace)
        configuration.name = "pubsub-test"
        configuration.poolSize = 4
        configuration.maxIdleConnections = 4
        configuration.nearCache = near()
        return try await TwoLevelCache.connect(configuration: configuration, logger: quietLogger)
    }

    static func nearValue(_ cache: TwoLevelCache, _ key: String) throws -> String? {
        try cache.near.memory.peekValue(key)?.value as? String
    }

    /// `writer` sets `key` to `value`, and this returns once `reader` got the invalidation (which would otherwise
    /// arrive after a read that follows and empty the L1 entry it filled).
    static func set(_ key: String, to value: String, on writer: TwoLevelCache, seenBy reader: TwoLevelCache) async throws {
        let messages = reader.nearCacheStatistics.invalidationMessages
        try await writer.set(key, to: value, ttl: .seconds(60))
        let delivered = await eventually { reader.nearCacheStatistics.invalidationMessages > messages }
        #expect(delivered)
    }

    /// Writes `rounds` new values on `writer` while `reader` reads; after the reader saw a value, it never reads an
    /// older one, and it sees every new value within the wait.
    static func readerNeverGoesBack(reader: TwoLevelCache, writer: TwoLevelCache, rounds: Int) async throws {
        try await Self.set("k", to: "v0", on: writer, seenBy: reader)
        for round in 1...rounds {
            #expect(try await reader.get("k", as: String.self) == "v\(round - 1)")
            #expect(try Self.nearValue(reader, "k") == "v\(round - 1)", "the read filled L1")
            try await writer.set("k", to: "v\(round)", ttl: .seconds(60))
            var sawNew = false
            let deadline = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < deadline {
                let value = try await reader.get("k", as: String.self)
                if value == "v\(round)" { sawNew = true } else {
                    #expect(!sawNew, "read \(value ?? "nil") after v\(round)")
                    #expect(value == "v\(round - 1)")
                }
                if sawNew, try Self.nearValue(reader, "k") == "v\(round)" { break }
                await Task.yield()
            }
            #expect(sawNew)
        }
    }

    @Test func anotherInstancesWriteDropsTheEntryFromL1AndNoOlderValueIsReadAfterIt() async throws {
        try await withRedisServer { server in
            let reader = try await Self.instance(server)
            let writer = try await Self.instance(server)
            try await Self.readerNeverGoesBack(reader: reader, writer: writer, rounds: 20)
            #expect(reader.nearCacheStatistics.invalidationMessages >= 20)
            #expect(writer.nearCacheStatistics.invalidationMessages == 0, "an instance ignores its own messages")
            #expect(reader.nearCacheStatistics.trackingSetUps == 1)
            try await reader.close()
            try await writer.close()
        }
    }

    @Test func worksOnAServerWithoutRESP3() async throws {
        // HELLO unknown: the connections log in with RESP2, client tracking is impossible, pub/sub works.
        try await withRedisServer(.init(extraArguments: ["--rename-command", "HELLO", ""])) { server in
            let reader = try await Self.instance(server)
            let writer = try await Self.instance(server)
            let raw = try await RedisConnection.connect(configuration: RedisConnectionConfiguration(host: server.host, port: server.port))
            #expect(raw.protocolVersion == 2)
            await raw.close()
            try await Self.readerNeverGoesBack(reader: reader, writer: writer, rounds: 5)
            // Killing the RESP2 subscriber empties L1 too, and the subscription comes back.
            #expect(try Self.nearValue(reader, "k") == "v5")
            try await server.withRawConnection { _ = try await $0.send("CLIENT", "KILL", "TYPE", "pubsub") }
            let settled = await eventually { reader.nearCacheStatistics.trackingSetUps >= 2 && reader.nearCacheStatistics.isCoherent }
            #expect(settled)
            #expect(try Self.nearValue(reader, "k") == nil)
            try await reader.close()
            try await writer.close()
        }
    }

    @Test func makeCacheBuildsATwoLevelCacheWithTheBackplane() async throws {
        try await withRedisServer { server in
            var configuration = server.cacheConfiguration(namespace: "made")
            configuration.nearCache = Self.near()
            let cache = try #require(try await makeCache(configuration, logger: quietLogger) as? TwoLevelCache)
            #expect(cache.backplane != nil)
            #expect(cache.nearCacheStatistics.isCoherent)
            let subscribers = try await server.withRawConnection { try await $0.send("PUBSUB", "NUMSUB", "made:__cachelayer:invalidations") }
            #expect(subscribers.array?.last?.int == 1, "\(subscribers)")
            try await cache.close()
        }
    }

    @Test func aUserThatMayNotSubscribeIsReportedAsUnsupportedAtOnce() async throws {
        let user = RedisServer.Options.User(name: "app", password: "pw", rules: ["~*", "resetchannels", "+@all"])
        try await withRedisServer(.init(users: [user])) { server in
            var configuration = server.cacheConfiguration(namespace: "refused")
            configuration.redisUsername = "app"
            configuration.redisPassword = "pw"
            configuration.connectTimeout = .seconds(30)
            configuration.nearCache = Self.near()
            let error = await #expect(throws: CacheError.self) { try await makeCache(configuration, logger: quietLogger) }
            #expect(error?.code == .unsupported)
            #expect(error?.message.contains("NOPERM") == true, "refused, not timed out: \(error?.message ?? "")")
        }
    }

    @Test func anInvalidationArrivingDuringARedisReadKeepsItsResultOutOfL1() async throws {
        try await withRedisServer { server in
            let reader = try await Self.instance(server)
            let writer = try await Self.instance(server)
            try await writer.set("k", to: "old", ttl: .seconds(60))
            let messages = reader.nearCacheStatistics.invalidationMessages
            reader.setFillHook { key in
                guard key == "k" else { return }
                try? await writer.set("k", to: "new", ttl: .seconds(60))
                _ = await eventually { reader.nearCacheStatistics.invalidationMessages > messages }
            }
            #expect(try await reader.get("k", as: String.self) == "old", "the value Redis held when it was read")
            reader.setFillHook(nil)
            #expect(try Self.nearValue(reader, "k") == nil, "the old value must not enter L1 after its invalidation")
            #expect(reader.nearCacheStatistics.refusedFills == 1)
            #expect(try await reader.get("k", as: String.self) == "new")
            try await reader.close()
            try await writer.close()
        }
    }

    @Test func killingTheSubscriberConnectionEmptiesL1AndTheSubscriptionComesBack() async throws {
        try await withRedisServer { server in
            let reader = try await Self.instance(server)
            let writer = try await Self.instance(server)
            try await Self.set("k", to: "v1", on: writer, seenBy: reader)
            #expect(try await reader.get("k", as: String.self) == "v1")
            #expect(try Self.nearValue(reader, "k") == "v1")
            let id = try #require(reader.trackingClientID)
            try await server.withRawConnection { _ = try await $0.send("CLIENT", "KILL", "TYPE", "pubsub") }
            // Written while the reader's subscriber is dead (or being set up again): the message may be lost.
            try await writer.set("k", to: "v2", ttl: .seconds(60))
            let settled = await eventually { reader.nearCacheStatistics.trackingSetUps >= 2 && reader.nearCacheStatistics.isCoherent }
            #expect(settled)
            #expect(reader.trackingClientID != id)
            #expect(try Self.nearValue(reader, "k") != "v1", "L1 was emptied when the subscriber connection went")
            #expect(try await reader.get("k", as: String.self) == "v2")
            try await writer.set("k", to: "v3", ttl: .seconds(60))
            let settled2 = try await eventually { try await reader.get("k", as: String.self) == "v3" }
            #expect(settled2)
            try await reader.close()
            try await writer.close()
        }
    }

    @Test func aFailedPublishIsRetriedUntilRedisTakesIt() async throws {
        try await withRedisServer { server in
            let reader = try await Self.instance(server)
            let writer = try await Self.instance(server)
            try await Self.set("k", to: "v1", on: writer, seenBy: reader)
            #expect(try await reader.get("k", as: String.self) == "v1")
            #expect(try Self.nearValue(reader, "k") == "v1")
            // The writes reach Redis; their PUBLISH is refused.
            try await server.withRawConnection { _ = try await $0.send("ACL", "SETUSER", "default", "-publish") }
            try await writer.set("k", to: "v2", ttl: .seconds(60))
            try await writer.set("other", to: "x", ttl: .seconds(60))
            #expect(writer.nearCacheStatistics.failedPublishes == 2)
            #expect(writer.backplane?.hasPendingPublications == true)
            try await Task.sleep(for: .milliseconds(50))
            #expect(try Self.nearValue(reader, "k") == "v1", "not yet told: the documented window of a failed publish")
            try await server.withRawConnection { _ = try await $0.send("ACL", "SETUSER", "default", "+publish") }
            let settled = await eventually { (try? Self.nearValue(reader, "k")) == .some(nil) }
            #expect(settled, "the retried invalidation arrived")
            #expect(try await reader.get("k", as: String.self) == "v2")
            let drained = await eventually { writer.backplane?.hasPendingPublications == false }
            #expect(drained)
            try await reader.close()
            try await writer.close()
        }
    }

    @Test func clearAndPrefixInvalidationReachEveryL1() async throws {
        try await withRedisServer { server in
            let reader = try await Self.instance(server)
            let writer = try await Self.instance(server)
            let messages = reader.nearCacheStatistics.invalidationMessages
            try await writer.setMany(["user:1": "a", "user:2": "b", "order:1": "c"], ttl: .seconds(60))
            let delivered = await eventually { reader.nearCacheStatistics.invalidationMessages > messages }
            #expect(delivered)
            for key in ["user:1", "user:2", "order:1"] { _ = try await reader.get(key, as: String.self) }
            #expect(reader.near.memory.currentStats().entryCount == 3)
            try await writer.invalidate(prefix: "user:")
            let settled = await eventually { reader.near.memory.currentStats().entryCount == 1 }
            #expect(settled)
            #expect(try Self.nearValue(reader, "order:1") == "c")
            try await writer.clear()
            let settled2 = await eventually { reader.near.memory.currentStats().entryCount == 0 }
            #expect(settled2)
            #expect(try await reader.get("order:1", as: String.self) == nil)
            try await reader.close()
            try await writer.close()
        }
    }

    @Test func aForeignMessageOnTheChannelEmptiesL1() async throws {
        try await withRedisServer { server in
            let cache = try await Self.instance(server)
            try await cache.set("k", to: "v", ttl: .seconds(60))
            #expect(try await cache.get("k", as: String.self) == "v")
            #expect(try Self.nearValue(cache, "k") == "v")
            let flushes = cache.nearCacheStatistics.flushes
            let channel = cache.nearCacheConfiguration.backplaneChannel(prefix: cache.redis.keyspace.prefix)
            try await server.withRawConnection { _ = try await $0.publish(channel, message: "not an invalidation") }
            let settled = await eventually { cache.nearCacheStatistics.flushes > flushes }
            #expect(settled)
            #expect(try Self.nearValue(cache, "k") == nil)
            try await cache.close()
        }
    }

    @Test func anAbandonedCacheIsFreedAndEndsItsSubscriberConnection() async throws {
        try await withRedisServer { server in
            try await expectAbandonedCacheEndsItsConnection(server, loop: "backplane's loops") { try await Self.instance(server) }
        }
    }

    @Test func concurrentWritesOfTwoInstancesLeaveNoStaleEntry() async throws {
        try await withRedisServer { server in
            let a = try await Self.instance(server)
            let b = try await Self.instance(server)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (name, cache) in [("a", a), ("b", b)] {
                    group.addTask {
                        for i in 0..<200 {
                            try await cache.set("k\(i % 4)", to: "\(name)\(i)", ttl: .seconds(60))
                            _ = try await cache.get("k\((i + 1) % 4)", as: String.self)
                        }
                    }
                    group.addTask {
                        for i in 0..<400 { _ = try await cache.get("k\(i % 4)", as: String.self) }
                    }
                }
                try await group.waitForAll()
            }
            let direct = try await RedisCache.connect(configuration: server.cacheConfiguration(namespace: "shared"), logger: quietLogger)
            let truth = try await (0..<4).asyncMap { try await direct.get("k\($0)", as: String.self) }
            try await direct.close()
            for cache in [a, b] {
                for key in 0..<4 {
                    let settled = try await eventually(timeout: .seconds(2)) { try await cache.get("k\(key)", as: String.self) == truth[key] }
                    #expect(settled)
                    for _ in 0..<10 { #expect(try await cache.get("k\(key)", as: String.self) == truth[key]) }
                }
            }
            try await a.close()
            try await b.close()
        }
    }
}
