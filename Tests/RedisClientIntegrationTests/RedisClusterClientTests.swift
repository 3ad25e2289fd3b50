import CommonSupport
import NIOCore
import RedisClient
import RedisTestSupport
import Testing

/// Runs `body` with a cluster client over `cluster` while its `run()` runs, then shuts it down.
func withClusterClient<T: Sendable>(
    _ cluster: RedisCluster,
    retryTimeout: Duration = .seconds(5),
    commandTimeout: Duration = .seconds(2),
    readFromReplicas: Bool = false,
    _ body: (RedisClusterClient) async throws -> T
) async throws -> T {
    var connection = RedisConnectionConfiguration(host: "127.0.0.1", port: cluster.nodes[0].port)
    if let caCertificatePath = cluster.caCertificatePath { connection.tls = try .verifying(caCertificatePath: caCertificatePath) }
    connection.commandTimeout = commandTimeout
    connection.connectTimeout = .seconds(1)
    let configuration = try RedisClusterConfiguration(
        seeds: [cluster.seeds[0]], connection: connection,
        pool: .init(maxConnections: 8, acquireTimeout: .seconds(1), maxRetries: 1, retryBaseDelay: .milliseconds(20)),
        retryTimeout: retryTimeout,
        readFromReplicas: readFromReplicas
    )
    let client = try RedisClusterClient(configuration: configuration)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await client.run() }
        do {
            let result = try await body(client)
            client.shutdown()
            try await group.waitForAll()
            return result
        } catch {
            client.shutdown()
            try await group.waitForAll()
            throw error
        }
    }
}

@Suite("Redis Cluster client", .serialized)
struct RedisClusterClientTests {
    @Test func commandsReachEverySlotAndMultiKeyCommandsAreSplitAndMergedInOrder() async throws {
        try await withRedisCluster { cluster in
            try await withClusterClient(cluster) { client in
                let keys = (0..<300).map { "key:\($0)" }
                for key in keys { try await client.set(key, value: "v-\(key)") }
                #expect(client.slotMap.coversAllSlots && client.slotMap.primaries.count == 3)
                // Every primary holds some of the keys.
                for node in try await cluster.runningPrimaries() {
                    let size = try await RedisCluster.reply(node, ["DBSIZE"]).int ?? 0
                    #expect(size > 50)
                }
                let values = try await client.mget(keys + ["missing"])
                #expect(values.map { $0.map { String(buffer: $0) } } == keys.map { "v-\($0)" } + [nil])
                #expect(try await client.exists(keys) == 300)
                try await client.mset(keys.prefix(10).map { (key: $0, value: "new") })
                #expect(try await client.getString("key:3") == "new")
                #expect(try await client.unlink(Array(keys.prefix(100))) == 100)
                #expect(try await client.del(Array(keys)) == 200)
                #expect(try await client.ping() == "PONG")
            }
        }
    }

    /// Every node serves TLS only, also between nodes: discovery reports TLS ports (`tls-port`), and every pool
    /// verifies its node's certificate against the cluster's CA.
    @Test func aTLSOnlyClusterIsDiscoveredAndServedOverVerifiedTLS() async throws {
        try await withRedisCluster(.init(tls: true)) { cluster in
            try await withClusterClient(cluster) { client in
                let keys = (0..<60).map { "tls:\($0)" }
                for key in keys { try await client.set(key, value: key) }
                #expect(client.slotMap.coversAllSlots && client.slotMap.primaries.count == 3)
                let values = try await client.mget(keys)
                #expect(values.map { $0.map { String(buffer: $0) } } == keys)
                for node in try await cluster.runningPrimaries() {
                    #expect(try await RedisCluster.reply(node, ["DBSIZE"]).int ?? 0 > 5)
                }
            }
            // Without the cluster's CA the handshake fails: the nodes' certificates are not trusted.
            var untrusted = RedisConnectionConfiguration(host: "127.0.0.1", port: cluster.nodes[0].port)
            untrusted.tls = try .verifying()
            untrusted.connectTimeout = .seconds(2)
            let error = await #expect(throws: RedisError.self) { try await RedisConnection.connect(configuration: untrusted) }
            #expect(error?.code == .tls)
        }
    }

