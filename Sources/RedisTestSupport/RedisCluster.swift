import CommonSupport
import Foundation
import RedisClient

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A real local Redis Cluster for tests: primaries (and optionally one replica each) on free loopback ports, made
/// with `redis-cli --cluster create`, torn down with SIGKILL so that stopping can never hang.
///
/// ```swift
/// try await withRedisCluster(.init(primaries: 3, replicasPerPrimary: 1)) { cluster in
///     // seeds: cluster.seeds ("127.0.0.1:port" each), cluster.url
///     await (try await cluster.primary(owningSlot: 0)).kill()   // SIGKILL; its replica takes over
/// }
/// ```
///
/// Each node runs with `--cluster-enabled yes --cluster-node-timeout 1000` (a failover takes 2–3 s) in a directory
/// of its own (its `nodes.conf`), and `--cluster-port` on a second free port, so node ports need not stay below
/// 55536 for the default bus port (port + 10000).
public final class RedisCluster: Sendable {
    /// How many nodes, and their timing.
    public struct Options: Sendable {
        /// Primaries (at least 3, as `redis-cli --cluster create` requires).
        public var primaries: Int
        /// Replicas of each primary: 0, or 1 for failover tests.
        public var replicasPerPrimary: Int
        /// `cluster-node-timeout` in milliseconds: how long a primary may be unreachable before failover.
        public var nodeTimeoutMilliseconds: Int
        /// Further `redis-server` arguments for every node.
        public var extraArguments: [String]
        /// Every node serves TLS only, on clients' connections, the cluster bus and replication (`tls-cluster`,
        /// `tls-replication`), with certificates of one throwaway CA: ``RedisCluster/caCertificatePath``.
        public var tls: Bool

        /// 3 primaries without replicas, node timeout 1 s, no TLS.
        public init(
            primaries: Int = 3, replicasPerPrimary: Int = 0, nodeTimeoutMilliseconds: Int = 1000, extraArguments: [String] = [],
            tls: Bool = false
        ) {
            self.primaries = primaries
            self.replicasPerPrimary = replicasPerPrimary
            self.nodeTimeoutMilliseconds = nodeTimeoutMilliseconds
            self.extraArguments = extraArguments
            self.tls = tls
        }
    }

    /// Every node, in creation order (the first ``Options/primaries`` were created as primaries; nodes added by
    /// ``addPrimary()`` come last).
    public var nodes: [RedisServer] { nodeList.withLock { $0 } }
    private let nodeList: Locked<[RedisServer]>
    /// The options the cluster was made with.
    public let options: Options

    /// `host:port` of every node, to use as seeds.
    public var seeds: [String] { nodes.map { "\($0.host):\($0.port)" } }

    /// `redis://host:port` of the first node: a seed URL.
    public var url: String { nodes[0].url }

    /// With ``Options/tls``: the directory of the CA that signed every node's certificate.
    private let authority: URL?

    /// With ``Options/tls``: the PEM file of the CA every node's certificate is signed by, for clients to verify with.
    public var caCertificatePath: String? { authority?.appendingPathComponent("ca.crt").path }

    private init(nodes: [RedisServer], options: Options, authority: URL?) {
        self.nodeList = Locked(nodes)
        self.options = options
        self.authority = authority
    }

    /// Starts the nodes, joins them into a cluster and waits until every node reports `cluster_state:ok`, agrees on
    /// the slots and (with replicas) every replica is in sync.
    public static func start(_ options: Options = .init()) async throws -> RedisCluster {
        guard options.primaries >= 3 else {
            throw RedisServer.Error(description: "a Redis Cluster needs at least 3 primaries, not \(options.primaries)")
        }
        let count = options.primaries * (1 + options.replicasPerPrimary)
        var nodes: [RedisServer] = []
        var authority: URL?
        do {
            if options.tls {
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent("redis-cluster-ca-\(UUID().uuidString)")
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                authority = directory
                try RedisServer.makeCertificateAuthority(in: directory)
            }
            for _ in 0..<count {
                nodes.append(try await Self.startNode(options, authority: authority).server)
            }
            let cluster = RedisCluster(nodes: nodes, options: options, authority: authority)
            try cluster.create()
            try await cluster.waitUntilHealthy(timeout: .seconds(30))
            return cluster
        } catch {
            await withTaskGroup(of: Void.self) { group in
                for node in nodes { group.addTask { await node.stop() } }
            }
            if let authority { try? FileManager.default.removeItem(at: authority) }
            throw error
        }
    }

