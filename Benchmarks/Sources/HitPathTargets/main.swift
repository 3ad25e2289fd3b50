import BenchmarkStores
import CHeapStatistics
import CacheLayer
import Foundation
import Synchronization

// The four hit-path targets of the memory cache, measured side by side in one run:
//   swift run -c release HitPathTargets [rounds] [operations per round] [entries]
// Throughput rounds interleave the stores so that background load hits them alike; the table shows the best
// and the median round. Memory is the heap in use (malloc's own count, so freed memory does not blur it)
// after filling each store, per entry.

heap_statistics_use_one_arena()
let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let rounds = arguments.count > 0 ? arguments[0] : 5
let operations = arguments.count > 1 ? arguments[1] : 2_000_000
let entries = arguments.count > 2 ? arguments[2] : 100_000

@inline(never)
func consume(_ value: String?) {
    if let value, value.isEmpty { print("", terminator: "") }
}

// MARK: Throughput

struct Case: Hashable {
    var operation: Workload.Operation
    var threads: Int
    var store: String
}

let stores: [(String, @Sendable () throws -> any BenchStore)] = [
    ("MemoryCache", { try MemoryCacheStore() }),
    ("Mutex<Dictionary>", { LockedDictionaryStore() }),
    ("Hummingbird", { HummingbirdPersistStore() }),
]
let cases: [(Workload.Operation, Int)] = [(.get, 1), (.mixed, 2)]

