@testable import CacheLayer
import Foundation
import NIOCore
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
