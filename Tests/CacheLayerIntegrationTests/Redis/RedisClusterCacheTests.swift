@testable import CacheLayer
import CommonSupport
import Foundation
import RedisClient
import RedisTestSupport
import Testing

/// `RedisCache` on real local Redis Clusters: keys in every slot, batches across slots, whole-cache operations on
/// every primary, tags across slots, resharding and failover under load. (The pattern suites also run on a cluster:
/// `CacheUnderTest`'s "RedisCache on a cluster".)
@Suite("RedisCache on a Redis Cluster", .serialized)
struct RedisClusterCacheTests {
    /// How many keys under `prefix` each running primary holds.
    private func keysPerPrimary(_ cluster: RedisCluster, match pattern: String) async throws -> [Int] {
        var counts: [Int] = []
        for node in try await cluster.runningPrimaries() {
            var cursor = 0
            var count = 0
            repeat {
                let reply = try await RedisCluster.reply(node, ["SCAN", String(cursor), "MATCH", pattern, "COUNT", "1000"])
                cursor = reply.array?[0].int ?? 0
                count += reply.array?[1].array?.count ?? 0
            } while cursor != 0
            counts.append(count)
        }
        return counts
    }

    @Test func everyOperationWorksWithKeysSpreadOverEveryPrimary() async throws {
        let cluster = try await RedisCluster.shared()
        let namespace = "cluster-\(UUID().uuidString)"
        let cache = try await RedisCache.connect(configuration: cluster.cacheConfiguration(namespace: namespace, allSeeds: true), logger: quietLogger)
        let other = try await RedisCache.connect(configuration: cluster.cacheConfiguration(namespace: "\(namespace)-other"), logger: quietLogger)
        let keys = (0..<600).map { "user:\($0)" }
        try await cache.setMany(Dictionary(uniqueKeysWithValues: keys.map { ($0, $0.count) }), ttl: .seconds(600))
        try await other.set("kept", to: 1, ttl: .seconds(600))
        // Spread over all three primaries, and read back with one getMany across every slot.
        let counts = try await keysPerPrimary(cluster, match: "\(namespace):*")
        #expect(counts.count == 3 && counts.allSatisfy { $0 > 100 } && counts.reduce(0, +) == 600, "\(counts)")
        let values = try await cache.getMany(keys + ["absent"], as: Int.self)
        #expect(values.count == 600 && values["user:42"] == 7)
        // Hash-tagged keys share a slot, so one primary.
        try await cache.set("{cart:9}:items", to: 3, ttl: .seconds(600))
        try await cache.set("{cart:9}:total", to: 30, ttl: .seconds(600))
        #expect(ClusterHashSlot.slot(of: "\(namespace):{cart:9}:items") == ClusterHashSlot.slot(of: "\(namespace):{cart:9}:total"))
        #expect(try await cache.getMany(["{cart:9}:items", "{cart:9}:total"], as: Int.self) == ["{cart:9}:items": 3, "{cart:9}:total": 30])
        // Single-key operations.
        #expect(try await cache.setIfAbsent("user:1", to: 0, ttl: nil) == false)
        #expect(try await cache.ttl("user:1").map { $0 > .seconds(500) } == true)
        #expect(try await cache.getWithTTL("user:2", as: Int.self)?.value == 6)
        try await cache.delete("user:1")
        #expect(try await cache.exists("user:1") == false)
        try await cache.deleteMany(Array(keys.prefix(100)))
        #expect(try await cache.getMany(Array(keys.prefix(200)), as: Int.self).count == 100)
        // Prefix invalidation and clear() scan every primary and leave other namespaces alone.
        try await cache.invalidate(prefix: "user:1")
        #expect(try await cache.get("user:150", as: Int.self) == nil)
        #expect(try await cache.get("user:250", as: Int.self) == 8)
        try await cache.clear()
        #expect(try await keysPerPrimary(cluster, match: "\(namespace):*").reduce(0, +) == 0)
        #expect(try await other.get("kept", as: Int.self) == 1)
        #expect(cache.configuration.redisCluster)
        try await cache.close()
        try await other.close()
    }

