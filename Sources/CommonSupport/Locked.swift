import NIOConcurrencyHelpers

/// State guarded by a lock that ThreadSanitizer understands.
///
/// `Synchronization.Mutex` locks with raw futex calls on Linux, which the sanitizer does not intercept, so
/// every access made inside it is reported as a data race and a `--sanitize=thread` run cannot tell real
/// races from those. `NIOLock` is a pthread mutex, which the sanitizer models. The API mirrors `Mutex`.
///
/// `@unchecked Sendable` is safe: `state` is only read or written between `lock()` and `unlock()`.
package final class Locked<State: ~Copyable>: @unchecked Sendable {
    private let lock = NIOLock()
    private var state: State

    package init(_ initialState: consuming State) {
        state = initialState
    }

    /// Runs `body` with exclusive access to the state.
    @inline(__always)
    package func withLock<Result: ~Copyable, Failure: Error>(_ body: (inout State) throws(Failure) -> Result) throws(Failure) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&state)
    }
}

/// Reflection (`dump`, a failed `#expect`, a debugger's summary) shows no state: reading it would bypass the lock, and
/// copying noncopyable state out for a mirror crashes.
extension Locked: CustomReflectable where State: ~Copyable {
    package var customMirror: Mirror {
        Mirror(self, children: [], displayStyle: .class)
    }
}
