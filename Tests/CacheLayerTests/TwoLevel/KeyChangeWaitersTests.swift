@testable import CacheLayer
import Synchronization
import Testing

/// The wake-ups of distributed single flight's waiters on a two-level cache, without Redis.
@Suite("KeyChangeWaiters")
struct KeyChangeWaitersTests {
    final class Flag: Sendable {
        private let value = Atomic<Bool>(false)
        func set() { value.store(true, ordering: .releasing) }
        var isSet: Bool { value.load(ordering: .acquiring) }
    }

    /// Polls `condition` every millisecond until it holds or `timeout` passes.
    func eventually(timeout: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return condition()
    }

    @Test func aChangeOfTheKeyWakesItsWaiterAndOnlyIt() async {
        let waiters = KeyChangeWaiters()
        let woken = Flag()
        let other = Flag()
        let task = Task {
            await waiters.wait(for: "k", atMost: .seconds(600))
            woken.set()
        }
        let otherTask = Task {
            await waiters.wait(for: "other", atMost: .seconds(600))
            other.set()
        }
        // Repeated until it lands: the waiter may not have registered yet.
        let settled = await eventually {
            waiters.changed(["k"])
            return woken.isSet
        }
        #expect(settled)
        #expect(!other.isSet)
        #expect(waiters.waitingCount == 1)
        otherTask.cancel()
        await otherTask.value
        await task.value
        #expect(waiters.waitingCount == 0)
    }

    @Test func aFlushWakesEveryWaiter() async {
        let waiters = KeyChangeWaiters()
        let flags = (0..<3).map { _ in Flag() }
        let tasks = flags.enumerated().map { index, flag in
            Task {
                await waiters.wait(for: "k\(index)", atMost: .seconds(600))
                flag.set()
            }
        }
        let settled = await eventually {
            waiters.changedAll()
            return flags.allSatisfy(\.isSet)
        }
        #expect(settled)
        for task in tasks { await task.value }
    }

    @Test func aWaitEndsAfterItsTimeoutOrWhenCancelled() async {
        let waiters = KeyChangeWaiters()
        await waiters.wait(for: "k", atMost: .milliseconds(10))
        let task = Task { await waiters.wait(for: "k", atMost: .seconds(600)) }
        task.cancel()
        await task.value
        #expect(waiters.waitingCount == 0, "a cancelled waiter leaves the table")
    }
}
