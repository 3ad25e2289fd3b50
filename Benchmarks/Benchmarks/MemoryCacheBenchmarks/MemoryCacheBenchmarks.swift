import Benchmark
import BenchmarkStores

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 1_000
    )

    let stores: [(String, @Sendable () throws -> any BenchStore)] = [
        ("MemoryCache", { try MemoryCacheStore() }),
        ("Mutex<Dictionary>", { LockedDictionaryStore() }),
        ("actor Dictionary", { ActorDictionaryStore() }),
        ("Hummingbird MemoryPersistDriver", { HummingbirdPersistStore() }),
    ]

    for threads in [1, 2] {
        for operation in Workload.Operation.allCases {
            for (name, make) in stores {
                Benchmark("\(operation.rawValue) \(threads)t \(name)") { benchmark in
                    let store = try make()
                    try await Workload.fill(store)
                    benchmark.startMeasurement()
                    try await Workload.drive(
                        store, operation: operation, iterations: benchmark.scaledIterations.count, threads: threads,
                        consume: { blackHole($0) }
                    )
                    benchmark.stopMeasurement()
                }
            }
        }
    }
}
