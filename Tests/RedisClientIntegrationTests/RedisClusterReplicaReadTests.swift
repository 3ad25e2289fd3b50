import NIOCore
import RedisClient
import RedisTestSupport
import Testing

/// `RedisClusterConfiguration.readFromReplicas` on real local clusters with one replica per primary: where reads go
/// (each node's `INFO commandstats`), that replicas eventually see every write, and what happens when the map is stale
/// or the replicas are gone.
@Suite("Redis Cluster client reading from replicas", .serialized)
struct RedisClusterReplicaReadTests {
    /// How many times `node` ran `command` since its statistics were reset.
    static func calls(_ node: RedisServer, _ command: String) async throws -> Int {
        let stats = try await RedisCluster.command(node, ["INFO", "commandstats"])
        guard let line = stats.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_\(command):calls=") }) else { return 0 }
        return Int(line.dropFirst("cmdstat_\(command):calls=".count).prefix { $0.isNumber }) ?? 0
    }

    static func resetStats(_ cluster: RedisCluster) async throws {
        for node in cluster.nodes where node.pid != nil { _ = try await RedisCluster.reply(node, ["CONFIG", "RESETSTAT"]) }
    }

    static func replicas(_ cluster: RedisCluster) async throws -> [RedisServer] {
        let primaries = Set(try await cluster.runningPrimaries().map(\.port))
        return cluster.nodes.filter { $0.pid != nil && !primaries.contains($0.port) }
    }

    @Test func readsGoToReplicasOnlyWhenAskedAndReplicasEventuallySeeEveryWrite() async throws {
        try await withRedisCluster(.init(primaries: 3, replicasPerPrimary: 1)) { cluster in
            let primaries = try await cluster.runningPrimaries()
            let replicas = try await Self.replicas(cluster)
            #expect(replicas.count == 3)
            let keys = (0..<60).map { "key:\($0)" }
            // Off (the default): every read goes to a primary.
            try await withClusterClient(cluster) { client in
                for key in keys { try await client.set(key, value: "v1") }
                try await Self.resetStats(cluster)
                for key in keys { #expect(try await client.getString(key) == "v1") }
                #expect(try await client.mget(keys).allSatisfy { $0.map { String(buffer: $0) } == "v1" })
                #expect(client.replicaPoolCount == 0)
            }
            for replica in replicas {
                let gets = try await Self.calls(replica, "get")
                let mgets = try await Self.calls(replica, "mget")
                #expect(gets == 0 && mgets == 0, "replica \(replica.port)")
            }
            var primaryGets = 0
            for primary in primaries { primaryGets += try await Self.calls(primary, "get") }
            #expect(primaryGets == keys.count)
            // On: reads go to the replicas, and see each write once it is replicated.
            try await withClusterClient(cluster, readFromReplicas: true) { client in
                for key in keys { try await client.set(key, value: "v2") }
                try await Self.resetStats(cluster)
                for key in keys {
                    var value: String?
                    try await eventually { value = try await client.getString(key); return value == "v2" }
                    #expect(value == "v2", "\(key)")
                }
                #expect(try await client.mget(keys).allSatisfy { $0.map { String(buffer: $0) } == "v2" })
                #expect(client.replicaPoolCount == 3)
            }
            var replicaGets = 0
            for replica in replicas {
                let gets = try await Self.calls(replica, "get")
                let mgets = try await Self.calls(replica, "mget")
                #expect(gets > 0 && mgets > 0, "replica \(replica.port)")
                replicaGets += gets
            }
            #expect(replicaGets >= keys.count)
            for primary in primaries { #expect(try await Self.calls(primary, "mget") == 0, "primary \(primary.port)") }
        }
    }

    @Test func aReplicaReadFollowsMovedAndFallsBackToThePrimaryWithoutReplicas() async throws {
        try await withRedisCluster(.init(primaries: 3, replicasPerPrimary: 1)) { cluster in
            try await withClusterClient(cluster, readFromReplicas: true) { client in
                let keys = (0..<30).map { "key:\($0)" }
                for key in keys { try await client.set(key, value: "v-\(key)") }
                var value: String?
                try await eventually { value = try await client.getString("key:0"); return value == "v-key:0" }
                #expect(value == "v-key:0")
                // The slot moves to another primary behind the client's back: the old owner's replica answers MOVED.
                let slot = ClusterHashSlot.slot(of: "key:0")
                let source = try await cluster.primary(owningSlot: slot)
                let target = try #require(try await cluster.runningPrimaries().first { $0.port != source.port })
                try await cluster.migrateSlot(slot, to: target)
                try await cluster.waitUntilHealthy()
                try await eventually { value = try await client.getString("key:0"); return value == "v-key:0" }
                #expect(value == "v-key:0")
                #expect(client.redirections.moved > 0)
                // Without replicas, every read still succeeds, on the primaries.
                for replica in try await Self.replicas(cluster) { await replica.kill() }
                for key in keys { #expect(try await client.getString(key) == "v-\(key)") }
                #expect(try await client.mget(keys).map { $0.map { String(buffer: $0) } } == keys.map { "v-\($0)" })
            }
        }
    }
}
