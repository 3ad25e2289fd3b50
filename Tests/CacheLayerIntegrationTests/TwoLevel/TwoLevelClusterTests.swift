@testable import CacheLayer
import CommonSupport
import Foundation
import RedisClient
import RedisTestSupport
import Testing

/// The two-level cache on real local Redis Clusters: several instances in this process over one namespace whose keys
/// live on every primary, kept coherent by one tracking connection per node (or the pub/sub backplane on any node),
/// through a primary's death and its replica's promotion.
///
/// Waits are bound to a name before `#expect` (see `TwoLevelCacheTests`).
@Suite("TwoLevelCache on a Redis Cluster", .serialized)
struct TwoLevelClusterTests {
    /// An instance on `cluster` under `namespace` with the given coherence, returned once L1 may be filled.
    /// `role` names its connections (`CLIENT LIST`).
    static func instance(
        _ cluster: RedisCluster, namespace: String, coherence: NearCacheConfiguration.Coherence, role: String
    ) async throws -> TwoLevelCache {
        var configuration = cluster.cacheConfiguration(namespace: namespace)
        configuration.name = "tl-\(role)-\(namespace.suffix(8))"
        configuration.poolSize = 4
        configuration.maxIdleConnections = 4
        configuration.nearCache = NearCacheConfiguration(
            maxMemorySize: 4 * 1024 * 1024, maxTTL: .seconds(300), coherence: coherence, trackingPingInterval: .milliseconds(200)
        )
        return try await TwoLevelCache.connect(configuration: configuration, logger: quietLogger)
    }

    static func nearValue(_ cache: TwoLevelCache, _ key: String) throws -> String? {
        try cache.near.memory.peekValue(key)?.value as? String
    }

    /// `count` keys for each running primary of `cluster`, by the slot of their namespaced name.
    static func keysOnEveryPrimary(_ cluster: RedisCluster, namespace: String, count: Int) async throws -> [Int: [String]] {
        var byPort: [Int: [String]] = [:]
        let primaries = try await cluster.runningPrimaries().count
        var index = 0
        while byPort.count < primaries || byPort.values.contains(where: { $0.count < count }) {
            let key = "item:\(index)"
            index += 1
            let owner = try await cluster.primary(owningSlot: ClusterHashSlot.slot(of: "\(namespace):\(key)")).port
            if byPort[owner, default: []].count < count { byPort[owner, default: []].append(key) }
        }
        return byPort
    }

