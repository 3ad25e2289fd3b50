@testable import CacheLayer
import Synchronization
import Testing

/// The wake-ups of distributed single flight's waiters on a two-level cache, without Redis.
///
/// Written so that no step depends on how soon the cooperative pool runs a task (the unit tests run in parallel and
/// may starve it for many seconds): a wait reports why it ended, and a broken wake-up shows as `timedOut`.
@Suite("KeyChangeWaiters")
struct KeyChangeWaitersTests {
    /// Waits until `count` tasks wait, for up to two minutes: only a bug (or a pool starved that long) could keep them
    /// from registering.
    func untilWaiting(_ waiters: KeyChangeWaiters, _ count: Int) async {
        let deadline = ContinuousClock.now + .seconds(120)
        while waiters.waitingCount < count, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(1)) }
        #expect(waiters.waitingCount == count)
    }

    @Test func aChangeOfTheKeyWakesItsWaiterAndOnlyIt() async {
        let waiters = KeyChangeWaiters()
        let task = Task { await waiters.wait(for: "k", atMost: .seconds(120)) }
        let other = Task { await waiters.wait(for: "other", atMost: .seconds(120)) }
        await untilWaiting(waiters, 2)
        waiters.changed(["k"])
        #expect(await task.value == .changed)
        #expect(waiters.waitingCount == 1, "the other key's waiter still waits")
        other.cancel()
        #expect(await other.value == .cancelled)
        #expect(waiters.waitingCount == 0)
    }

    @Test func losingOrRegainingCoherenceWakesEveryWaiterOfTheNearCache() async throws {
        let near = NearCache(memory: try makeTestMemoryCache(), maxTTL: .seconds(60), isCoherent: true)
        for coherent in [false, true] {
            let task = Task { await near.changeWaiters.wait(for: "k", atMost: .seconds(120)) }
            await untilWaiting(near.changeWaiters, 1)
            near.setCoherent(coherent)
            #expect(await task.value == .changed)
        }
    }

    @Test func aFlushWakesEveryWaiter() async {
        let waiters = KeyChangeWaiters()
        let tasks = (0..<3).map { index in Task { await waiters.wait(for: "k\(index)", atMost: .seconds(120)) } }
        await untilWaiting(waiters, 3)
        waiters.changedAll()
        for task in tasks { #expect(await task.value == .changed) }
        #expect(waiters.waitingCount == 0)
    }

    @Test func aWaitEndsAfterItsTimeoutOrWhenCancelled() async {
        let waiters = KeyChangeWaiters()
        #expect(await waiters.wait(for: "k", atMost: .milliseconds(10)) == .timedOut)
        let task = Task { await waiters.wait(for: "k", atMost: .seconds(120)) }
        task.cancel()
        #expect(await task.value == .cancelled)
        #expect(waiters.waitingCount == 0, "a cancelled waiter leaves the table")
    }
}
