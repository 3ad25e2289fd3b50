@testable import CacheLayer
import Testing

@Suite("OutageJournal")
struct OutageJournalTests {
    @Test func aKeyRecordedAgainWhileItWasReplayedStaysForTheNextPass() {
        var journal = OutageJournal(maxKeys: 10)
        journal.record("a")
        journal.record("b", tags: ["t"])
        let plan = journal.plan(batchSize: 10)
        #expect(plan.batches.count == 1)
        #expect(plan.batches[0].map(\.key) == ["a", "b"])
        #expect(plan.batches[0][1].tags == ["t"])
        journal.record("a")
        let completed = journal.completeKeys(plan.batches[0])
        #expect(completed == ["b"])
        #expect(journal.contains("a"))
        #expect(!journal.contains("b"))
        #expect(journal.keyCount == 1)
    }

    @Test func tagsOfAKeysWritesAccumulate() {
        var journal = OutageJournal(maxKeys: 10)
        journal.record("a", tags: ["x"])
        journal.record("a", tags: ["y"])
        #expect(journal.plan(batchSize: 1).batches == [[OutageJournal.KeyRecord(key: "a", version: 2, tags: ["x", "y"])]])
    }

    @Test func aClearSupersedesEarlierKeysAndInvalidationsButNotLaterOnes() {
        var journal = OutageJournal(maxKeys: 10)
        journal.record("old")
        journal.recordInvalidation(.tag("t"))
        #expect(journal.concernsEveryKey)
        journal.recordClear()
        journal.record("new")
        let plan = journal.plan(batchSize: 10)
        #expect(plan.clear != nil)
        #expect(plan.invalidations.isEmpty)
        #expect(plan.batches.flatMap { $0 }.map(\.key) == ["new"])
        journal.completeClear(plan.clear!)
        #expect(!journal.concernsEveryKey)
        journal.completeKeys(plan.batches[0])
        #expect(journal.isEmpty)
    }

    @Test func aClearRecordedDuringItsReplayIsNotCompletedByTheOlderOne() {
        var journal = OutageJournal(maxKeys: 10)
        journal.recordClear()
        let first = journal.plan(batchSize: 10).clear!
        journal.recordClear()
        journal.completeClear(first)
        #expect(journal.clearVersion != nil)
    }

    @Test func invalidationsReplayInCallOrderAndCompleteOneByOne() {
        var journal = OutageJournal(maxKeys: 10)
        journal.recordInvalidation(.tag("a"))
        journal.recordInvalidation(.prefix("b"))
        let plan = journal.plan(batchSize: 10)
        #expect(plan.invalidations.map(\.invalidation) == [.tag("a"), .prefix("b")])
        journal.completeInvalidation(plan.invalidations[0].version)
        #expect(journal.concernsEveryKey)
        journal.completeInvalidation(plan.invalidations[1].version)
        #expect(journal.isEmpty)
    }

    @Test func keysAreReplayedInBatchesOfTheGivenSize() {
        var journal = OutageJournal(maxKeys: 1_000)
        for i in 0..<600 { journal.record("k\(i)") }
        let plan = journal.plan(batchSize: 256)
        #expect(plan.batches.map(\.count) == [256, 256, 88])
        #expect(Set(plan.batches.flatMap { $0 }.map(\.key)).count == 600)
    }

    /// A long outage with a million distinct keys: the journal never holds more than its bound, and degrades to one
    /// clear of the namespace, signalled once.
    @Test func aMillionDistinctKeysStayWithinTheBoundAndDegradeToAClearSignalledOnce() {
        var journal = OutageJournal(maxKeys: 100_000)
        var largest = 0
        var notices = 0
        for i in 0..<1_000_000 {
            journal.record("k\(i)")
            largest = max(largest, journal.keyCount)
            if journal.takeOverflowNotice() { notices += 1 }
        }
        #expect(largest <= 100_000)
        #expect(journal.clearVersion != nil)
        // Overflowing again after a notice signals again: once per overflow of the bound, not per key.
        #expect(notices == 9)
        #expect(journal.keyCount == 100_000)
    }

    @Test func overflowIsSignalledOnceUntilTaken() {
        var journal = OutageJournal(maxKeys: 2)
        journal.record("a")
        journal.record("b")
        #expect(!journal.overflowed)
        journal.record("c")
        journal.record("d")
        journal.record("e")
        #expect(journal.overflowed)
        let first = journal.takeOverflowNotice()
        let second = journal.takeOverflowNotice()
        #expect(first)
        #expect(!second)
        #expect(journal.clearVersion != nil)
        #expect(journal.keyCount <= 2)
    }
}

@Suite("ProbeStateMachine")
struct ProbeStateMachineTests {
    @Test func onlyOneProbeRunsAndAStaleOwnerCannotReleaseItsSuccessor() throws {
        var machine = ProbeStateMachine()
        let started = machine.start()
        let first = try #require(started)
        let whileRunning = machine.start()
        #expect(whileRunning == nil)
        let stopped = machine.stop(first)
        #expect(stopped)
        let second = machine.start()
        #expect(second != nil && second != first)
        // The first probe, ending late, changes nothing.
        let staleStopped = machine.stop(first)
        #expect(!staleStopped)
        #expect(machine.isRunning)
        let third = machine.start()
        #expect(third == nil)
    }

    @Test func nothingStartsOnceClosed() {
        var machine = ProbeStateMachine()
        let owner = machine.start()!
        machine.close()
        let stopped = machine.stop(owner)
        let started = machine.start()
        #expect(!stopped)
        #expect(started == nil)
        #expect(machine.state == .closed)
    }
}