    private static func startNode(_ options: Options, authority: URL?) async throws -> (server: RedisServer, busPort: Int) {
        let busPort = try RedisServer.freeLoopbackPort()
        let server = try await RedisServer.start(
            .init(
                tls: options.tls,
                extraArguments: [
                    "--cluster-enabled", "yes",
                    "--cluster-node-timeout", String(options.nodeTimeoutMilliseconds),
                    "--cluster-config-file", "nodes.conf",
                    "--cluster-port", String(busPort),
                ] + (options.tls ? ["--tls-cluster", "yes", "--tls-replication", "yes"] : []) + options.extraArguments,
                certificateAuthority: authority
            )
        )
        return (server, busPort)
    }

    /// Starts one more node, joins it to the cluster (`CLUSTER MEET`) as a primary without slots, and waits until every
    /// node knows it and it knows the slot map. Move slots to it with ``migrateSlot(_:to:batchSize:pause:)``.
    public func addPrimary() async throws -> RedisServer {
        let (server, busPort) = try await Self.startNode(options, authority: authority)
        self.nodeList.withLock { $0.append(server) }
        let seed = try await self.runningPrimaries().first { $0.port != server.port }!
        _ = try await Self.reply(seed, ["CLUSTER", "MEET", server.host, String(server.port), String(busPort)])
        let deadline = ContinuousClock.now + .seconds(20)
        let expected = self.nodes.filter { $0.pid != nil }.count
        while ContinuousClock.now < deadline {
            var everyoneKnows = true
            for node in self.nodes where node.pid != nil {
                let info = try await Self.command(node, ["CLUSTER", "INFO"])
                // The new node also needs the slot map (cluster_state:ok) before it can import slots.
                if !info.contains("cluster_known_nodes:\(expected)\r") || !info.contains("cluster_state:ok") { everyoneKnows = false }
            }
            if everyoneKnows { return server }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw RedisServer.Error(description: "the added node on port \(server.port) was not known to every node within 20 s")
    }

    /// Kills every node (SIGKILL) and removes their files.
    public func stop() async {
        await withTaskGroup(of: Void.self) { group in
            for node in nodes {
                group.addTask {
                    await node.kill()
                    await node.stop()
                }
            }
        }
        if let authority { try? FileManager.default.removeItem(at: authority) }
    }

    private func create() throws {
        let tls = caCertificatePath.map { ["--tls", "--cacert", $0] } ?? []
        let arguments = tls + ["--cluster", "create"] + seeds + [
            "--cluster-replicas", String(options.replicasPerPrimary), "--cluster-yes",
        ]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // redis-cli waits for the nodes to join without a limit of its own (for ever when they cannot reach each
        // other): `timeout` bounds it.
        process.arguments = ["timeout", "60", "redis-cli"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let text = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw RedisServer.Error(
                description: "redis-cli \(arguments.joined(separator: " ")) failed (\(process.terminationStatus)): "
                    + String(decoding: text, as: UTF8.self)
            )
        }
    }

    /// Waits until every running node says `cluster_state:ok`, knows the same number of nodes as the others, and
    /// every replica's link to its primary is up.
    public func waitUntilHealthy(timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        var last = ""
        while ContinuousClock.now < deadline {
            do {
                if try await self.isHealthy(report: &last) { return }
            } catch {
                last = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw RedisServer.Error(description: "the cluster did not become healthy within \(timeout): \(last)")
    }

    private func isHealthy(report: inout String) async throws -> Bool {
        let running = nodes.filter { $0.pid != nil }
        var slotViews: Set<String> = []
        for node in running {
            let info = try await Self.command(node, ["CLUSTER", "INFO"])
            guard info.contains("cluster_state:ok"), info.contains("cluster_slots_ok:16384") else {
                report = "node \(node.port): \(info)"
                return false
            }
            let replication = try await Self.command(node, ["INFO", "replication"])
            if replication.contains("role:slave"), !replication.contains("master_link_status:up") {
                report = "replica \(node.port) not in sync"
                return false
            }
            // Which primary owns which slot range, as this node sees it.
            let shards = try await Self.command(node, ["CLUSTER", "SLOTS"])
            slotViews.insert(shards)
        }
        if slotViews.count > 1 {
            report = "nodes disagree on the slot map"
            return false
        }
        return true
    }

    /// The node currently serving `slot` as primary.
    public func primary(owningSlot slot: Int) async throws -> RedisServer {
        for node in nodes where node.pid != nil {
            let reply = try await Self.reply(node, ["CLUSTER", "SLOTS"])
            for range in reply.array ?? [] {
                guard let parts = range.array, parts.count >= 3, let low = parts[0].int, let high = parts[1].int,
                    let owner = parts[2].array, owner.count >= 2, let port = owner[1].int
                else { continue }
                if (low...high).contains(slot), let server = nodes.first(where: { $0.port == port }) { return server }
            }
        }
        throw RedisServer.Error(description: "no running node serves slot \(slot)")
    }

    /// The cluster node id of `node` (`CLUSTER MYID`).
    public func nodeID(of node: RedisServer) async throws -> String {
        try await Self.command(node, ["CLUSTER", "MYID"])
    }

    /// Moves `slot` to `target` the way `redis-cli --cluster reshard` does: `CLUSTER SETSLOT … IMPORTING` on the
    /// target, `MIGRATING` on the owner, `MIGRATE … KEYS` in batches of `batchSize` (waiting `pause` between batches,
    /// so that clients meet `ASK` meanwhile), then `SETSLOT … NODE` on every primary (clients then meet `MOVED`).
    public func migrateSlot(_ slot: Int, to target: RedisServer, batchSize: Int = 10, pause: Duration = .zero) async throws {
        let source = try await self.primary(owningSlot: slot)
        guard source.port != target.port else { return }
        let sourceID = try await self.nodeID(of: source)
        let targetID = try await self.nodeID(of: target)
        _ = try await Self.reply(target, ["CLUSTER", "SETSLOT", String(slot), "IMPORTING", sourceID])
        _ = try await Self.reply(source, ["CLUSTER", "SETSLOT", String(slot), "MIGRATING", targetID])
        if pause > .zero { try await Task.sleep(for: pause) }
        while true {
            let keys = try await Self.reply(source, ["CLUSTER", "GETKEYSINSLOT", String(slot), String(batchSize)]).array?
                .compactMap(\.string) ?? []
            if keys.isEmpty { break }
            let migrate = ["MIGRATE", target.host, String(target.port), "", "0", "5000", "REPLACE", "KEYS"] + keys
            _ = try await Self.reply(source, migrate)
            if pause > .zero { try await Task.sleep(for: pause) }
        }
        // The target first, then the source, then the others, as redis-cli does.
        let primaries = try await self.runningPrimaries()
        for node in [target, source] + primaries.filter({ $0.port != target.port && $0.port != source.port }) {
            _ = try await Self.reply(node, ["CLUSTER", "SETSLOT", String(slot), "NODE", targetID])
        }
    }

    /// The running nodes that are primaries.
    public func runningPrimaries() async throws -> [RedisServer] {
        var primaries: [RedisServer] = []
        for node in nodes where node.pid != nil {
            if try await Self.command(node, ["ROLE"]).contains("master") { primaries.append(node) }
        }
        return primaries
    }

    /// Runs a command on one node and returns the reply.
    public static func reply(_ node: RedisServer, _ arguments: [String]) async throws -> RESPValue {
        var configuration = RedisConnectionConfiguration(host: node.host, port: node.port, connectTimeout: .seconds(2), commandTimeout: .seconds(5))
        if let caCertificatePath = node.caCertificatePath { configuration.tls = try .verifying(caCertificatePath: caCertificatePath) }
        // Closed once the reply is read, not in a detached task while the caller still reads it.
        return try await stopping(RedisConnection.connect(configuration: configuration), stop: { await $0.close() }) {
            try await $0.execute(RedisCommand(arguments))
        }
    }

    /// Runs a command on one node and returns its reply as text (arrays rendered with `description`).
    public static func command(_ node: RedisServer, _ arguments: [String]) async throws -> String {
        let reply = try await reply(node, arguments)
        return reply.string ?? "\(reply)"
    }
}

/// Starts a ``RedisCluster``, runs `body` with it and stops it afterwards, also when `body` throws.
public func withRedisCluster<T>(
    _ options: RedisCluster.Options = .init(),
    _ body: (RedisCluster) async throws -> T
) async throws -> T {
    try await stopping(RedisCluster.start(options), stop: { await $0.stop() }, body)
}

extension RedisCluster {
    /// One 3-primary cluster for the whole test process, started on first use and killed when the process exits: for
    /// suites that only need *a* cluster, each test in a namespace of its own. Tests that kill nodes or move slots
    /// start their own with ``start(_:)``.
    public static func shared() async throws -> RedisCluster {
        try await sharedCluster.value
    }
}

private let sharedCluster = Task<RedisCluster, any Error> {
    let cluster = try await RedisCluster.start()
    for node in cluster.nodes { ProcessExitCleanup.register(node) }
    return cluster
}
