import ArgumentParser
import CacheLayer
import Foundation
import Synchronization

/// `cachelayer compare`: the memory cache against a bare locked dictionary and an actor dictionary, in one run.
///
/// The same workload as the `Benchmarks` package (10,000 keys, 100-byte string values, a fixed pseudo-random
/// access order, get / set / 90/10 mixed at 1 and 2 threads) without its dependencies, so it builds with the
/// tool. Rounds interleave the stores so that background load hits them alike; the table shows each
/// configuration's best round (the least disturbed) and the median.
struct CompareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare the memory cache with a locked dictionary and an actor dictionary.",
        discussion: """
            Prints operations per second of MemoryCache, Mutex<[String: any Sendable]> and an actor-wrapped \
            dictionary for get, set and 90/10 mixed at 1 and 2 threads, and MemoryCache's ratio to each.
            """
    )

    @Option(help: "Operations per measured round and configuration.")
    var operations: Int = 2_000_000

    @Option(help: "Measured rounds; the best and the median are shown.")
    var rounds: Int = 5

    @Option(help: "Thread counts to measure, comma separated.")
    var threads: String = "1,2"

    @Option(help: "Operations to measure, comma separated: get, set, mixed.")
    var ops: String = "get,set,mixed"

    @Option(help: "Stores to measure, comma separated: memory, mutex, actor.")
    var stores: String = "memory,mutex,actor"

    @Flag(name: .customLong("latency-sampling"), help: "Enable the memory cache's latency sampler, as a running metrics reporter does.")
    var latencySampling = false

    func validate() throws {
        guard operations >= 1000 else { throw ValidationError("--operations must be at least 1000.") }
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1.") }
    }

    func run() async throws {
        let threadCounts = threads.split(separator: ",").compactMap { Int($0) }
        let operationKinds = try ops.split(separator: ",").map { name in
            guard let kind = CompareOperation(rawValue: String(name)) else { throw ValidationError("Unknown operation \(name).") }
            return kind
        }
        let storeNames = stores.split(separator: ",").map(String.init)
        var makers: [(String, @Sendable () async throws -> any CompareStore)] = []
        for name in storeNames {
            switch name {
            case "memory":
                let sampling = latencySampling
                makers.append(("MemoryCache", { try await MemoryCacheCompareStore(latencySampling: sampling) }))
            case "mutex": makers.append(("Mutex<Dictionary>", { MutexDictionaryCompareStore() }))
            case "actor": makers.append(("actor Dictionary", { ActorDictionaryCompareStore() }))
            default: throw ValidationError("Unknown store \(name).")
            }
        }

        struct Configuration: Hashable { var operation: CompareOperation; var threads: Int; var store: String }
        var samples: [Configuration: [Double]] = [:]
        for round in 0..<rounds {
            writeStandardError("round \(round + 1)/\(rounds)\r")
            for threadCount in threadCounts {
                for operation in operationKinds {
                    for (name, make) in makers {
                        let store = try await make()
                        try await compareFill(store)
                        let start = ContinuousClock.now
                        try await compareDrive(store, operation: operation, iterations: operations, threads: threadCount)
                        let elapsed = ContinuousClock.now - start
                        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                        samples[Configuration(operation: operation, threads: threadCount, store: name), default: []]
                            .append(Double(operations) / seconds)
                        try await store.close()
                    }
                }
            }
        }
        writeStandardError("\n")

        var table = TextTable("operation", "threads", "store", "best Mops/s", "median Mops/s", "best ratio", "median ratio")
        for threadCount in threadCounts {
            for operation in operationKinds {
                let memory = samples[Configuration(operation: operation, threads: threadCount, store: "MemoryCache")] ?? []
                for (name, _) in makers {
                    let values = samples[Configuration(operation: operation, threads: threadCount, store: name)] ?? []
                    let best = values.max() ?? 0
                    let median = values.sorted()[values.count / 2]
                    var bestRatio = "", medianRatio = ""
                    if !memory.isEmpty && name != "MemoryCache" {
                        bestRatio = String(format: "%.2fx", (memory.max() ?? 0) / best)
                        medianRatio = String(format: "%.2fx", memory.sorted()[memory.count / 2] / median)
                    }
                    table.add(
                        operation.rawValue, "\(threadCount)", name, String(format: "%.2f", best / 1e6),
                        String(format: "%.2f", median / 1e6), bestRatio, medianRatio
                    )
                }
            }
        }
        print("\(operations.grouped) operations per round, \(rounds) rounds, 10,000 keys, 100-byte values")
        print("ratio: MemoryCache's throughput divided by the store's\n")
        print(table.render())
    }
}