func opsPerSecond(_ store: some BenchStore, operation: Workload.Operation, threads: Int) async throws -> Double {
    try await Workload.fill(store)
    let start = ContinuousClock.now
    try await Workload.drive(store, operation: operation, iterations: operations, threads: threads, consume: { consume($0) })
    let elapsed = ContinuousClock.now - start
    return Double(operations) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

/// Operations per second of every case and store, one sample per round.
func measureThroughput() async throws -> [Case: [Double]] {
    var samples: [Case: [Double]] = [:]
    for round in 0..<rounds {
        FileHandle.standardError.write(Data("round \(round + 1)/\(rounds)\r".utf8))
        for (operation, threads) in cases {
            for (name, make) in stores {
                let store = try make()
                samples[Case(operation: operation, threads: threads, store: name), default: []]
                    .append(try await opsPerSecond(store, operation: operation, threads: threads))
            }
        }
    }
    FileHandle.standardError.write(Data("\n".utf8))
    return samples
}

let samples = try await measureThroughput()

func best(_ operation: Workload.Operation, _ threads: Int, _ store: String) -> Double {
    samples[Case(operation: operation, threads: threads, store: store)]!.max()!
}

func median(_ operation: Workload.Operation, _ threads: Int, _ store: String) -> Double {
    let values = samples[Case(operation: operation, threads: threads, store: store)]!.sorted()
    return values[values.count / 2]
}

// MARK: Memory

/// Bytes of heap in use, as malloc counts them (chunk overhead included, freed chunks not).
func heapInUse() -> Int { Int(heap_bytes_in_use()) }

/// A distinct 100-byte string per entry, so values do not share storage.
func value(_ index: Int) -> String {
    let digits = String(index)
    return String(repeating: "v", count: 100 - digits.utf8.count) + digits
}

/// Heap bytes per entry that `fill` leaves in use, with what it returns kept alive, and the entries it holds;
/// `release` then frees what `fill` made before the next measurement starts.
func bytesPerEntry(
    _ fill: () async throws -> (kept: Any, entries: Int), release: (Any) async throws -> Void = { _ in }
) async throws -> Double {
    let before = heapInUse()
    let (kept, count) = try await fill()
    let after = heapInUse()
    try await release(kept)
    return Double(after - before) / Double(count)
}

/// Keeps `value` observable, so that the optimiser cannot drop what made it.
@inline(never)
func keep(_ value: Any) {
    if ObjectIdentifier(type(of: value)) == ObjectIdentifier(Never.self) { print(value) }
}

/// Closes a memory cache, which ends its sweeper task: the task holds the cache's storage until it ends.
func closeCache(_ kept: Any) async throws {
    try await (kept as! MemoryCache).close()
}

final class DictionaryBox: Sendable { let dictionary = Mutex<[String: any Sendable]>([:]) }

let dictionaryBytes = try await bytesPerEntry {
    let box = DictionaryBox()
    for index in 0..<entries { box.dictionary.withLock { $0["key:\(index)"] = value(index) } }
    // Read back, so that the optimiser cannot drop the stores.
    return (box, box.dictionary.withLock { $0.count })
} release: { keep($0) }

/// A memory cache with a one-hour default TTL filled with `inserted` distinct entries.
func memoryCacheBytes(maxMemorySize: Int, inserted: Int) async throws -> (bytes: Double, entries: Int) {
    var count = 0
    let bytes = try await bytesPerEntry {
        var configuration = CacheConfiguration()
        configuration.maxMemorySize = maxMemorySize
        configuration.defaultTTL = .seconds(3600)
        let cache = try MemoryCache(configuration: configuration)
        for index in 0..<inserted { try await cache.set("key:\(index)", to: value(index)) }
        // Some reads, as a cache gets: they feed the policy's frequency sketch.
        for index in stride(from: 0, to: inserted, by: 3) { _ = try await cache.get("key:\(index)", as: String.self) }
        count = await cache.stats().entryCount
        return (cache, count)
    } release: { try await closeCache($0) }
    return (bytes, count)
}

// Roomy: the limit is far away, so the policy's sketch and ghost list are not sized yet.
let roomy = try await memoryCacheBytes(maxMemorySize: 1 << 30, inserted: entries)
// Full: a limit of `entries` values (102 JSON bytes each) after twice as many inserts, so the sketch is sized
// and the ghost list remembers rejected newcomers: the policy at its largest.
let full = try await memoryCacheBytes(maxMemorySize: entries * 102, inserted: 2 * entries)

let hummingbirdBytes = try await bytesPerEntry {
    let driver = HummingbirdPersistStore()
    for index in 0..<entries { try await driver.set("key:\(index)", value(index)) }
    let last = try await driver.get("key:\(entries - 1)")
    precondition(last != nil, "the driver keeps what it was given")
    return (driver, entries)
} release: { keep($0) }

// MARK: Report

func format(_ value: Double) -> String { String(format: "%.2f", value / 1e6) }
func ratio(_ a: Double, _ b: Double) -> String { String(format: "%.2fx", a / b) }

print("\(rounds) rounds of \(operations) operations (10,000 keys, 100-byte values, 1-hour TTL); memory for \(entries) entries")
print("")
print("| target | MemoryCache | baseline | ratio best / median | goal |")
print("|---|---|---|---|---|")
for (operation, threads) in cases {
    for (baseline, goal) in [("Mutex<Dictionary>", "≥ 0.6x"), ("Hummingbird", "≥ 3x")] {
        let ours = (best(operation, threads, "MemoryCache"), median(operation, threads, "MemoryCache"))
        let theirs = (best(operation, threads, baseline), median(operation, threads, baseline))
        print(
            "| \(operation.rawValue), \(threads) thread\(threads == 1 ? "" : "s"), vs \(baseline) (Mops/s best / median) "
                + "| \(format(ours.0)) / \(format(ours.1)) | \(format(theirs.0)) / \(format(theirs.1)) "
                + "| \(ratio(ours.0, theirs.0)) / \(ratio(ours.1, theirs.1)) | \(goal) |"
        )
    }
}
print(
    "| memory per entry, limit far away (\(roomy.entries) entries) | \(String(format: "%.0f B", roomy.bytes)) "
        + "| \(String(format: "%.0f B", dictionaryBytes)) | \(ratio(roomy.bytes, dictionaryBytes)) | ≤ 1.3x |"
)
print(
    "| memory per entry, full, policy sized (\(full.entries) entries) | \(String(format: "%.0f B", full.bytes)) "
        + "| \(String(format: "%.0f B", dictionaryBytes)) | \(ratio(full.bytes, dictionaryBytes)) | ≤ 1.3x |"
)
print("| memory per entry, Hummingbird MemoryPersistDriver | \(String(format: "%.0f B", hummingbirdBytes)) | | | |")
