@testable import CacheLayer
import RedisClient
import RedisTestSupport
import Testing

@Suite("RedisCache batches and invalidation")
struct RedisCacheBatchTests {
    @Test func eachBatchTakesOneRoundTripAndOneCommandKind() async throws {
        try await withRedisServer { server in
            let cache = try await RedisCache.connect(configuration: server.cacheConfiguration(), logger: quietLogger)
            let entries = Dictionary(uniqueKeysWithValues: (0..<200).map { ("k\($0)", $0) })
            let before = cache.roundTrips

            try await cache.setMany(entries, ttl: .seconds(60))
            #expect(cache.roundTrips - before == 1)
            #expect(try await server.commandCalls("set") == 200)

            let values = try await cache.getMany(Array(entries.keys) + ["absent"], as: Int.self)
            #expect(values == entries)
            #expect(cache.roundTrips - before == 2)
            #expect(try await server.commandCalls("mget") == 1)
            #expect(try await server.commandCalls("get") == 0)

            try await cache.deleteMany(Array(entries.keys))
            #expect(cache.roundTrips - before == 3)
            #expect(try await server.commandCalls("unlink") == 1)
            #expect(try await cache.getMany(Array(entries.keys), as: Int.self).isEmpty)
            let stats = await cache.stats()
            #expect(stats.sets == 200)
            #expect(stats.hits == 200)
            #expect(stats.misses == 201)
            #expect(stats.deletes == 200)
            try await cache.close()
        }
    }

    /// One round trip for the whole batch (its speed is measured by `cachelayer batch-bench`, not here).
    @Test func getManyOfAThousandKeysIsOneMGET() async throws {
        try await withRedisServer { server in
            let cache = try await RedisCache.connect(configuration: server.cacheConfiguration(), logger: quietLogger)
            let keys = (0..<1000).map { "item:\($0)" }
            try await cache.setMany(Dictionary(uniqueKeysWithValues: keys.map { ($0, "value of \($0)") }), ttl: .seconds(60))
            let mgetBefore = try await server.commandCalls("mget")
            let getBefore = try await server.commandCalls("get")
            let values = try await cache.getMany(keys + ["absent"], as: String.self)
            #expect(values.count == 1000)
            #expect(values["item:7"] == "value of item:7")
            #expect(try await server.commandCalls("mget") == mgetBefore + 1)
            #expect(try await server.commandCalls("get") == getBefore)
            try await cache.close()
        }
    }

    @Test func tagInvalidationRemovesTheTaggedKeysAndTheTagSet() async throws {
        try await withRedisServer { server in
            let cache = try await RedisCache.connect(configuration: server.cacheConfiguration(namespace: "shop"), logger: quietLogger)
            try await cache.set("product:1", to: "tea", ttl: .seconds(60), tags: ["category:drinks", "sale"])
            try await cache.set("product:2", to: "coffee", ttl: .seconds(120), tags: ["category:drinks"])
            try await cache.set("product:3", to: "bread", ttl: .noExpiry, tags: ["sale"])
            try await cache.set("product:4", to: "jam", ttl: .seconds(60))
            let (members, drinksTTL, saleTTL) = try await server.withRawConnection { connection in
                (
                    try await connection.send(["SMEMBERS", "shop:__tag__:category:drinks"]).array?.compactMap(\.string).sorted(),
                    try await connection.pttl("shop:__tag__:category:drinks"),
                    try await connection.pttl("shop:__tag__:sale")
                )
            }
            #expect(members == ["shop:product:1", "shop:product:2"])
            // A tag set lives as long as its longest-lived member.
            #expect(drinksTTL > 100_000 && drinksTTL <= 120_000)
            #expect(saleTTL == -1)

            try await cache.invalidate(tag: "category:drinks")
            #expect(try await cache.getMany(["product:1", "product:2", "product:3", "product:4"], as: String.self) == ["product:3": "bread", "product:4": "jam"])
            #expect(try await server.withRawConnection { try await $0.exists(["shop:__tag__:category:drinks"]) } == 0)
            try await cache.invalidate(tag: "never-used")
            #expect(try await server.commandCalls("keys") == 0)
            try await cache.close()
        }
    }

    @Test func tagInvalidationOfALargeTagRemovesEveryMember() async throws {
        try await withRedisServer { server in
            let cache = try await RedisCache.connect(configuration: server.cacheConfiguration(), logger: quietLogger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<2_500 {
                    group.addTask { try await cache.set("k\(index)", to: index, ttl: .seconds(60), tags: ["big"]) }
                    if index % 8 == 7 { try await group.next() }
                }
                try await group.waitForAll()
            }
            try await cache.invalidate(tag: "big")
            #expect(try await server.withRawConnection { try await $0.send(["DBSIZE"]).int } == 0)
            try await cache.close()
        }
    }

