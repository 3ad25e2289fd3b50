@testable import CacheLayer
import Foundation
import NIOCore
import Logging
import RedisClient
import CommonSupport
import Testing

/// The pub/sub backplane's message framing and its retry queue, without Redis.
@Suite("Backplane messages")
struct BackplaneMessageTests {
    @Test(arguments: [
        NearCacheChange.keys(["a", "user:1", "with\nnewline", "ünïcode", ""]),
        .keys([]),
        .prefix("user:"),
        .all,
    ])
    func aMessageDecodesToWhatWasEncoded(change: NearCacheChange) {
        let message = BackplaneMessage(instanceID: UUID(), change: change)
        #expect(BackplaneMessage(decoding: message.encoded()) == message)
    }

    @Test func malformedPayloadsAreRejectedNotTrusted() {
        var valid = BackplaneMessage(instanceID: UUID(), change: .keys(["a", "b"])).encoded()
        #expect(BackplaneMessage(decoding: ByteBuffer(string: "hello")) == nil)
        #expect(BackplaneMessage(decoding: ByteBuffer()) == nil)
        // Truncated anywhere, or with bytes left over.
        for length in 0..<valid.readableBytes {
            #expect(BackplaneMessage(decoding: valid.getSlice(at: 0, length: length)!) == nil)
        }
        valid.writeInteger(UInt8(0))
        #expect(BackplaneMessage(decoding: valid) == nil)
        // A count far beyond the bytes present does not allocate for it.
        var huge = ByteBuffer(bytes: Array("CLB1".utf8) + Array(repeating: 0, count: 16) + [0])
        huge.writeInteger(UInt32.max)
        #expect(BackplaneMessage(decoding: huge) == nil)
    }

    @Test func theRetryQueueKeepsEachKeyOnceAndDegradesToEverythingPastItsBound() {
        var queue = BackplanePublishQueue(maxKeys: 3)
        queue.add(.keys(["a", "b"]))
        queue.add(.keys(["a"]))
        queue.add(.prefix("p:"))
        let taken = queue.takeAll()
        #expect(taken.count == 2)
        #expect(taken.contains(.prefix("p:")))
        #expect(taken.contains(.keys(["a", "b"])) || taken.contains(.keys(["b", "a"])), "each key once: \(taken)")
        #expect(queue.isEmpty)
        queue.add(.keys(["a", "b", "c"]))
        queue.add(.keys(["d"]))
        #expect(queue.takeAll() == [.all], "past the bound: one message that empties every L1")
        queue.add(.all)
        queue.add(.keys(["x"]))
        #expect(queue.takeAll() == [.all])
        #expect(queue.takeAll().isEmpty)
    }

    @Test func theRetryQueueSplitsManyKeysIntoBatches() {
        var queue = BackplanePublishQueue(maxKeys: 10_000)
        queue.add(.keys((0..<1200).map { "k\($0)" }))
        let changes = queue.takeAll(batch: 500)
        #expect(changes.count == 3)
        let keys = changes.flatMap { change -> [String] in
            if case .keys(let keys) = change { return keys }
            return []
        }
        #expect(Set(keys).count == 1200)
    }
}

/// The backplane's publishing side with a publish function that fails on demand; no Redis (its subscription loop is
/// not started).
@Suite("Backplane publishing")
struct BackplanePublishingTests {
    final class Publisher: Sendable {
        let failing = Locked(true)
        let published = Locked<[BackplaneMessage]>([])

        func publish(_ bytes: ByteBuffer) throws {
            if failing.withLock({ $0 }) { throw CacheError.unavailable("refused by the test") }
            if let message = BackplaneMessage(decoding: bytes) { published.withLock { $0.append(message) } }
        }
    }

    static func backplane(_ publisher: Publisher) throws -> InvalidationBackplane {
        let memory = try MemoryCache(configuration: .development)
        return InvalidationBackplane(
            connectionConfiguration: RedisConnectionConfiguration(host: "127.0.0.1", port: 1),
            channel: "test", nearCache: NearCache(memory: memory, maxTTL: .seconds(60), isCoherent: false),
            pingInterval: .seconds(1), logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        ) { try publisher.publish($0) }
    }

    @Test func aFailedPublishIsQueuedAndClosingPublishesItOnce() async throws {
        let publisher = Publisher()
        let backplane = try Self.backplane(publisher)
        await backplane.announce(.keys(["a"]))
        await backplane.announce(.keys(["a", "b"]))
        #expect(backplane.failedPublishes == 2)
        #expect(backplane.hasPendingPublications)
        publisher.failing.withLock { $0 = false }
        await backplane.drain(timeout: .seconds(5))
        let published = publisher.published.withLock { $0 }
        #expect(published.count == 1, "the latest state per key, in one message")
        #expect(published.first?.instanceID == backplane.instanceID)
        if case .keys(let keys) = published.first?.change { #expect(Set(keys) == ["a", "b"]) } else { Issue.record("\(published)") }
        #expect(!backplane.hasPendingPublications)
    }

    @Test func aWriteOfManyKeysIsAnnouncedInSeveralBoundedMessages() async throws {
        let publisher = Publisher()
        publisher.failing.withLock { $0 = false }
        let backplane = try Self.backplane(publisher)
        let keys = (0..<1234).map { "k\($0)" }
        await backplane.announce(.keys(keys))
        let published = publisher.published.withLock { $0 }
        #expect(published.count == 3)
        let announced = published.flatMap { message -> [String] in
            if case .keys(let keys) = message.change { return keys }
            return []
        }
        #expect(announced == keys)
    }

    @Test func aPublishThatSucceedsIsNotQueued() async throws {
        let publisher = Publisher()
        publisher.failing.withLock { $0 = false }
        let backplane = try Self.backplane(publisher)
        await backplane.announce(.prefix("user:"))
        #expect(publisher.published.withLock { $0.map(\.change) } == [.prefix("user:")])
        #expect(!backplane.hasPendingPublications)
        #expect(backplane.failedPublishes == 0)
    }
}
