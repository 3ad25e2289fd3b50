import CommonSupport
import Testing

/// Noncopyable state, as the caches keep behind their locks.
private struct Ticket: ~Copyable {
    var number: Int
}

@Suite("Locked")
struct LockedTests {
    @Test func withLockGivesExclusiveMutableAccessToNoncopyableState() {
        let locked = Locked(Ticket(number: 1))
        locked.withLock { $0.number += 41 }
        #expect(locked.withLock { $0.number } == 42)
    }

    /// A failed `#expect` reflects the values it mentions. Reflecting the guarded state would read it without the
    /// lock and, for noncopyable state, crash the test process instead of reporting the failure; a `Locked` shows
    /// no children.
    @Test func reflectionShowsNoStateAndNeverReadsIt() {
        let locked = Locked(Ticket(number: 7))
        let mirror = Mirror(reflecting: locked)
        #expect(mirror.children.isEmpty)
        #expect(String(reflecting: locked).contains("Locked"))
    }
}
