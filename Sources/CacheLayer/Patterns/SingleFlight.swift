import CommonSupport
import Synchronization

/// Coalesces concurrent loads of the same key: while a load for a key runs, later callers for that key wait for
/// its result instead of starting their own.
///
/// ```swift
/// let flights = SingleFlight<String>()
/// let user = try await flights.run("user:1") { try await database.user(id: 1) }
/// ```
///
/// - Exactly one `operation` runs per key at a time per `SingleFlight` instance. Once it finishes, the next call
///   for the key starts a new one: results are shared, never stored.
/// - An error thrown by the operation reaches every waiter of that flight.
/// - The operation runs in an unstructured task owned by the flight. A waiter that is cancelled stops waiting
///   and throws ``CacheError/Code/cancelled``; the operation keeps running for the others. When every waiter
///   has been cancelled the operation still runs to its end (its side effects, such as storing the value in a
///   cache, still happen, so the work is not wasted); nobody receives its result.
/// - Callers for the same key must ask for the same `Value` type; a caller asking for another type while a flight
///   runs gets ``CacheError/Code/typeMismatch``.
/// - A flight started with a `timeout` is bounded: once the timeout has passed, its waiters get
///   ``CacheError/Code/timeout`` and the next caller for the key starts a new flight instead of joining it, so an
///   operation that never returns cannot hold its key for ever. The late operation is not cancelled: if it does
///   finish, its side effects happen and nobody receives its result.
///
/// The table of running flights is a dictionary behind a lock: joining or starting a flight takes the lock
/// once, with no actor hop.
public final class SingleFlight<Key: Hashable & Sendable>: Sendable {
    private let flights = Locked<[Key: any SingleFlightCall]>([:])

    /// Creates an empty table of flights.
    public init() {}

    /// The result of `operation`, or of the operation already running for `key`.
    ///
    /// - Throws: The operation's error; ``CacheError/Code/cancelled`` when the calling task is cancelled while
    ///   waiting; ``CacheError/Code/typeMismatch`` when a flight of another value type runs for `key`.
    public func run<Value: Sendable>(
        _ key: Key,
        operation: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        try await join(key, timeout: nil, operation: operation).call.wait(key: key)
    }

    /// The result of `operation`, or of the operation already running for `key`; a flight this call starts lasts at
    /// most `timeout` (see the type's documentation).
    ///
    /// - Throws: The operation's error; ``CacheError/Code/timeout`` when the flight outlived its bound;
    ///   ``CacheError/Code/cancelled`` when the calling task is cancelled while waiting;
    ///   ``CacheError/Code/typeMismatch`` when a flight of another value type runs for `key`.
    public func run<Value: Sendable>(
        _ key: Key,
        timeout: Duration?,
        operation: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        try await join(key, timeout: timeout, operation: operation).call.wait(key: key)
    }

    /// Whether an operation is running for `key` right now.
    public func isRunning(_ key: Key) -> Bool {
        flights.withLock { $0[key] != nil }
    }

    /// How many keys have an operation running right now.
    public var runningCount: Int {
        flights.withLock { $0.count }
    }

    /// Starts `operation` for `key` unless one is already running, without waiting for it.
    ///
    /// - Returns: Whether this call started a new flight.
    @discardableResult
    public func startIfIdle<Value: Sendable>(
        _ key: Key,
        timeout: Duration? = nil,
        operation: @escaping @Sendable () async throws -> Value
    ) throws -> Bool {
        try join(key, timeout: timeout, operation: operation).started
    }

    /// Finds the running call for `key` or registers a new one, then (outside the lock) starts the new one's task.
    private func join<Value: Sendable>(
        _ key: Key,
        timeout: Duration?,
        operation: @escaping @Sendable () async throws -> Value
    ) throws -> (call: SingleFlightTypedCall<Value>, started: Bool) {
        let now = ContinuousClock.now
        let (existing, created, expired) = flights.withLock {
            flights -> ((any SingleFlightCall)?, SingleFlightTypedCall<Value>?, (any SingleFlightCall)?) in
            var expired: (any SingleFlightCall)?
            if let running = flights[key] {
                guard let deadline = running.deadline, deadline <= now else { return (running, nil, nil) }
                expired = running  // outlived its bound: replaced, so this caller starts afresh
            }
            let call = SingleFlightTypedCall<Value>(deadline: timeout.map { now + min($0, .noExpiry) })
            flights[key] = call
            return (nil, call, expired)
        }
        expired?.expire(key: "\(key)")
        if let created {
            // The task is created after the call is in the table, so an operation that finishes at once still
            // finds its own entry to remove.
            Task {
                let result: Result<Value, any Error>
                do {
                    result = .success(try await operation())
                } catch {
                    result = .failure(error)
                }
                // Leave the table before waking the waiters: a caller arriving after this point starts afresh.
                self.flights.withLock { flights in
                    if let current = flights[key], current === created { flights[key] = nil }
                }
                created.finish(result)
            }
            return (created, true)
        }
        guard let typed = existing as? SingleFlightTypedCall<Value> else {
            throw CacheError.typeMismatch(
                key: "\(key)", stored: existing.map { $0.valueTypeName } ?? "?", requested: "\(Value.self)"
            )
        }
        return (typed, false)
    }
}

/// A running flight, whatever its value type.
private protocol SingleFlightCall: AnyObject, Sendable {
    var valueTypeName: String { get }
    /// When the flight stops being joined; `nil` for never.
    var deadline: ContinuousClock.Instant? { get }
    /// Fails the waiters with a timeout: the flight outlived its bound.
    func expire(key: String)
}

/// One running operation and the continuations of the callers waiting for it.
private final class SingleFlightTypedCall<Value: Sendable>: SingleFlightCall, Sendable {
    private struct State {
        var waiters: [UInt64: CheckedContinuation<Value, any Error>] = [:]
        var nextID: UInt64 = 0
        var result: Result<Value, any Error>?
    }

    private let state = Locked(State())
    let deadline: ContinuousClock.Instant?

    init(deadline: ContinuousClock.Instant?) {
        self.deadline = deadline
    }

    var valueTypeName: String { "\(Value.self)" }

    func expire(key: String) {
        finish(.failure(CacheError.timeout(
            "The load of this key ran longer than its bound and was abandoned; a new load has started. Check that the factory returns (or throws) in time.",
            key: key
        )))
    }

    /// Waits for the result. A cancelled caller stops waiting at once; the operation is not cancelled.
    func wait<Key: Sendable>(key: Key) async throws -> Value {
        // The id lets the cancellation handler remove exactly this caller's continuation.
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
                let immediate = state.withLock { state -> Result<Value, any Error>? in
                    if let result = state.result { return result }
                    // Checked under the lock the cancellation handler also takes: either the handler ran before
                    // (and the flag was set before it ran) or it runs later and finds this waiter.
                    if Task.isCancelled { return .failure(CacheError.cancelled(key: "\(key)")) }
                    state.waiters[id] = continuation
                    return nil
                }
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            let removed = state.withLock { $0.waiters.removeValue(forKey: id) }
            removed?.resume(throwing: CacheError.cancelled(key: "\(key)"))
        }
    }

    /// Stores the result and wakes every waiter; the first result wins (a late operation after ``expire(key:)``).
    func finish(_ result: Result<Value, any Error>) {
        let waiters = state.withLock { state -> [CheckedContinuation<Value, any Error>] in
            guard state.result == nil else { return [] }
            state.result = result
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(with: result) }
    }
}
