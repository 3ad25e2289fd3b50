import Foundation
import NIOCore

/// What a write changed, for the near caches: the keys to forget, every key under a prefix, or everything.
enum NearCacheChange: Sendable, Equatable {
    case keys([String])
    case prefix(String)
    case all
}

/// An invalidation published on the pub/sub backplane (``NearCacheConfiguration/Coherence/pubSub``): which instance
/// made the change, and what changed. Pure value type with its own binary framing, tested without Redis.
///
/// Framing: `CLB1`, the 16 bytes of the instance id, a kind byte (0 keys, 1 prefix, 2 all), then for keys a
/// `UInt32` count and each key as a `UInt32` length and its UTF-8 bytes, for a prefix its length and bytes. Keys may
/// hold any character (a separator-based text format could not carry a key with a newline).
struct BackplaneMessage: Sendable, Equatable {
    /// The instance that made the change; an instance ignores its own messages (it changed L1 itself).
    var instanceID: UUID
    var change: NearCacheChange

    private static let magic: [UInt8] = Array("CLB1".utf8)

    /// The bytes to publish.
    func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeBytes(Self.magic)
        _ = withUnsafeBytes(of: instanceID.uuid) { buffer.writeBytes($0) }
        switch change {
        case .keys(let keys):
            buffer.writeInteger(UInt8(0))
            buffer.writeInteger(UInt32(keys.count))
            for key in keys { Self.write(key, into: &buffer) }
        case .prefix(let prefix):
            buffer.writeInteger(UInt8(1))
            Self.write(prefix, into: &buffer)
        case .all:
            buffer.writeInteger(UInt8(2))
        }
        return buffer
    }

    /// Decodes a published message; `nil` for bytes that are not a well-formed message (another version, another
    /// publisher on the channel): the receiver then empties its L1, the safe reading of "something changed".
    init?(decoding payload: ByteBuffer) {
        var buffer = payload
        guard buffer.readBytes(length: 4) == Self.magic, let id = buffer.readBytes(length: 16), let kind = buffer.readInteger(as: UInt8.self) else {
            return nil
        }
        let uuid = id.withUnsafeBytes { $0.loadUnaligned(as: uuid_t.self) }
        switch kind {
        case 0:
            // Each key takes at least 4 bytes: a count larger than that is malformed, not a reason to allocate.
            guard let count = buffer.readInteger(as: UInt32.self), Int(count) <= buffer.readableBytes / 4 else { return nil }
            var keys: [String] = []
            keys.reserveCapacity(Int(count))
            for _ in 0..<count {
                guard let key = Self.read(from: &buffer) else { return nil }
                keys.append(key)
            }
            change = .keys(keys)
        case 1:
            guard let prefix = Self.read(from: &buffer) else { return nil }
            change = .prefix(prefix)
        case 2:
            change = .all
        default:
            return nil
        }
        guard buffer.readableBytes == 0 else { return nil }
        instanceID = UUID(uuid: uuid)
    }

    init(instanceID: UUID, change: NearCacheChange) {
        self.instanceID = instanceID
        self.change = change
    }

    private static func write(_ text: String, into buffer: inout ByteBuffer) {
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        let written = buffer.writeString(text)
        buffer.setInteger(UInt32(written), at: lengthIndex)
    }

    private static func read(from buffer: inout ByteBuffer) -> String? {
        guard let length = buffer.readInteger(as: UInt32.self), Int(length) <= buffer.readableBytes else { return nil }
        return buffer.readString(length: Int(length))
    }
}

/// The invalidations whose publication failed, waiting to be published again: the latest state per key (a key is
/// either pending or not), prefixes, and "everything". Bounded: past `maxKeys` pending keys it degrades to one
/// "everything" message, which is always correct (every other instance empties its L1). Pure value type.
struct BackplanePublishQueue: Sendable {
    let maxKeys: Int
    private var keys: Set<String> = []
    private var prefixes: Set<String> = []
    private var all = false

    init(maxKeys: Int = 10_000) {
        self.maxKeys = maxKeys
    }

    var isEmpty: Bool { !all && keys.isEmpty && prefixes.isEmpty }

    /// Remembers `change` to be published again.
    mutating func add(_ change: NearCacheChange) {
        guard !all else { return }
        switch change {
        case .all:
            all = true
        case .prefix(let prefix):
            prefixes.insert(prefix)
        case .keys(let newKeys):
            keys.formUnion(newKeys)
        }
        if keys.count + prefixes.count > maxKeys {
            all = true
        }
        if all {
            keys = []
            prefixes = []
        }
    }

    /// Takes everything pending, as messages of at most `batch` keys each.
    mutating func takeAll(batch: Int = 500) -> [NearCacheChange] {
        defer {
            all = false
            keys = []
            prefixes = []
        }
        if all { return [.all] }
        var changes = prefixes.sorted().map { NearCacheChange.prefix($0) }
        var chunk: [String] = []
        for key in keys {
            chunk.append(key)
            if chunk.count == batch {
                changes.append(.keys(chunk))
                chunk = []
            }
        }
        if !chunk.isEmpty { changes.append(.keys(chunk)) }
        return changes
    }
}
