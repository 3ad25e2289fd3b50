import CommonSupport
import ArgumentParser
import CacheLayer
import Foundation
import NIOCore
import NIOPosix
import RedisClient
import Synchronization

/// `cachelayer redis-bench`: SET and GET throughput and latency of the RedisClient library, measured the
/// way `redis-benchmark -t set,get` does (N clients, each with up to P pipelined requests in flight).
struct RedisBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis-bench",
        abstract: "Benchmarks RedisClient with SET and GET, like `redis-benchmark -t set,get`."
    )

    @Option(help: "Server URL: redis://[user:password@]host:port/db or rediss://…")
    var url = "redis://127.0.0.1:6379"

    @Option(help: "Parallel connections (redis-benchmark -c).")
    var clients = 50

    @Option(help: "Requests pipelined per round trip on each connection (redis-benchmark -P).")
    var pipeline = 1

    @Option(help: "Requests per operation (redis-benchmark -n).")
    var requests = 100_000

    @Option(name: .customLong("value-size"), help: "SET value size in bytes (redis-benchmark -d).")
    var valueSize = 100

    @Option(help: "Random keys `key:NNNNNNNNNNNN` drawn from 0..<keyspace (redis-benchmark -r); 0 uses one key.")
    var keyspace = 100_000

    @Flag(help: "--url names a seed node of a Redis Cluster: commands go through RedisClusterClient (a pool of --clients connections per primary), routed by hash slot.")
    var cluster = false

    @Flag(help: "Print {\"operations\": [{\"name\", \"operations\", \"ops_per_sec\", \"p50_ms\", \"p99_ms\"}]} only.")
    var json = false

    /// The `--json` output.
    struct Report: Encodable {
        var operations: [OperationSummary]
    }

    func validate() throws {
        guard clients > 0, pipeline > 0, requests > 0, valueSize >= 0, keyspace >= 0 else {
            throw ValidationError("--clients, --pipeline and --requests must be positive; sizes non-negative")
        }
    }

    func run() async throws {
        var configuration = try RedisConnectionConfiguration(url: url)
        configuration.commandTimeout = .seconds(60)
        let value = [UInt8](repeating: UInt8(ascii: "x"), count: valueSize)
        var results: [OperationSummary] = []
        if cluster {
            let client = try RedisClusterClient(
                configuration: RedisClusterConfiguration(
                    seeds: ["\(configuration.host):\(configuration.port)"], connection: configuration,
                    pool: RedisConnectionPoolConfiguration(maxConnections: clients, minIdleConnections: clients)
                )
            )
            let running = Task { await client.run() }
            defer { client.shutdown() }
            let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
            try await client.refreshTopology()
            for name in ["SET", "GET"] {
                results.append(
                    // Each client runs on one of the event loops the pools' connections use, and the pools lease it an
                    // idle connection of that loop when there is one: most commands need no thread hop.
                    try await self.measure(
                        name: name, clients: clients, executor: { EventLoopTaskExecutor(loops[$0 % loops.count]) }, value: value
                    ) { _, commands in
                        if commands.count == 1 {
                            _ = try await client.execute(commands[0])
                        } else {
                            for result in try await client.pipeline(commands) { _ = try result.get() }
                        }
                    }
                )
            }
            client.shutdown()
            await running.value
        } else {
            var opened: [RedisConnection] = []
            for _ in 0..<clients { opened.append(try await RedisConnection.connect(configuration: configuration)) }
            let connections = opened
            defer { for connection in connections { Task { await connection.close() } } }
            for name in ["SET", "GET"] {
                results.append(
                    // Each client runs on its connection's event loop: no thread hop per request.
                    try await self.measure(
                        name: name, clients: clients, executor: { EventLoopTaskExecutor(connections[$0].eventLoop) }, value: value
                    ) { index, commands in
                        if commands.count == 1 {
                            _ = try await connections[index].execute(commands[0])
                        } else {
                            for result in try await connections[index].pipeline(commands) { _ = try result.get() }
                        }
                    }
                )
            }
        }
        if json {
            print(try jsonLine(Report(operations: results)))
        } else {
            for result in results {
                print(
                    "\(result.name): \(String(format: "%.2f", result.opsPerSec)) requests per second, "
                        + "p50=\(String(format: "%.3f", result.p50Ms)) msec, p99=\(String(format: "%.3f", result.p99Ms)) msec"
                )
            }
        }
    }

    private func measure(
        name: String,
        clients: Int,
        executor: (Int) -> (any TaskExecutor)?,
        value: [UInt8],
        send: @escaping @Sendable (Int, [RedisCommand]) async throws -> Void
    ) async throws -> OperationSummary {
        let issued = Counter()
        let total = self.requests
        let pipeline = self.pipeline
        let keyspace = self.keyspace
        let isSet = name == "SET"
        let start = ContinuousClock.now
        let latencies = try await withThrowingTaskGroup(of: LatencyRecorder.self) { group in
            for index in 0..<clients {
                group.addTask(executorPreference: executor(index)) {
                    var generator = SplitMix64(seed: UInt64(index) &* 0x9E37_79B9_7F4A_7C15 &+ 1)
                    // A histogram, as redis-benchmark keeps: no per-request allocation or sort to skew the CPU figures.
                    var latencies = LatencyRecorder()
                    var commands: [RedisCommand] = []
                    commands.reserveCapacity(pipeline)
                    var key = Array("key:000000000000".utf8)
                    while true {
                        let claimed = issued.value.add(pipeline, ordering: .relaxed).oldValue
                        if claimed >= total { break }
                        let count = min(pipeline, total - claimed)
                        commands.removeAll(keepingCapacity: true)
                        for _ in 0..<count {
                            Self.fillKey(&key, keyspace: keyspace, generator: &generator)
                            commands.append(isSet ? .set(key, value: value) : .get(key))
                        }
                        let sent = ContinuousClock.now
                        try await send(index, commands)
                        latencies.record(ContinuousClock.now - sent, operations: count)
                    }
                    return latencies
                }
            }
            var all = LatencyRecorder()
            for try await part in group { all.merge(part) }
            return all
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return OperationSummary(name: name, recorder: latencies, seconds: seconds)
    }

    /// Writes a random 12-digit key number into `key:NNNNNNNNNNNN`, as redis-benchmark's `-r` does.
    private static func fillKey(_ key: inout [UInt8], keyspace: Int, generator: inout SplitMix64) {
        guard keyspace > 0 else { return }
        var n = Int(generator.next() % UInt64(keyspace))
        var index = key.count - 1
        while index >= 4 {
            key[index] = UInt8(ascii: "0") + UInt8(n % 10)
            n /= 10
            index -= 1
        }
    }

    /// Requests claimed so far, shared by the client tasks.
    final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }
}
