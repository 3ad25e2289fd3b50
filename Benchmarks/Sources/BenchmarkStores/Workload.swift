/// The workload every comparison runs: 10,000 keys, 100-byte string values and a fixed pseudo-random access
/// order, with get, set or 90/10 mixed operations spread over a number of child tasks.
public enum Workload {
    public static let keyCount = 10_000
    public static let keys = (0..<keyCount).map { "key:\($0)" }
    public static let value = String(repeating: "v", count: 100)
    public static let accessOrder: [Int] = {
        var state: UInt64 = 0x5EED
        return (0..<65_536).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(keyCount))
        }
    }()

    public enum Operation: String, CaseIterable, Sendable {
        case get
        case set
        case mixed = "mixed 90/10"
    }

    /// Stores every key, so that reads hit and writes overwrite.
    @inlinable
    public static func fill(_ store: some BenchStore) async throws {
        for key in keys { try await store.set(key, value) }
    }

    /// Runs `iterations` operations split over `threads` child tasks; `consume` receives every value read.
    @inlinable
    public static func drive<Store: BenchStore>(
        _ store: Store, operation: Operation, iterations: Int, threads: Int, consume: @escaping @Sendable (String?) -> Void
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for thread in 0..<threads {
                group.addTask {
                    try await run(store, operation: operation, iterations: iterations / threads, start: thread * 7919, consume: consume)
                }
            }
            try await group.waitForAll()
        }
    }

    /// One task's loop: every tenth position of the access order is a write in the mixed workload.
    @inlinable
    static func run<Store: BenchStore>(
        _ store: Store, operation: Operation, iterations: Int, start: Int, consume: (String?) -> Void
    ) async throws {
        var position = start
        for _ in 0..<iterations {
            position &+= 1
            let key = keys[accessOrder[position & 65_535]]
            switch operation {
            case .get:
                consume(try await store.get(key))
            case .set:
                try await store.set(key, value)
            case .mixed:
                if position % 10 == 0 {
                    try await store.set(key, value)
                } else {
                    consume(try await store.get(key))
                }
            }
        }
    }
}