    /// The client names connected to `node` (`CLIENT LIST`).
    static func clientNames(on node: RedisServer) async throws -> [String] {
        let list = try await RedisCluster.command(node, ["CLIENT", "LIST"])
        return list.split(separator: "\n").compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("name=") }.map { String($0.dropFirst(5)) }
        }
    }

    /// Writes `value` to every key on `writer`; returns once `reader` reads it for every key, and checks that the
    /// reader never reads an older value after it read this one, and that its L1 then holds it.
    static func write(_ value: String, to keys: [String], on writer: TwoLevelCache, seenBy reader: TwoLevelCache) async throws {
        for key in keys { try await writer.set(key, to: value, ttl: .seconds(120)) }
        for key in keys {
            var sawNew = false
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                let read = try await reader.get(key, as: String.self)
                if read == value { sawNew = true } else { #expect(!sawNew, "\(key): read \(read ?? "nil") after \(value)") }
                if sawNew, try Self.nearValue(reader, key) == value { break }
                try await Task.sleep(for: .milliseconds(2))
            }
            let inL1 = try Self.nearValue(reader, key)
            #expect(sawNew && inL1 == value, "\(key) never read as \(value) from L1")
        }
    }

    @Test(arguments: [NearCacheConfiguration.Coherence.tracking, .pubSub])
    func writesOfOneInstanceReachTheOthersL1ForKeysOnEveryPrimary(coherence: NearCacheConfiguration.Coherence) async throws {
        let cluster = try await RedisCluster.shared()
        let namespace = "tl-\(UUID().uuidString.prefix(8))"
        let reader = try await Self.instance(cluster, namespace: namespace, coherence: coherence, role: "reader")
        let writer = try await Self.instance(cluster, namespace: namespace, coherence: coherence, role: "writer")
        let byPrimary = try await Self.keysOnEveryPrimary(cluster, namespace: namespace, count: 4)
        #expect(byPrimary.count == 3)
        let keys = byPrimary.values.flatMap { $0 }
        if coherence == .tracking {
            // One tracking connection per primary, each on its own node.
            for node in try await cluster.runningPrimaries() {
                let names = try await Self.clientNames(on: node)
                for cache in [reader, writer] {
                    #expect(names.filter { $0 == "cachelayer-\(cache.redis.configuration.name)-tracking" }.count == 1, "\(node.port): \(names)")
                }
            }
        }
        try await Self.write("v1", to: keys, on: writer, seenBy: reader)
        for round in 2...4 {
            try await Self.write("v\(round)", to: keys, on: writer, seenBy: reader)
        }
        // Settled: L1 serves them.
        let nearHits = reader.nearCacheStatistics.nearHits
        for key in keys { #expect(try await reader.get(key, as: String.self) == "v4") }
        #expect(reader.nearCacheStatistics.nearHits == nearHits + UInt64(keys.count))
        #expect(reader.nearCacheStatistics.trackingSetUps == (coherence == .tracking ? 3 : 1))
        try await reader.close()
        try await writer.close()
    }

    @Test func aCoherenceRunOverEveryPrimaryReadsNoStaleValue() async throws {
        let cluster = try await RedisCluster.shared()
        let namespace = "tl-run-\(UUID().uuidString.prefix(8))"
        let a = try await Self.instance(cluster, namespace: namespace, coherence: .tracking, role: "a")
        let b = try await Self.instance(cluster, namespace: namespace, coherence: .tracking, role: "b")
        let keys = try await Self.keysOnEveryPrimary(cluster, namespace: namespace, count: 3).values.flatMap { $0 }
        let rounds = 60
        // Each instance writes increasing versions of its half of the keys and reads all of them; a version read
        // must never be older than one read before (a stale L1 entry would be), on either instance.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (owner, cache) in [a, b].enumerated() {
                let mine = keys.enumerated().filter { $0.offset % 2 == owner }.map(\.element)
                group.addTask {
                    for round in 1...rounds {
                        for key in mine { try await cache.set(key, to: round, ttl: .seconds(120)) }
                        try await Task.sleep(for: .milliseconds(1))
                    }
                }
                group.addTask {
                    var seen: [String: Int] = [:]
                    for _ in 0..<(rounds * 3) {
                        for key in keys {
                            let version = try await cache.get(key, as: Int.self) ?? 0
                            #expect(version >= seen[key, default: 0], "\(key): read \(version) after \(seen[key, default: 0])")
                            seen[key] = max(seen[key, default: 0], version)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        // Settled: both read the last version of every key, from L1.
        for cache in [a, b] {
            for key in keys {
                let settled = try await eventually { try await cache.get(key, as: Int.self) == rounds }
                #expect(settled, "\(key)")
            }
            #expect(cache.nearCacheStatistics.nearHits > 0)
        }
        try await a.close()
        try await b.close()
    }

    @Test(arguments: [NearCacheConfiguration.Coherence.tracking, .pubSub])
    func killingAPrimaryEmptiesL1AndCoherenceFollowsTheFailover(coherence: NearCacheConfiguration.Coherence) async throws {
        try await withRedisCluster(.init(primaries: 3, replicasPerPrimary: 1)) { cluster in
            let namespace = "tl-failover"
            let reader = try await Self.instance(cluster, namespace: namespace, coherence: coherence, role: "reader")
            let writer = try await Self.instance(cluster, namespace: namespace, coherence: coherence, role: "writer")
            let byPrimary = try await Self.keysOnEveryPrimary(cluster, namespace: namespace, count: 3)
            let keys = byPrimary.values.flatMap { $0 }
            try await Self.write("v1", to: keys, on: writer, seenBy: reader)
            // The victim: with tracking, any primary; with pub/sub, the one the reader's subscriber is on.
            var victim = try await cluster.primary(owningSlot: ClusterHashSlot.slot(of: "\(namespace):\(keys[0])"))
            if coherence == .pubSub {
                for node in try await cluster.runningPrimaries()
                where try await Self.clientNames(on: node).contains("cachelayer-\(reader.redis.configuration.name)-backplane") {
                    victim = node
                }
            }
            let flushes = reader.nearCacheStatistics.flushes
            await victim.kill()
            let emptied = await eventually(timeout: .seconds(10)) {
                reader.nearCacheStatistics.flushes > flushes && keys.allSatisfy { (try? Self.nearValue(reader, $0)) == .some(nil) }
            }
            #expect(emptied, "L1 is emptied when the connection to a primary is lost")
            try await cluster.waitUntilHealthy(timeout: .seconds(30))
            let coherent = await eventually(timeout: .seconds(20)) { reader.nearCacheStatistics.isCoherent }
            #expect(coherent, "coherence comes back once the replica is promoted")
            // Writes on every primary, the promoted one included, reach the reader's L1 again.
            let moved = try await Self.keysOnEveryPrimary(cluster, namespace: namespace, count: 3)
            #expect(moved[victim.port] == nil)
            try await Self.write("v2", to: moved.values.flatMap { $0 }, on: writer, seenBy: reader)
            try await reader.close()
            try await writer.close()
        }
    }

    @Test func aNodeAddedAndGivenSlotsIsTrackedBeforeItsKeysFillL1() async throws {
        try await withRedisCluster(.init(primaries: 3)) { cluster in
            let namespace = "tl-added"
            let reader = try await Self.instance(cluster, namespace: namespace, coherence: .tracking, role: "reader")
            let writer = try await Self.instance(cluster, namespace: namespace, coherence: .tracking, role: "writer")
            let key = "moving"
            try await Self.write("v1", to: [key], on: writer, seenBy: reader)
            let setUps = reader.nearCacheStatistics.trackingSetUps
            let added = try await cluster.addPrimary()
            try await cluster.migrateSlot(ClusterHashSlot.slot(of: "\(namespace):\(key)"), to: added)
            // The key now lives on the new node: the reader meets MOVED, tracks the new node, and sees every write there.
            for round in 2...4 {
                try await Self.write("v\(round)", to: [key], on: writer, seenBy: reader)
            }
            #expect(reader.nearCacheStatistics.trackingSetUps == setUps + 1, "one more node tracked")
            let names = try await Self.clientNames(on: added)
            #expect(names.contains("cachelayer-\(reader.redis.configuration.name)-tracking"), "\(names)")
            try await reader.close()
            try await writer.close()
        }
    }
}
