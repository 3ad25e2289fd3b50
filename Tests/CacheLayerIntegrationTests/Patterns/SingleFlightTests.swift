import CacheLayer
import Testing

@Suite("SingleFlight")
struct SingleFlightTests {
    @Test func concurrentCallersShareOneOperation() async throws {
        let flights = SingleFlight<String>()
        let calls = CallCounter()
        let gate = Gate()
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<100 {
                group.addTask {
                    try await flights.run("k") {
                        calls.increment()
                        await gate.wait()
                        return 42
                    }
                }
            }
            // Every caller has joined once the one operation is waiting and 100 tasks had the time to run.
            let settled1 = await eventually { calls.value == 1 }
            #expect(settled1)
            try await Task.sleep(for: .milliseconds(50))
            gate.open()
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(results == Array(repeating: 42, count: 100))
        #expect(calls.value == 1)
        #expect(flights.runningCount == 0)
    }

    @Test func anErrorReachesEveryWaiter() async throws {
        let flights = SingleFlight<String>()
        let gate = Gate()
        let calls = CallCounter()
        let outcomes = await withTaskGroup(of: Result<Int, any Error>.self) { group in
            for _ in 0..<10 {
                group.addTask {
                    do {
                        return .success(try await flights.run("k") { () async throws -> Int in
                            calls.increment()
                            await gate.wait()
                            throw TestFailure()
                        })
                    } catch {
                        return .failure(error)
                    }
                }
            }
            try? await Task.sleep(for: .milliseconds(50))
            gate.open()
            return await group.reduce(into: [Result<Int, any Error>]()) { $0.append($1) }
        }
        #expect(calls.value == 1)
        for outcome in outcomes {
            #expect(throws: TestFailure.self) { try outcome.get() }
        }
        // Nothing is remembered: the next call runs again.
        let value = try await flights.run("k") { 7 }
        #expect(value == 7)
    }

    @Test func aCancelledWaiterStopsWaitingWithoutCancellingTheOperation() async throws {
        let flights = SingleFlight<String>()
        let gate = Gate()
        let operationCancelled = CallCounter()
        let first = Task {
            try await flights.run("k") {
                await gate.wait()
                if Task.isCancelled { operationCancelled.increment() }
                return "value"
            }
        }
        let settled2 = await eventually { flights.isRunning("k") }
        #expect(settled2)
        let second = Task { try await flights.run("k") { "other" } }
        try await Task.sleep(for: .milliseconds(20))
        first.cancel()
        let error = await #expect(throws: CacheError.self) { try await first.value }
        #expect(error?.code == .cancelled)
        gate.open()
        #expect(try await second.value == "value")
        #expect(operationCancelled.value == 0)
    }

    @Test func whenEveryWaiterIsCancelledTheOperationStillFinishes() async throws {
        let flights = SingleFlight<String>()
        let gate = Gate()
        let finished = CallCounter()
        let waiter = Task {
            try await flights.run("k") {
                await gate.wait()
                finished.increment()
                return 1
            }
        }
        let settled3 = await eventually { flights.isRunning("k") }
        #expect(settled3)
        waiter.cancel()
        _ = await waiter.result
        gate.open()
        let settled4 = await eventually { finished.value == 1 && !flights.isRunning("k") }
        #expect(settled4)
    }

    @Test func aCallerAlreadyCancelledDoesNotWait() async throws {
        let flights = SingleFlight<String>()
        let gate = Gate()
        let running = Task { try await flights.run("k") { await gate.wait(); return 1 } }
        let settled5 = await eventually { flights.isRunning("k") }
        #expect(settled5)
        let late = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await flights.run("k") { 2 }
        }
        let error = await #expect(throws: CacheError.self) { try await late.value }
        #expect(error?.code == .cancelled)
        gate.open()
        #expect(try await running.value == 1)
    }

    @Test func waitersOfAnotherTypeGetATypeMismatch() async throws {
        let flights = SingleFlight<String>()
        let gate = Gate()
        let running = Task { try await flights.run("k") { await gate.wait(); return 1 } }
        let settled6 = await eventually { flights.isRunning("k") }
        #expect(settled6)
        let error = await #expect(throws: CacheError.self) { try await flights.run("k") { "text" } }
        #expect(error?.code == .typeMismatch)
        gate.open()
        #expect(try await running.value == 1)
    }

    @Test func eachKeyHasItsOwnFlight() async throws {
        let flights = SingleFlight<Int>()
        let calls = CallCounter()
        let gate = Gate()
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<50 {
                group.addTask {
                    try await flights.run(index % 5) {
                        calls.increment()
                        await gate.wait()
                        return index % 5
                    }
                }
            }
            let settled7 = await eventually { calls.value == 5 }
            #expect(settled7)
            try await Task.sleep(for: .milliseconds(50))
            gate.open()
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(calls.value == 5)
        #expect(results.sorted() == (0..<50).map { $0 % 5 }.sorted())
    }
}
