import CacheLayer
import CommonSupport
import Testing

/// Two cache instances each write increasing versions of their own keys and read every key in a loop, recording
/// every read of a version older than one the same instance returned before, and the newest acknowledged version of
/// each key. The fault tests run it while Redis is faulted and recovers.
final class NeverBackInTimeWorkload: Sendable {
    static let keys = [["a0", "a1", "a2"], ["b0", "b1", "b2"]]

    /// The newest version of each key whose write was acknowledged.
    let acknowledged = Locked<[String: Int]>([:])
    /// Reads that went back in time, described.
    let backwards = Locked<[String]>([])
    private let stopped = Locked(false)
    private let workers: Locked<[Task<Void, Never>]> = Locked([])

    /// Starts one worker per instance (two instances), each reading every key `readsPerWrite` times after each write.
    init(_ instances: [any Cache], readsPerWrite: Int) {
        let tasks = instances.indices.map { index in
            Task { [acknowledged, backwards, stopped] in
                let cache = instances[index]
                var returned: [String: Int] = [:]
                var version = 0
                while !stopped.withLock({ $0 }) {
                    version += 1
                    let key = Self.keys[index][version % 3]
                    do {
                        try await cache.set(key, to: version, ttl: .seconds(600))
                        acknowledged.withLock { $0[key] = max($0[key] ?? 0, version) }
                    } catch {}
                    for _ in 0..<readsPerWrite {
                        for key in Self.keys.joined() {
                            guard let value = try? await cache.get(key, as: Int.self) else { continue }
                            if value < returned[key] ?? 0 {
                                backwards.withLock { $0.append("instance \(index) read \(key) = \(value) after \(returned[key]!)") }
                            }
                            returned[key] = max(returned[key] ?? 0, value)
                        }
                    }
                    try? await Task.sleep(for: .milliseconds(2))
                }
            }
        }
        workers.withLock { $0 = tasks }
    }

    /// Stops the workers and waits for them.
    func stop() async {
        stopped.withLock { $0 = true }
        for worker in workers.withLock({ $0 }) { await worker.value }
    }

    /// After ``stop()``: no read went back in time, and every instance now reads the newest acknowledged version of
    /// every key (or a newer one whose write failed but was applied), or a miss.
    func expectNoReadWentBackAndEveryInstanceReadsTheNewest(_ instances: [any Cache]) async throws {
        #expect(backwards.withLock { $0 }.isEmpty, "\(backwards.withLock { $0.prefix(5) })")
        let newest = acknowledged.withLock { $0 }
        #expect(!newest.isEmpty)
        for cache in instances {
            for key in Self.keys.joined() {
                let value = try await cache.get(key, as: Int.self)
                // Newer than the newest acknowledged is fine: a write that failed (a timeout) may still have been applied.
                #expect(value == nil || value! >= newest[key] ?? 0, "\(key) = \(value.map(String.init) ?? "nil"), newest acknowledged \(newest[key] ?? 0)")
            }
        }
    }
}
