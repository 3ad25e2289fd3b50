import CommonSupport
import Synchronization

/// Tasks waiting for a key to change, woken by the near cache's invalidations: the waiters of a distributed single
/// flight on a ``TwoLevelCache`` learn at once that the lock's owner stored the value (its `SET` comes back as an
/// invalidation, through tracking or the backplane), instead of sleeping out their poll interval.
///
/// A wake-up only shortens a wait that is bounded anyway, so a missed one (TTL-only coherence, no invalidation) costs
/// latency, never correctness. Invalidations pay one atomic load while nobody waits.
final class KeyChangeWaiters: Sendable {
    private let waiters = Locked<[String: [UInt64: CheckedContinuation<Bool, Never>]]>([:])
    private let count = Atomic<Int>(0)
    private let ids = Atomic<UInt64>(0)

    init() {}

    /// How many tasks wait now.
    var waitingCount: Int { count.load(ordering: .relaxed) }

    /// Why a wait ended.
    enum Outcome: Sendable, Equatable {
        case changed
        case timedOut
        case cancelled
    }

    /// Returns when `key` changes (or anything is flushed), after `timeout`, or when the task is cancelled.
    @discardableResult
    func wait(for key: String, atMost timeout: Duration) async -> Outcome {
        let id = ids.add(1, ordering: .relaxed).newValue
        return await withTaskGroup(of: Outcome.self) { group in
            group.addTask {
                let changed = await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                        let registered = self.waiters.withLock { waiters -> Bool in
                            // Checked under the lock the cancellation handler also takes (as in SingleFlight).
                            if Task.isCancelled { return false }
                            waiters[key, default: [:]][id] = continuation
                            self.count.add(1, ordering: .relaxed)
                            return true
                        }
                        if !registered { continuation.resume(returning: false) }
                    }
                } onCancel: {
                    self.remove(key, id)?.resume(returning: false)
                }
                return changed ? .changed : .cancelled
            }
            group.addTask {
                do {
                    try await Task.sleep(for: timeout)
                    return .timedOut
                } catch {
                    return .cancelled
                }
            }
            let outcome = await group.next() ?? .cancelled
            group.cancelAll()
            return outcome
        }
    }

    /// Wakes the waiters of `keys`.
    func changed<Keys: Sequence<String>>(_ keys: Keys) {
        guard count.load(ordering: .relaxed) > 0 else { return }
        let woken = waiters.withLock { waiters -> [CheckedContinuation<Bool, Never>] in
            var woken: [CheckedContinuation<Bool, Never>] = []
            for key in keys {
                if let entries = waiters.removeValue(forKey: key) { woken.append(contentsOf: entries.values) }
            }
            count.add(-woken.count, ordering: .relaxed)
            return woken
        }
        for continuation in woken { continuation.resume(returning: true) }
    }

    /// Wakes every waiter.
    func changedAll() {
        guard count.load(ordering: .relaxed) > 0 else { return }
        let woken = waiters.withLock { waiters -> [CheckedContinuation<Bool, Never>] in
            defer { waiters = [:] }
            let woken = waiters.values.flatMap(\.values)
            count.add(-woken.count, ordering: .relaxed)
            return woken
        }
        for continuation in woken { continuation.resume(returning: true) }
    }

    private func remove(_ key: String, _ id: UInt64) -> CheckedContinuation<Bool, Never>? {
        waiters.withLock { waiters in
            guard let continuation = waiters[key]?.removeValue(forKey: id) else { return nil }
            if waiters[key]?.isEmpty == true { waiters[key] = nil }
            count.add(-1, ordering: .relaxed)
            return continuation
        }
    }
}