    @Test func hashTagsKeepKeysTogetherForScriptsAndScanSeesEveryPrimary() async throws {
        try await withRedisCluster { cluster in
            try await withClusterClient(cluster) { client in
                try await client.set("{user1}.a", value: "1")
                try await client.set("{user1}.b", value: "2")
                let reply = try await client.send(
                    "EVAL", "return redis.call('GET', KEYS[1]) .. redis.call('GET', KEYS[2])", 2, "{user1}.a", "{user1}.b"
                )
                #expect(reply.string == "12")
                let crossSlot = await #expect(throws: RedisError.self) {
                    try await client.send("EVAL", "return 1", 2, "a", "b")
                }
                #expect(crossSlot?.code == .invalidConfiguration)
                for index in 0..<200 { try await client.set("scan:\(index)", value: "x") }
                let found = Locked<Set<String>>([])
                try await client.scan(match: "scan:*", count: 50) { keys in
                    found.withLock { $0.formUnion(keys.map { String(buffer: $0) }) }
                }
                #expect(found.withLock { $0.count } == 200)
            }
        }
    }

    @Test func selectAndScanAreRefusedWithAClearError() async throws {
        try await withRedisCluster { cluster in
            try await withClusterClient(cluster) { client in
                let select = await #expect(throws: RedisError.self) { try await client.send("SELECT", 1) }
                #expect(select?.code == .invalidConfiguration && select?.message.contains("database 0") == true)
                let scan = await #expect(throws: RedisError.self) { _ = try await client.scan(cursor: 0) }
                #expect(scan?.code == .invalidConfiguration)
            }
        }
    }

    @Test func reshardingDuringAWorkloadFailsNoOperationAndLosesNoWrite() async throws {
        try await withRedisCluster { cluster in
            try await withClusterClient(cluster) { client in
                // Keys in two slots (hash tags), written and read by 4 workers while both slots move.
                let tags = ["a", "b"]
                let slots = tags.map { ClusterHashSlot.slot(of: $0) }
                let keys = (0..<40).map { "{\(tags[$0 % 2])}:\($0)" }
                for key in keys { try await client.set(key, value: "0") }
                let stop = Locked(false)
                let failures = Locked<[String]>([])
                let lastWritten = Locked<[String: Int]>([:])
                let mapBefore = client.slotMap
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<4 {
                        group.addTask {
                            var round = 0
                            while !stop.withLock({ $0 }) {
                                round += 1
                                for key in keys.enumerated().filter({ $0.offset % 4 == worker }).map(\.element) {
                                    do {
                                        try await client.set(key, value: String(round))
                                        lastWritten.withLock { $0[key] = round }
                                        let read = try await client.getString(key)
                                        if read != String(round) { failures.withLock { $0.append("\(key): read \(read ?? "nil") after writing \(round)") } }
                                        _ = try await client.mget([key, keys[0], keys[1]])
                                    } catch {
                                        failures.withLock { $0.append("\(key): \(error)") }
                                        // A failure that returns at once must not spin and starve the other tasks.
                                        try await Task.sleep(for: .milliseconds(10))
                                    }
                                }
                            }
                        }
                    }
                    for slot in slots {
                        let owner = try await cluster.primary(owningSlot: slot)
                        let target = try await cluster.runningPrimaries().first { $0.port != owner.port }!
                        try await cluster.migrateSlot(slot, to: target, batchSize: 3, pause: .milliseconds(50))
                    }
                    try await Task.sleep(for: .milliseconds(300))
                    stop.withLock { $0 = true }
                    try await group.waitForAll()
                }
                #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0.prefix(5) })")
                // The workload met both kinds of redirection.
                #expect(client.redirections.moved > 0 && client.redirections.ask > 0, "\(client.redirections)")
                for slot in slots {
                    #expect(client.slotMap.primary(forSlot: slot) != mapBefore.primary(forSlot: slot))
                }
                for (key, round) in lastWritten.withLock({ $0 }) {
                    #expect(try await client.getString(key) == String(round))
                }
            }
        }
    }

    @Test func aNodeAddedUnderLoadGetsSlotsAndAPoolWithoutAFailedOperation() async throws {
        try await withRedisCluster { cluster in
            try await withClusterClient(cluster) { client in
                let keys = (0..<60).map { "grow:\($0)" }
                for key in keys { try await client.set(key, value: "0") }
                let stop = Locked(false)
                let failures = Locked<[String]>([])
                let added = try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<3 {
                        group.addTask {
                            var round = 0
                            while !stop.withLock({ $0 }) {
                                round += 1
                                for key in keys.enumerated().filter({ $0.offset % 3 == worker }).map(\.element) {
                                    do {
                                        try await client.set(key, value: String(round))
                                        if try await client.getString(key) != String(round) { failures.withLock { $0.append("\(key): stale read") } }
                                        if failures.withLock({ $0.count }) > 20 { stop.withLock { $0 = true } }
                                    } catch {
                                        failures.withLock { $0.append("\(key): \(error)") }
                                        // A failure that returns at once must not spin and starve the other tasks.
                                        try await Task.sleep(for: .milliseconds(10))
                                    }
                                }
                            }
                        }
                    }
                    let added = try await cluster.addPrimary()
                    // Rebalance a little: the slots of a third of the keys move to the new node.
                    let slots = Set(keys.prefix(20).map { ClusterHashSlot.slot(of: $0) })
                    for slot in slots { try await cluster.migrateSlot(slot, to: added, batchSize: 5) }
                    try await Task.sleep(for: .milliseconds(200))
                    stop.withLock { $0 = true }
                    try await group.waitForAll()
                    return added
                }
                #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0.prefix(5) })")
                let newNode = ClusterNodeAddress(host: added.host, port: added.port)
                try await client.refreshTopology()
                #expect(client.slotMap.primaries.contains(newNode) && client.slotMap.primaries.count == 4)
                #expect(client.slotMap.primary(forSlot: ClusterHashSlot.slot(of: keys[0])) == newNode)
                let size = try await RedisCluster.reply(added, ["DBSIZE"]).int ?? 0
                #expect(size >= 20)
            }
        }
    }

    @Test func aKilledPrimaryFailsOperationsOnlyDuringTheFailoverAndNoCallHangs() async throws {
        try await withRedisCluster(.init(replicasPerPrimary: 1)) { cluster in
            try await withClusterClient(cluster, retryTimeout: .seconds(1), commandTimeout: .seconds(1)) { client in
                let keys = (0..<30).map { "failover:\($0)" }
                for key in keys { try await client.set(key, value: "0") }
                let victim = try await cluster.primary(owningSlot: ClusterHashSlot.slot(of: keys[0]))
                let stop = Locked(false)
                let longestCall = Locked(Duration.zero)
                let errors = Locked<[ContinuousClock.Instant]>([])
                let successesAfterKill = Locked(0)
                let killedAt = Locked<ContinuousClock.Instant?>(nil)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<3 {
                        group.addTask {
                            var round = 0
                            while !stop.withLock({ $0 }) {
                                round += 1
                                for key in keys.enumerated().filter({ $0.offset % 3 == worker }).map(\.element) {
                                    let start = ContinuousClock.now
                                    do {
                                        try await client.set(key, value: String(round))
                                        _ = try await client.get(key)
                                        if killedAt.withLock({ $0 }) != nil { successesAfterKill.withLock { $0 += 1 } }
                                    } catch {
                                        errors.withLock { $0.append(.now) }
                                        try await Task.sleep(for: .milliseconds(10))
                                    }
                                    let elapsed = ContinuousClock.now - start
                                    longestCall.withLock { $0 = max($0, elapsed) }
                                }
                                try await Task.sleep(for: .milliseconds(5))
                            }
                        }
                    }
                    try await Task.sleep(for: .milliseconds(200))
                    killedAt.withLock { $0 = .now }
                    await victim.kill()
                    try await cluster.waitUntilHealthy(timeout: .seconds(20))
                    let healedAt = ContinuousClock.now
                    try await Task.sleep(for: .seconds(1))
                    stop.withLock { $0 = true }
                    try await group.waitForAll()
                    // No error after the cluster healed (plus one retry's worth of slack), and every call bounded.
                    let late = errors.withLock { $0.filter { $0 > healedAt + .milliseconds(500) } }
                    #expect(late.isEmpty, "\(late.count) errors after the failover completed")
                }
                // Two commands, each at most retryTimeout plus one attempt (acquire + command timeouts).
                #expect(longestCall.withLock { $0 } < .seconds(7))
                #expect(successesAfterKill.withLock { $0 } > 0)
                for key in keys { _ = try await client.get(key) }
            }
        }
    }
}

@Suite("Redis Cluster client life cycle", .serialized)
struct RedisClusterClientLifeCycleTests {
    @Test func aShutDownClientFailsAtOnceInsteadOfRetrying() async throws {
        try await withRedisCluster { cluster in
            let client = try await withClusterClient(cluster, retryTimeout: .seconds(30)) { client in
                try await client.set("k", value: "v")
                return client
            }
            let start = ContinuousClock.now
            let error = await #expect(throws: RedisError.self) { try await client.get("k") }
            #expect(error?.code == .poolClosed)
            #expect(ContinuousClock.now - start < .seconds(5))
        }
    }

    @Test func aSeedThatIsNoClusterNodeIsReportedClearly() async throws {
        let server = try await RedisServer.shared()
        let client = try RedisClusterClient(configuration: .init(url: server.url))
        let error = await #expect(throws: RedisError.self) { try await client.refreshTopology() }
        #expect(error?.code == .connectFailed && error?.message.contains("cluster-enabled") == true)
        client.shutdown()
    }
}