enum CompareOperation: String, Hashable, Sendable {
    case get, set, mixed
}

private let compareKeyCount = 10_000
private let compareKeys = (0..<compareKeyCount).map { "key:\($0)" }
private let compareValue = String(repeating: "v", count: 100)
private let compareAccessOrder: [Int] = {
    var state: UInt64 = 0x5EED
    return (0..<65_536).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int((state >> 33) % UInt64(compareKeyCount))
    }
}()

private func compareFill(_ store: some CompareStore) async throws {
    for key in compareKeys { try await store.set(key, compareValue) }
}

@inline(never)
private func compareConsume(_ value: String?) {
    if let value, value.isEmpty { writeStandardError("") }
}

private func compareDrive(_ store: any CompareStore, operation: CompareOperation, iterations: Int, threads: Int) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for thread in 0..<threads {
            group.addTask {
                try await store.run(operation: operation, iterations: iterations / threads, start: thread * 7919)
            }
        }
        try await group.waitForAll()
    }
}

/// The operations every compared store offers.
protocol CompareStore: Sendable {
    func get(_ key: String) async throws -> String?
    func set(_ key: String, _ value: String) async throws
    func close() async throws
}

extension CompareStore {
    /// The measured loop, specialised per store (called through the existential once per thread).
    func run(operation: CompareOperation, iterations: Int, start: Int) async throws {
        var position = start
        for _ in 0..<iterations {
            position &+= 1
            let key = compareKeys[compareAccessOrder[position & 65_535]]
            switch operation {
            case .get:
                compareConsume(try await get(key))
            case .set:
                try await set(key, compareValue)
            case .mixed:
                if position % 10 == 0 {
                    try await set(key, compareValue)
                } else {
                    compareConsume(try await get(key))
                }
            }
        }
    }

    func close() async throws {}
}

/// The memory cache configured as in the Benchmarks package: 1 GiB, one-hour default TTL, default strategy.
struct MemoryCacheCompareStore: CompareStore {
    let cache: MemoryCache
    /// Runs a ``CacheMetricsReporter`` (no-op metrics backend) so the latency sampler is on.
    let reporter: Task<Void, Never>?

    init(latencySampling: Bool) async throws {
        var configuration = CacheConfiguration()
        configuration.maxMemorySize = 1 << 30
        configuration.defaultTTL = .seconds(3600)
        let cache = try MemoryCache(configuration: configuration)
        self.cache = cache
        if latencySampling {
            let reporter = CacheMetricsReporter(cache: cache, interval: .seconds(1))
            self.reporter = Task { try? await reporter.run() }
            while !cache.patterns.latency.isEnabled { await Task.yield() }
        } else {
            reporter = nil
        }
    }

    func get(_ key: String) async throws -> String? { try await cache.get(key, as: String.self) }
    func set(_ key: String, _ value: String) async throws { try await cache.set(key, to: value) }
    func close() async throws {
        if let reporter {
            reporter.cancel()
            await reporter.value
        }
        try await cache.close()
    }
}

/// The floor: one dictionary behind one lock, no TTL, no limit, no stats.
final class MutexDictionaryCompareStore: CompareStore {
    private let storage = Mutex<[String: any Sendable]>([:])

    func get(_ key: String) async throws -> String? { storage.withLock { $0[key] } as? String }
    func set(_ key: String, _ value: String) async throws { storage.withLock { $0[key] = value } }
}

/// A dictionary in an actor: every call is an actor hop.
actor ActorDictionaryCompareStore: CompareStore {
    private var storage: [String: any Sendable] = [:]

    func get(_ key: String) async throws -> String? { storage[key] as? String }
    func set(_ key: String, _ value: String) async throws { storage[key] = value }
}
