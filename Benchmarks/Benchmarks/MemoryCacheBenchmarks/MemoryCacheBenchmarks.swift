import Benchmark
import CacheLayer

/// Keys and a fixed random access order shared by every benchmark.
let keyCount = 10_000
let keys = (0..<keyCount).map { "key:\($0)" }
let value = String(repeating: "v", count: 100)
let accessOrder: [Int] = {
    var state: UInt64 = 0x5EED
    return (0..<65_536).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int((state >> 33) % UInt64(keyCount))
    }
}()

enum Operation: String, CaseIterable {
    case get
    case set
    case mixed = "mixed 90/10"
}

/// Runs `iterations` operations split over `threads` child tasks.
func drive(_ store: some BenchStore, operation: Operation, iterations: Int, threads: Int) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for thread in 0..<threads {
            group.addTask {
                var position = thread * 7919
                for _ in 0..<(iterations / threads) {
                    position &+= 1
                    let key = keys[accessOrder[position & 65_535]]
                    switch operation {
                    case .get:
                        blackHole(try await store.get(key))
                    case .set:
                        try await store.set(key, value)
                    case .mixed:
                        if position % 10 == 0 {
                            try await store.set(key, value)
                        } else {
                            blackHole(try await store.get(key))
                        }
                    }
                }
            }
        }
        try await group.waitForAll()
    }
}

func fill(_ store: some BenchStore) async throws {
    for key in keys { try await store.set(key, value) }
}

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
        for operation in Operation.allCases {
            for (name, make) in stores {
                Benchmark("\(operation.rawValue) \(threads)t \(name)") { benchmark in
                    let store = try make()
                    try await fill(store)
                    benchmark.startMeasurement()
                    try await drive(store, operation: operation, iterations: benchmark.scaledIterations.count, threads: threads)
                    benchmark.stopMeasurement()
                }
            }
        }
    }
}
