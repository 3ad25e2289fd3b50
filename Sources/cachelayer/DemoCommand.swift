import CacheSimulation
import CommonSupport
import Synchronization
import ArgumentParser
import CacheLayer
import Foundation
import Logging

/// `cachelayer demo` (the default): the cache API in a few calls, then a cache-aside workload over a slow
/// data source on the embedded memory backend.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Show the cache API, then run a cache-aside workload on the memory backend (the default command)."
    )

    /// The demo's workload defaults: 50,000 products, Zipf 1.0, 32 clients, a 1 MiB cache (so that it evicts).
    enum Defaults: WorkloadDefaults {
        static let keys = 50_000
        static let zipf = 1.0
        static let concurrency = 32
        static let maxMemory = 1024 * 1024
    }

    @OptionGroup var workload: WorkloadOptions<Defaults>

    @Option(help: "Requests in the cache-aside workload.")
    var requests: Int = 200_000

    @Option(name: .customLong("source-latency-ms"), help: "Simulated latency of the data source per load, in milliseconds.")
    var sourceLatency: Double = 2

    func validate() throws {
        guard requests >= 1 else { throw ValidationError("--requests must be at least 1.") }
        guard sourceLatency >= 0, sourceLatency <= 10_000 else { throw ValidationError("--source-latency-ms must be between 0 and 10000.") }
    }

    func run() async throws {
        try await showTheAPI()
        try await runCacheAside()
    }

    /// A product record, as a service would cache it.
    struct Product: Codable, Sendable, Equatable {
        var id: Int
        var name: String
        var priceCents: Int
        var tags: [String]
    }

    private func showTheAPI() async throws {
        print("== The cache API (memory backend) ==")
        var configuration = CacheConfiguration.development
        configuration.name = "demo-api"
        let cache = try await makeCache(configuration)
        let product = Product(id: 1, name: "Teapot", priceCents: 1999, tags: ["kitchen", "tea"])
        try await cache.set("product:1", to: product, ttl: .seconds(60))
        let cached = try await cache.get("product:1", as: Product.self)
        print("set product:1 then get  -> \(cached.map { "\($0.name), \($0.priceCents) cents" } ?? "nil")")
        print("exists product:1        -> \(try await cache.exists("product:1"))")
        try await cache.delete("product:1")
        print("after delete, get       -> \(String(describing: try await cache.get("product:1", as: Product.self)))")
        do {
            _ = try await cache.require("product:1", as: Product.self)
        } catch let error as CacheError {
            print("require on a miss       -> \(error.code): \(error.message)")
        }
        try await cache.set("visits", to: 42)
        do {
            _ = try await cache.get("visits", as: Product.self)
        } catch let error as CacheError {
            print("get with the wrong type -> \(error.code): \(error.message)")
        }
        try await cache.close()
        print()
    }

    private func runCacheAside() async throws {
        print("== Cache-aside over a slow data source ==")
        print("""
            \(requests.grouped) requests from \(workload.concurrency) clients for \(workload.keys.grouped) products (Zipf \(workload.zipf)); \
            a miss loads from a source taking \(sourceLatency) ms; cache limit \(formatBytes(workload.maxMemory)).
            """)
        var configuration = CacheConfiguration.development
        configuration.name = "demo"
        configuration.maxMemorySize = workload.maxMemory
        configuration.defaultTTL = .seconds(300)
        let cache = try await makeCache(configuration, logger: Logger(label: "cachelayer.demo"))

        let sampler = ZipfSampler(count: workload.keys, exponent: workload.zipf)
        let latency = Duration.microseconds(Int64(sourceLatency * 1000))
        let counter = RequestCounter()
        let clock = ContinuousClock()
        let start = clock.now
        let progress = ProgressLine(total: requests, label: "requests")
        var requestLatency = LatencyRecorder()
        let perWorker = requests / workload.concurrency
        let remainder = requests % workload.concurrency

        try await withThrowingTaskGroup(of: LatencyRecorder?.self) { group in
            for worker in 0..<workload.concurrency {
                let share = perWorker + (worker < remainder ? 1 : 0)
                group.addTask {
                    var random = SplitMix64(seed: 42 + UInt64(worker))
                    var recorder = LatencyRecorder()
                    for _ in 0..<share {
                        let id = sampler.next(using: &random)
                        let key = "product:\(id)"
                        let began = clock.now
                        if try await cache.get(key, as: Product.self) == nil {
                            let product = try await loadProduct(id: id, latency: latency)
                            try await cache.set(key, to: product)
                        }
                        recorder.record(clock.now - began)
                        counter.increment()
                    }
                    return recorder
                }
            }
            group.addTask {
                while true {
                    let done = counter.value
                    let stats = await cache.stats()
                    let seconds = Double((clock.now - start) / .milliseconds(1)) / 1000
                    progress.update(
                        done: done,
                        detail: "\(done.grouped)/\(requests.grouped)  hit rate \(String(format: "%.1f", stats.hitRate * 100))%  \(Int(Double(done) / max(seconds, 0.001)).grouped) req/s"
                    )
                    if done >= requests { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                progress.finish()
                return nil
            }
            for try await recorder in group {
                if let recorder { requestLatency.merge(recorder) }
            }
        }
        let elapsed = clock.now - start
        let stats = await cache.stats()
        try await cache.close()

        let seconds = Double(elapsed / .milliseconds(1)) / 1000
        print()
        print(statsTable(stats))
        print()
        var table = TextTable("measure", "value")
        table.add("elapsed", String(format: "%.2f s", seconds))
        table.add("throughput", "\(Int(Double(requests) / seconds).grouped) requests/s")
        table.add("source loads", stats.misses.grouped)
        table.add("p50 latency", String(format: "%.4f ms", requestLatency.milliseconds(atPercentile: 50)))
        table.add("p99 latency", String(format: "%.4f ms", requestLatency.milliseconds(atPercentile: 99)))
        print(table.render())
        print()
        print("Without the cache every request would wait \(sourceLatency) ms for the source; \(String(format: "%.1f", stats.hitRate * 100))% of them did not.")
    }

    private func loadProduct(id: Int, latency: Duration) async throws -> Product {
        if latency > .zero { try await Task.sleep(for: latency) }
        return Product(id: id, name: "Product \(id)", priceCents: 100 + id % 10_000, tags: ["catalog", "page-\(id / 100)"])
    }
}

/// Counts completed requests across workers for the progress line.
final class RequestCounter: Sendable {
    private let count = Atomic<Int>(0)

    func increment() { count.add(1, ordering: .relaxed) }

    var value: Int { count.load(ordering: .relaxed) }
}
