import CommonSupport
import Synchronization

/// Which L1 misses of a ``TwoLevelCache`` may share one read of Redis: those of the same key, value type and fill-gate
/// ``NearCacheFillGate/Stamp``.
///
/// Without it, every task that misses a hot key reads Redis itself: right after a write of a hot key (which removes it
/// from L1, and whose echo refuses the fills of reads already in flight), dozens of tasks pay a round trip each for the
/// same value, and Redis's work grows with the concurrency.
///
/// Why sharing cannot return a value older than a read of one's own would: a task joins a read only when its stamp
/// equals the one the read took before sending its command, so between the two stamps no invalidation of the key's
/// stripe and no flush was applied here. Whatever a joining task must see had therefore been applied before the read
/// took its stamp, hence before its command was sent, and Redis answered it after: this instance's own writes
/// (``TwoLevelCache/set(_:to:ttl:)`` removes the key from L1, advancing the stripe's generation, before it returns) and
/// every invalidation delivered so far. A task arriving after any such change carries another stamp and starts a read
/// of its own. The shared read fills L1 under the gate's usual check.
struct NearCacheMissFlight: Hashable, Sendable {
    let key: String
    /// Tasks asking for other types decode the bytes differently, so they read on their own.
    let valueType: ObjectIdentifier
    let stamp: NearCacheFillGate.Stamp
}

/// The reads of Redis in flight for L1 misses, by ``NearCacheMissFlight``: the first miss reads, the others with the
/// same key, type and stamp wait for its result.
///
/// Lighter than ``SingleFlight``, which runs each operation in a task of its own: here the first miss reads in its
/// own task and the others wait on a continuation, so a miss nobody shares costs two lock acquisitions. A waiter is
/// not cancellable (the read it waits for is bounded by the command timeout); when the shared read fails (its task
/// was cancelled, or Redis failed), each waiter reads on its own rather than inherit another task's error.
final class NearCacheMissFlights: Sendable {
    private let flights = Locked<[NearCacheMissFlight: [CheckedContinuation<(any Sendable)?, Never>]]>([:])
    private let sharedReads = Atomic<UInt64>(0)

    init() {}

    /// Misses that took the result of another task's read.
    var coalesced: UInt64 { sharedReads.load(ordering: .relaxed) }

    /// Misses waiting for another task's read now; for tests.
    var waitingCount: Int { flights.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    /// The result of `read`, or of the read already in flight for `flight`.
    func value<Value: Sendable>(_ flight: NearCacheMissFlight, read: () async throws -> Value?) async throws -> Value? {
        let leads = flights.withLock { flights -> Bool in
            guard flights[flight] == nil else { return false }
            flights[flight] = []
            return true
        }
        guard leads else {
            let shared = await withCheckedContinuation { (continuation: CheckedContinuation<(any Sendable)?, Never>) in
                let waits = flights.withLock { flights -> Bool in
                    guard flights[flight] != nil else { return false }
                    flights[flight]?.append(continuation)
                    return true
                }
                // The read ended between the two looks: read on our own.
                if !waits { continuation.resume(returning: nil) }
            }
            if case .success(let value)? = shared as? Result<Value?, any Error> {
                sharedReads.add(1, ordering: .relaxed)
                return value
            }
            return try await read()
        }
        let result: Result<Value?, any Error>
        do {
            result = .success(try await read())
        } catch {
            result = .failure(error)
        }
        // Out of the table before the waiters wake: a miss arriving from now on starts a read of its own.
        let waiters = flights.withLock { $0.removeValue(forKey: flight) ?? [] }
        for waiter in waiters { waiter.resume(returning: result) }
        return try result.get()
    }
}
