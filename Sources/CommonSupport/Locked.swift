/// State guarded by a lock that ThreadSanitizer understands.
///
/// `Synchronization.Mutex` locks with raw futex calls on Linux, which the sanitizer does not intercept, so
/// every access made inside it is reported as a data race and a `--sanitize=thread` run cannot tell real
/// races from those. ``SpinningMutex`` is a pthread mutex, which the sanitizer models, that spins briefly before it
/// sleeps. The API mirrors `Mutex`.
///
/// `withLock` is inlinable so that callers in other modules get it specialised and inlined: otherwise every
/// call went through the unspecialised generic (a closure context, and a dynamic exclusivity check with a
/// thread-local lookup), a large part of a memory-cache hit. It is `public`, not `package`, because this
/// compiler (Swift 6.3) does not inline `@inlinable package` declarations into other modules; the target is no
/// product, so users still cannot import it.
///
/// `@unchecked Sendable` is safe: `state` is only read or written between `lock()` and `unlock()`.
public final class Locked<State: ~Copyable>: @unchecked Sendable {
    @usableFromInline
    let lock = SpinningMutex()
    /// Unchecked exclusivity: the lock already makes every access exclusive, so the runtime check (a
    /// thread-local access set, on every call) would only cost time.
    @usableFromInline
    @exclusivity(unchecked)
    var state: State

    /// A lock guarding `initialState`.
    public init(_ initialState: consuming State) {
        state = initialState
    }

    /// Runs `body` with exclusive access to the state.
    @inlinable
    @inline(__always)
    public func withLock<Result: ~Copyable, Failure: Error>(_ body: (inout State) throws(Failure) -> Result) throws(Failure) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&state)
    }
}

/// Reflection (`dump`, a failed `#expect`, a debugger's summary) shows no state: reading it would bypass the lock, and
/// copying noncopyable state out for a mirror crashes.
extension Locked: CustomReflectable where State: ~Copyable {
    public var customMirror: Mirror {
        Mirror(self, children: [], displayStyle: .class)
    }
}