    @Test func prefixInvalidationStaysInTheNamespaceAndMatchesGlobCharactersLiterally() async throws {
        try await withRedisServer { server in
            let cache = try await RedisCache.connect(configuration: server.cacheConfiguration(namespace: "a"), logger: quietLogger)
            let neighbour = try await RedisCache.connect(configuration: server.cacheConfiguration(namespace: "b"), logger: quietLogger)
            try await cache.setMany(["user:1": 1, "user:1:x": 2, "user:2": 3, "us*r": 4, "usXr": 5, "u[s]": 6, "us": 7], ttl: .seconds(60))
            try await neighbour.set("user:1", to: 10, ttl: .seconds(60))
            try await cache.invalidate(prefix: "user:1")
            #expect(try await cache.getMany(["user:1", "user:1:x", "user:2"], as: Int.self) == ["user:2": 3])
            try await cache.invalidate(prefix: "us*")
            try await cache.invalidate(prefix: "u[s")
            #expect(try await cache.getMany(["us*r", "usXr", "u[s]", "us"], as: Int.self) == ["usXr": 5, "us": 7])
            #expect(try await neighbour.get("user:1", as: Int.self) == 10)
            try await cache.close()
            try await neighbour.close()
        }
    }
}

@Suite("RedisCache error mapping")
struct RedisCacheErrorTests {
    @Test func aWrongPasswordIsAnAuthenticationErrorAtCreation() async throws {
        try await withRedisServer(.init(password: "right")) { server in
            // Generous timeouts: a slow machine must not turn the refusal into a timeout.
            var configuration = server.cacheConfiguration(timeout: .seconds(10))
            configuration.redisPassword = "wrong"
            let error = await #expect(throws: CacheError.self) { try await RedisCache.connect(configuration: configuration, logger: quietLogger) }
            #expect(error?.code == .authenticationFailed)
            #expect(error?.message.contains("redisPassword") == true)
            // With fallback too: a wrong password is a configuration mistake, not an outage.
            configuration.enableFallback = true
            let fallbackError = await #expect(throws: CacheError.self) { try await makeCache(configuration, logger: quietLogger) }
            #expect(fallbackError?.code == .authenticationFailed)
            // No password at all.
            configuration.redisPassword = nil
            let missing = await #expect(throws: CacheError.self) { try await makeCache(configuration, logger: quietLogger) }
            #expect(missing?.code == .authenticationFailed)
            // The right one works.
            configuration.redisPassword = "right"
            let cache = try await makeCache(configuration, logger: quietLogger)
            try await cache.close()
        }
    }

    @Test func anUnreachableServerIsUnavailableWithTheUnderlyingError() async throws {
        let server = try await RedisServer.start()
        let configuration = server.cacheConfiguration(timeout: .milliseconds(500))
        await server.stop()
        let cache = try RedisCache(configuration: configuration, logger: quietLogger)
        let start = ContinuousClock.now
        let error = await #expect(throws: CacheError.self) { try await cache.get("k", as: Int.self) }
        #expect(error?.code == .unavailable)
        #expect(error?.key == "k")
        #expect(error?.underlying is RedisError)
        #expect(ContinuousClock.now - start < .seconds(3))
        try await cache.close()
    }

    @Test func aPausedServerIsATimeoutAndACancelledCallIsCancelled() async throws {
        try await withRedisServer { server in
            var configuration = server.cacheConfiguration(timeout: .milliseconds(300))
            configuration.connectTimeout = .seconds(2)
            let cache = try await RedisCache.connect(configuration: configuration, logger: quietLogger)
            try await cache.set("k", to: 1, ttl: .seconds(60))
            try server.pause()
            let error = await #expect(throws: CacheError.self) { try await cache.get("k", as: Int.self) }
            #expect(error?.code == .timeout)
            let waiting = Task { try await cache.get("k", as: Int.self) }
            try await Task.sleep(for: .milliseconds(50))
            waiting.cancel()
            let cancelled = await #expect(throws: CacheError.self) { try await waiting.value }
            #expect(cancelled?.code == .cancelled)
            try server.resume()
            #expect(try await cache.get("k", as: Int.self) == 1)
            try await cache.close()
        }
    }

    @Test func anErrorReplyIsABackendError() async throws {
        try await withRedisServer { server in
            let cache = try await RedisCache.connect(configuration: server.cacheConfiguration(), logger: quietLogger)
            try await server.withRawConnection { connection in
                try await connection.send(["CONFIG", "SET", "maxmemory-policy", "noeviction"])
                try await connection.send(["CONFIG", "SET", "maxmemory", "1"])
            }
            let error = await #expect(throws: CacheError.self) { try await cache.set("k", to: 1, ttl: .seconds(60)) }
            #expect(error?.code == .backendError)
            #expect(error?.message.contains("OOM") == true)
            #expect((error?.underlying as? RedisError)?.serverCode == "OOM")
            try await cache.close()
        }
    }

    @Test func mappingCoversEveryClientErrorKind() {
        let cases: [(RedisError.Code, String?, CacheError.Code)] = [
            (.poolTimeout, nil, .busy), (.connectFailed, nil, .unavailable), (.connectionClosed, nil, .unavailable),
            (.timeout, nil, .timeout), (.authenticationFailed, nil, .authenticationFailed), (.cancelled, nil, .cancelled),
            (.poolClosed, nil, .closed), (.serverError, "NOAUTH", .authenticationFailed), (.serverError, "WRONGPASS", .authenticationFailed),
            (.serverError, "LOADING", .unavailable), (.serverError, "WRONGTYPE", .typeMismatch), (.serverError, "ERR", .backendError),
            (.protocolError, nil, .backendError),
        ]
        for (code, serverCode, expected) in cases {
            let mapped = CacheError.fromRedis(RedisError(code: code, message: "m", serverCode: serverCode), key: "k")
            #expect(mapped.code == expected, "\(code) \(serverCode ?? "")")
        }
        #expect(CacheError.fromRedis(CancellationError(), key: nil).code == .cancelled)
    }
}
