import CommonSupport
import RedisClient
import CacheLayer
import Synchronization
import Testing

@Suite("warm")
struct WarmTests {
    static let caches = CacheUnderTest.all

    @Test(arguments: caches)
    func warmsEveryEntryAndReportsTheBadOnesWithoutStopping(backend: CacheUnderTest) async throws {
        let cache = FaultInjectingCache(base: try await backend.make(TestClock()))
        cache.failSets { $0.hasSuffix("7") }   // 1 key in 10
        let entries = (0..<1000).map { (key: "item:\($0)", value: $0) }
        let updates = Locked<[WarmProgress]>([])
        let report = await cache.warm(entries: entries, ttl: .seconds(60), concurrency: 4, batchSize: 50) { progress in
            updates.withLock { $0.append(progress) }
        }
        #expect(report.succeeded == 900)
        #expect(report.failed == 100)
        #expect(report.failures.count == 100)
        #expect(report.failures.allSatisfy { $0.key.hasSuffix("7") && ($0.error as? CacheError)?.code == .unavailable })
        #expect(try await cache.get("item:8", as: Int.self) == 8)
        #expect(try await cache.get("item:7", as: Int.self) == nil)
        let seen = updates.withLock { $0 }
        #expect(seen.count == 20)   // one per chunk
        #expect(seen.map(\.completed) == seen.map(\.completed).sorted())
        #expect(seen.last == WarmProgress(completed: 1000, succeeded: 900, failed: 100, total: 1000))
    }

    @Test(arguments: caches)
    func keepsOnlyTheFirstFailuresButCountsThemAll(backend: CacheUnderTest) async throws {
        let cache = FaultInjectingCache(base: try await backend.make(TestClock()))
        cache.failSets { _ in true }
        let report = await cache.warm(entries: (0..<250).map { (key: "k\($0)", value: $0) }, ttl: .seconds(60), batchSize: 1)
        #expect(report.failed == 250)
        #expect(report.failures.count == WarmReport.maximumRecordedFailures)
    }

    @Test(arguments: caches)
    func warmsFromAnAsyncSequence(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: (key: String, value: String).self)
        for index in 0..<30 { continuation.yield((key: "s\(index)", value: "v\(index)")) }
        continuation.finish(throwing: TestFailure())
        let report = await cache.warm(entries: stream, ttl: .seconds(60), concurrency: 2, batchSize: 7)
        #expect(report.succeeded == 30)
        #expect(report.failed == 0)
        #expect(report.sequenceError is TestFailure)
        #expect(try await cache.getMany((0..<30).map { "s\($0)" }, as: String.self).count == 30)
    }

    @Test(arguments: caches)
    func warmsKeysThroughALoader(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        let count = Locked(0)
        let report = await cache.warm(keys: (0..<40).map { "n\($0)" }, as: Int.self, ttl: .seconds(60), concurrency: 3, progress: { _ in
            count.withLock { $0 += 1 }
        }) { key in
            let number = Int(key.dropFirst())!
            if number % 10 == 0 { throw TestFailure() }
            return number
        }
        #expect(report.succeeded == 36)
        #expect(report.failed == 4)
        #expect(Set(report.failures.map(\.key)) == ["n0", "n10", "n20", "n30"])
        #expect(count.withLock { $0 } == 40)
        #expect(try await cache.get("n5", as: Int.self) == 5)
    }
}
