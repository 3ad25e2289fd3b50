import CacheLayer
import Foundation
import Synchronization

/// Resident set size of this process in bytes, from /proc/self/statm.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
}

let entries = 1_000_000
/// A distinct 100-byte string per entry, so values do not share storage.
func value(_ index: Int) -> String { "\(index)".padding(toLength: 100, withPad: "v", startingAt: 0) }

func measure(_ name: String, _ body: () async throws -> Any) async rethrows {
    let before = residentBytes()
    let kept = try await body()
    let after = residentBytes()
    let perEntry = Double(after - before) / Double(entries)
    print(String(format: "%@: %.0f bytes per entry (%d entries, 100-byte string values, RSS +%.1f MiB)", name, perEntry, entries, Double(after - before) / 1_048_576))
    withExtendedLifetime(kept) {}
}

var configuration = CacheConfiguration()
configuration.maxMemorySize = 1 << 31
configuration.defaultTTL = .seconds(3600)

await measure("Mutex<[String: any Sendable]>") {
    let storage = Mutex<[String: any Sendable]>([:])
    for index in 0..<entries {
        storage.withLock { $0["key:\(index)"] = value(index) }
    }
    return storage
}
try await measure("MemoryCache") {
    let cache = try MemoryCache(configuration: configuration)
    for index in 0..<entries {
        try await cache.set("key:\(index)", to: value(index))
    }
    let stats = await cache.stats()
    precondition(stats.entryCount == entries, "every entry must fit")
    return cache
}
