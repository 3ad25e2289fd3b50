import CacheLayer
import Foundation
import Synchronization
import Testing

/// Add if absent, keep-TTL writes, TTL reads and bytes on every backend.
@Suite("Add if absent, TTLs and bytes")
struct EntryOperationsTests {
    static let caches = CacheUnderTest.all

    /// Lets a value stored with `ttl` expire: the injected clock moves where TTLs follow it, real time passes on Redis.
    private func expire(_ ttl: Duration, clock: TestClock, backend: CacheUnderTest) async throws {
        if backend.ttlFollowsClock {
            clock.advance(by: ttl)
        } else {
            try await Task.sleep(for: ttl + .milliseconds(100))
        }
    }

    @Test(arguments: caches)
    func setIfAbsentStoresOnlyWhileNoLiveValueIsStored(backend: CacheUnderTest) async throws {
        let clock = TestClock()
        let cache = try await backend.make(clock)
        defer { Task { try? await cache.close() } }
        guard backend.supportsEntryOperations else {
            let error = await #expect(throws: CacheError.self) { try await cache.setIfAbsent("k", to: 1, ttl: nil) }
            #expect(error?.code == .unsupported)
            return
        }
        guard !backend.backendIsDown else {
            // Memory alone cannot promise that no other instance stored the key.
            let error = await #expect(throws: CacheError.self) { try await cache.setIfAbsent("k", to: 1, ttl: nil) }
            #expect(error?.code == .unavailable)
            #expect(try await cache.get("k", as: Int.self) == nil)
            return
        }
        #expect(try await cache.setIfAbsent("k", to: "first", ttl: .milliseconds(300)))
        #expect(try await cache.setIfAbsent("k", to: "second", ttl: .seconds(60)) == false)
        #expect(try await cache.get("k", as: String.self) == "first")
        try await expire(.milliseconds(300), clock: clock, backend: backend)
        #expect(try await cache.setIfAbsent("k", to: "third", ttl: .seconds(60)))
        #expect(try await cache.get("k", as: String.self) == "third")
        try await cache.delete("k")
        #expect(try await cache.setIfAbsent("k", to: "fourth", ttl: nil))
        #expect(try await cache.get("k", as: String.self) == "fourth")
    }

    @Test(arguments: caches.filter { $0.supportsEntryOperations && !$0.backendIsDown })
    func concurrentSetIfAbsentStoresExactlyOnce(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        defer { Task { try? await cache.close() } }
        let winners = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for writer in 0..<12 {
                group.addTask { (writer, try await cache.setIfAbsent("lock", to: writer, ttl: .seconds(60))) }
            }
            var winners: [Int] = []
            for try await (writer, stored) in group where stored { winners.append(writer) }
            return winners
        }
        #expect(winners.count == 1)
        #expect(try await cache.get("lock", as: Int.self) == winners.first)
    }

    @Test(arguments: caches)
    func setKeepingTTLKeepsTheRemainingTTL(backend: CacheUnderTest) async throws {
        let clock = TestClock()
        let cache = try await backend.make(clock)
        defer { Task { try? await cache.close() } }
        guard backend.supportsEntryOperations else {
            let error = await #expect(throws: CacheError.self) { try await cache.setKeepingTTL("k", to: 1) }
            #expect(error?.code == .unsupported)
            return
        }
        try await cache.set("k", to: 1, ttl: .seconds(60))
        try await cache.setKeepingTTL("k", to: 2)
        #expect(try await cache.get("k", as: Int.self) == 2)
        let ttl = try #require(try await cache.ttl("k"))
        #expect(ttl > .seconds(50) && ttl <= .seconds(60))

        // Without a live value, the value never expires (as SET KEEPTTL does).
        try await cache.setKeepingTTL("fresh", to: 3)
        #expect(try await cache.ttl("fresh") == .noExpiry)

        // The kept TTL still ends the value.
        try await cache.set("short", to: 1, ttl: .milliseconds(300))
        try await cache.setKeepingTTL("short", to: 2)
        try await expire(.milliseconds(300), clock: clock, backend: backend)
        #expect(try await cache.get("short", as: Int.self) == nil)
    }

    @Test(arguments: caches)
    func ttlReportsTheRemainingLifetime(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        defer { Task { try? await cache.close() } }
        guard backend.supportsEntryOperations else {
            let error = await #expect(throws: CacheError.self) { try await cache.ttl("k") }
            #expect(error?.code == .unsupported)
            return
        }
        #expect(try await cache.ttl("absent") == nil)
        try await cache.set("forever", to: 1, ttl: .noExpiry)
        #expect(try await cache.ttl("forever") == .noExpiry)
        try await cache.set("minute", to: 1, ttl: .seconds(60))
        let ttl = try #require(try await cache.ttl("minute"))
        #expect(ttl > .seconds(50) && ttl <= .seconds(60))
    }

    @Test(arguments: caches)
    func getWithTTLReturnsTheValueAndItsTTL(backend: CacheUnderTest) async throws {
        let cache = try await backend.make(TestClock())
        defer { Task { try? await cache.close() } }
        guard backend.supportsEntryOperations else {
            let error = await #expect(throws: CacheError.self) { try await cache.getWithTTL("k", as: Int.self) }
            #expect(error?.code == .unsupported)
            return
        }
        #expect(try await cache.getWithTTL("absent", as: String.self) == nil)
        try await cache.set("k", to: "v", ttl: .seconds(60))
        let entry = try #require(try await cache.getWithTTL("k", as: String.self))
        #expect(entry.value == "v")
        #expect(entry.ttl > .seconds(50) && entry.ttl <= .seconds(60))
        try await cache.set("forever", to: "w", ttl: .noExpiry)
        #expect(try await cache.getWithTTL("forever", as: String.self)?.ttl == .noExpiry)
        let error = await #expect(throws: CacheError.self) { try await cache.getWithTTL("k", as: Int.self) }
        #expect(error?.code == .typeMismatch)
    }

    @Test(arguments: caches)
    func bytesRoundTripAsTheyAre(backend: CacheUnderTest) async throws {
        let clock = TestClock()
        let cache = try await backend.make(clock)
        defer { Task { try? await cache.close() } }
        // Not valid UTF-8 nor JSON: the bytes must not pass through the codec.
        let bytes: [UInt8] = [0, 255, 254, 10, 13, 0x7B]
        try await cache.setBytes("b", to: bytes, ttl: .milliseconds(300))
        #expect(try await cache.getBytes("b") == bytes)
        #expect(try await cache.getBytes("absent") == nil)
        try await expire(.milliseconds(300), clock: clock, backend: backend)
        #expect(try await cache.getBytes("b") == nil)
        guard backend.supportsEntryOperations else { return }
        // Bytes of a typed value are the codec's encoding.
        try await cache.set("typed", to: "hi", ttl: .seconds(60))
        #expect(try await cache.getBytes("typed") == Array(#""hi""#.utf8))
        try await cache.setBytes("encoded", to: Array(#"{"n":1}"#.utf8), ttl: .seconds(60))
        #expect(try await cache.ttl("encoded") != nil)
    }
}
