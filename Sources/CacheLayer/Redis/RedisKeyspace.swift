import NIOCore
import RedisClient

/// How a ``RedisCache`` names its keys in Redis: every key under `namespace:`, tag sets under
/// `namespace:__tag__:`.
struct RedisKeyspace: Sendable {
    /// `"namespace:"`, or empty without a namespace.
    let prefix: String
    /// Whether a namespace is set, so `clear()` can remove only this cache's keys.
    var hasNamespace: Bool { !prefix.isEmpty }

    /// The start of every tag set's name after the namespace. User keys may not start with it.
    static let tagMarker = "__tag__:"

    init(namespace: String?) {
        prefix = namespace.map { "\($0):" } ?? ""
    }

    /// The Redis key of a cache key.
    @inline(__always)
    func key(_ key: String) -> NamespacedKey { NamespacedKey(prefix: prefix, key: key) }

    /// The Redis key of the set listing the keys stored with `tag`.
    func tagKey(_ tag: String) -> NamespacedKey { NamespacedKey(prefix: prefix, key: Self.tagMarker + tag) }

    /// A `SCAN MATCH` pattern for every key of this cache starting with `keyPrefix`, glob characters escaped.
    func matchPattern(keyPrefix: String) -> String {
        Self.escapeGlob(prefix + keyPrefix) + "*"
    }

    /// `text` with the glob characters of `SCAN MATCH` (`* ? [ ] \`) escaped by a backslash.
    static func escapeGlob(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count + 4)
        for character in text {
            switch character {
            case "*", "?", "[", "]", "\\": escaped.append("\\")
            default: break
            }
            escaped.append(character)
        }
        return escaped
    }
}

/// A key with its namespace prefix, written into a command without concatenating strings first.
struct NamespacedKey: RESPBulkConvertible {
    let prefix: String
    let key: String

    func writeRESPBulk(into buffer: inout ByteBuffer) {
        var prefix = prefix
        var key = key
        buffer.writeRESPHeader(UInt8(ascii: "$"), prefix.utf8.count + key.utf8.count)
        prefix.withUTF8 { _ = buffer.writeBytes($0) }
        key.withUTF8 { _ = buffer.writeBytes($0) }
        buffer.writeInteger(UInt16(0x0D0A))
    }
}
