/// When to stop calling a failing backend, and when to try it again.
///
/// A value type driven by events, so it is testable without a backend. The fallback cache keeps it
/// behind its lock.
package struct CircuitBreaker: Sendable, Equatable {
    package enum State: Sendable, Equatable {
        /// Calls go to the backend.
        case closed(consecutiveFailures: Int)
        /// Calls skip the backend until a probe succeeds.
        case open(since: ContinuousClock.Instant)
    }

    /// What the caller must do after an event.
    package enum Action: Sendable, Equatable {
        case none
        /// The breaker just opened: log once, emit a health event, start probing.
        case opened
        /// The breaker just closed: log once, emit a health event.
        case closed
    }

    package private(set) var state: State = .closed(consecutiveFailures: 0)
    /// Consecutive failures that open the breaker.
    package let failureThreshold: Int

    package init(failureThreshold: Int) {
        precondition(failureThreshold >= 1, "the failure threshold must be at least 1")
        self.failureThreshold = failureThreshold
    }

    /// Whether calls should go to the backend now.
    package var allowsCalls: Bool {
        if case .closed = state { return true }
        return false
    }

    package var isOpen: Bool { !allowsCalls }

    /// A backend call succeeded.
    package mutating func recordSuccess() {
        if case .closed = state { state = .closed(consecutiveFailures: 0) }
    }

    /// A backend call failed with an availability error.
    package mutating func recordFailure(now: ContinuousClock.Instant) -> Action {
        switch state {
        case .closed(let failures):
            if failures + 1 >= failureThreshold {
                state = .open(since: now)
                return .opened
            }
            state = .closed(consecutiveFailures: failures + 1)
            return .none
        case .open:
            return .none
        }
    }

    /// A background probe reached the backend and pending writes were reconciled.
    package mutating func recordRecovery() -> Action {
        switch state {
        case .open:
            state = .closed(consecutiveFailures: 0)
            return .closed
        case .closed:
            state = .closed(consecutiveFailures: 0)
            return .none
        }
    }
}