    @Test func aTagWhoseMembersLiveInManySlotsIsInvalidatedEntirely() async throws {
        let cluster = try await RedisCluster.shared()
        let namespace = "cluster-tags-\(UUID().uuidString)"
        let cache = try await RedisCache.connect(configuration: cluster.cacheConfiguration(namespace: namespace), logger: quietLogger)
        let members = (0..<1500).map { "product:\($0)" }  // more than one UNLINK batch
        for key in members { try await cache.set(key, to: 1, ttl: .seconds(600), tags: ["catalog"]) }
        try await cache.set("untagged", to: 2, ttl: .seconds(600))
        #expect(Set(members.map { ClusterHashSlot.slot(of: "\(namespace):\($0)") }).count > 1000)
        try await cache.invalidate(tag: "catalog")
        #expect(try await cache.getMany(members, as: Int.self).isEmpty)
        #expect(try await cache.get("untagged", as: Int.self) == 2)
        #expect(try await keysPerPrimary(cluster, match: "\(namespace):__tag__:*").reduce(0, +) == 0)
        // A key tagged afterwards belongs to the tag again.
        try await cache.set("product:new", to: 3, ttl: .seconds(600), tags: ["catalog"])
        try await cache.invalidate(tag: "catalog")
        #expect(try await cache.get("product:new", as: Int.self) == nil)
        try await cache.close()
    }

    @Test func aCacheOnATLSOnlyClusterWorksAcrossEveryPrimary() async throws {
        try await withRedisCluster(.init(tls: true)) { cluster in
            let cache = try await RedisCache.connect(configuration: cluster.cacheConfiguration(namespace: "tls"), logger: quietLogger)
            let keys = (0..<90).map { "user:\($0)" }
            try await cache.setMany(Dictionary(uniqueKeysWithValues: keys.map { ($0, $0.count) }), ttl: .seconds(600))
            let counts = try await keysPerPrimary(cluster, match: "tls:*")
            #expect(counts.count == 3 && counts.allSatisfy { $0 > 10 }, "\(counts)")
            #expect(try await cache.getMany(keys, as: Int.self).count == 90)
            try await cache.clear()
            #expect(try await keysPerPrimary(cluster, match: "tls:*").reduce(0, +) == 0)
            try await cache.close()
        }
    }

    @Test func aClusterAddressThatIsNoClusterIsReportedAsUnavailable() async throws {
        let server = try await RedisServer.shared()
        var configuration = server.cacheConfiguration()
        configuration.redisCluster = true
        let error = await #expect(throws: CacheError.self) { try await RedisCache.connect(configuration: configuration, logger: quietLogger) }
        #expect(error?.code == .unavailable)
        #expect("\(error.map { "\($0)" } ?? "")".contains("cluster-enabled"))
    }

    @Test func reshardingDuringACacheWorkloadFailsNothingAndLosesNoWrite() async throws {
        try await withRedisCluster { cluster in
            let cache = try await RedisCache.connect(configuration: cluster.cacheConfiguration(namespace: "reshard", timeout: .seconds(5)), logger: quietLogger)
            // Keys of two hash tags, each in one slot, which both move during the workload.
            let tags = ["p", "q"]
            let keys = (0..<32).map { "{\(tags[$0 % 2])}:\($0)" }
            let slots = tags.map { ClusterHashSlot.slot(of: "reshard:{\($0)}") }
            #expect(ClusterHashSlot.slot(of: "reshard:\(keys[0])") == slots[0])
            let stop = Locked(false)
            let failures = Locked<[String]>([])
            let written = Locked<[String: Int]>([:])
            let operations = Locked(0)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        var round = 0
                        let mine = keys.enumerated().filter { $0.offset % 4 == worker }.map(\.element)
                        while !stop.withLock({ $0 }) {
                            round += 1
                            do {
                                try await cache.setMany(Dictionary(uniqueKeysWithValues: mine.map { ($0, round) }), ttl: .seconds(600))
                                written.withLock { for key in mine { $0[key] = round } }
                                let read = try await cache.getMany(mine, as: Int.self)
                                if read.count != mine.count || read.values.contains(where: { $0 != round }) {
                                    failures.withLock { $0.append("worker \(worker) round \(round): read \(read)") }
                                }
                                try await cache.set(mine[0], to: round, ttl: .seconds(600), tags: ["t\(worker)"])
                                _ = try await cache.get(mine[1], as: Int.self)
                                operations.withLock { $0 += 4 }
                            } catch {
                                failures.withLock { $0.append("worker \(worker) round \(round): \(error)") }
                                try await Task.sleep(for: .milliseconds(10))
                            }
                        }
                    }
                }
                for slot in slots {
                    let owner = try await cluster.primary(owningSlot: slot)
                    let target = try await cluster.runningPrimaries().first { $0.port != owner.port }!
                    try await cluster.migrateSlot(slot, to: target, batchSize: 2, pause: .milliseconds(40))
                }
                try await Task.sleep(for: .milliseconds(300))
                stop.withLock { $0 = true }
                try await group.waitForAll()
            }
            #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0.prefix(5) })")
            #expect(operations.withLock { $0 } > 40)
            let finalValues = try await cache.getMany(keys, as: Int.self)
            #expect(finalValues == written.withLock { $0 })
            guard case .cluster(let client) = cache.client else { Issue.record("not a cluster client"); return }
            #expect(client.redirections.moved > 0 && client.redirections.ask > 0, "\(client.redirections)")
            try await cache.close()
        }
    }

    @Test func aKilledPrimaryFailsCallsOnlyDuringFailoverNeverBeyondTheirTimeoutAndNeverWithFallback() async throws {
        try await withRedisCluster(.init(replicasPerPrimary: 1)) { cluster in
            let timeout = Duration.seconds(1)
            let plain = try await RedisCache.connect(configuration: cluster.cacheConfiguration(namespace: "failover", timeout: timeout), logger: quietLogger)
            var withFallback = cluster.cacheConfiguration(namespace: "failover-fb", timeout: timeout)
            withFallback.enableFallback = true
            let fallback = try await makeCache(withFallback, logger: quietLogger)
            let keys = (0..<24).map { "k\($0)" }
            let victimSlot = ClusterHashSlot.slot(of: "failover:k0")
            let victim = try await cluster.primary(owningSlot: victimSlot)
            let stop = Locked(false)
            let plainErrors = Locked<[ContinuousClock.Instant]>([])
            let fallbackErrors = Locked<[String]>([])
            let longest = Locked(Duration.zero)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, cache) in [plain, fallback, plain, fallback].enumerated() {
                    group.addTask {
                        var round = 0
                        while !stop.withLock({ $0 }) {
                            round += 1
                            for key in keys {
                                let start = ContinuousClock.now
                                do {
                                    try await cache.set(key, to: round, ttl: .seconds(600))
                                    _ = try await cache.get(key, as: Int.self)
                                } catch {
                                    if index % 2 == 0 { plainErrors.withLock { $0.append(.now) } }
                                    else { fallbackErrors.withLock { $0.append("\(error)") } }
                                    try await Task.sleep(for: .milliseconds(10))
                                }
                                let elapsed = ContinuousClock.now - start
                                longest.withLock { $0 = max($0, elapsed) }
                            }
                            try await Task.sleep(for: .milliseconds(5))
                        }
                    }
                }
                try await Task.sleep(for: .milliseconds(200))
                await victim.kill()
                try await cluster.waitUntilHealthy(timeout: .seconds(20))
                let healed = ContinuousClock.now
                try await Task.sleep(for: .seconds(1))
                stop.withLock { $0 = true }
                try await group.waitForAll()
                #expect(plainErrors.withLock { $0.filter { $0 > healed + .milliseconds(500) } }.isEmpty)
            }
            #expect(fallbackErrors.withLock { $0 }.isEmpty, "\(fallbackErrors.withLock { $0.prefix(3) })")
            // A set and a get, each within its retry budget (the timeout) plus one attempt (connect + command timeouts).
            #expect(longest.withLock { $0 } < timeout * 8, "\(longest.withLock { $0 })")
            for key in keys { _ = try await plain.get(key, as: Int.self) }
            try await plain.close()
            try await fallback.close()
        }
    }
}
