import NIOCore

/// A value of the Redis serialization protocol, RESP2 or RESP3.
///
/// RESP2's null bulk string (`$-1`) and null array (`*-1`) decode to ``null``, like RESP3's `_`,
/// so callers test for one null only. Text-like payloads are kept as `ByteBuffer` slices of the
/// received bytes (no copy); use ``string`` or ``bytes`` to read them.
public enum RESPValue: Sendable, Equatable, CustomStringConvertible {
    /// `+OK`: a short, non-binary status line.
    case simpleString(ByteBuffer)
    /// `-ERR message`: an error line. Replies to commands surface it as a thrown ``RedisError`` instead.
    case simpleError(ByteBuffer)
    /// `:42`: a signed 64-bit integer.
    case integer(Int64)
    /// `$3\r\nfoo`: a binary-safe string.
    case bulkString(ByteBuffer)
    /// `!21\r\nSYNTAX invalid syntax`: a binary-safe error (RESP3).
    case bulkError(ByteBuffer)
    /// `*2 …`: an ordered list.
    case array([RESPValue])
    /// `%1 …`: key-value pairs in the order the server sent them (RESP3).
    case map([(key: RESPValue, value: RESPValue)])
    /// `~2 …`: an unordered collection (RESP3).
    case set([RESPValue])
    /// `,3.14`: a floating point number, including `inf`, `-inf` and `nan` (RESP3).
    case double(Double)
    /// `#t` / `#f` (RESP3).
    case boolean(Bool)
    /// `(3492890328409238509324850943850943825024385`: an integer of any size, as its decimal text (RESP3).
    case bigNumber(ByteBuffer)
    /// `=15\r\ntxt:Some string`: a string with a three-letter format such as `txt` or `mkd` (RESP3).
    case verbatimString(format: String, ByteBuffer)
    /// `_` in RESP3, or RESP2's `$-1` and `*-1`.
    case null
    /// `>3 …`: an out-of-band message (pub/sub, client tracking); routed to ``RedisConnection/pushMessages`` (RESP3).
    case push([RESPValue])
    /// `|1 …` followed by a reply: the reply with the attributes the server sent before it (RESP3).
    indirect case attribute([(key: RESPValue, value: RESPValue)], RESPValue)

    /// The value with any attributes removed.
    public var withoutAttributes: RESPValue {
        if case .attribute(_, let value) = self { return value.withoutAttributes }
        return self
    }

    /// The payload as UTF-8 text for string-like values (simple, bulk, verbatim, big number, errors) and
    /// integers, doubles and booleans; `nil` for null and aggregates.
    public var string: String? {
        switch self.withoutAttributes {
        case .simpleString(let b), .bulkString(let b), .simpleError(let b), .bulkError(let b), .bigNumber(let b),
            .verbatimString(_, let b):
            return String(buffer: b)
        case .integer(let i): return String(i)
        case .double(let d): return String(d)
        case .boolean(let b): return b ? "true" : "false"
        default: return nil
        }
    }

    /// The payload bytes of string-like values; `nil` for other values.
    public var buffer: ByteBuffer? {
        // Switches on `self` rather than `withoutAttributes`: on the hot path (every GET reply) that copy costs a
        // retain and a release.
        switch self {
        case .simpleString(let b), .bulkString(let b), .simpleError(let b), .bulkError(let b), .bigNumber(let b),
            .verbatimString(_, let b):
            return b
        case .attribute(_, let value): return value.buffer
        default: return nil
        }
    }

    /// The payload of string-like values as an array of bytes; `nil` for other values.
    public var bytes: [UInt8]? { self.buffer.map { Array($0.readableBytesView) } }

    /// The integer value of `.integer`, or of a string holding a decimal integer; `nil` otherwise.
    public var int: Int? {
        switch self.withoutAttributes {
        case .integer(let i): return Int(exactly: i)
        case .simpleString, .bulkString, .bigNumber: return self.string.flatMap { Int($0) }
        case .boolean(let b): return b ? 1 : 0
        default: return nil
        }
    }

    /// The elements of arrays, sets and pushes; the flattened key/value sequence of maps; `nil` otherwise.
    public var array: [RESPValue]? {
        switch self.withoutAttributes {
        case .array(let a), .set(let a), .push(let a): return a
        case .map(let pairs): return pairs.flatMap { [$0.key, $0.value] }
        default: return nil
        }
    }

    /// `true` for error replies (`-ERR …`, `!…`).
    package var isErrorReply: Bool {
        switch self.withoutAttributes {
        case .simpleError, .bulkError: return true
        default: return false
        }
    }

    /// `true` for ``null``.
    public var isNull: Bool {
        switch self {
        case .null: return true
        case .attribute(_, let value): return value.isNull
        default: return false
        }
    }

    /// A short readable rendering, for logs and test failures.
    public var description: String {
        switch self {
        case .simpleString(let b): return "+\(String(buffer: b))"
        case .simpleError(let b): return "-\(String(buffer: b))"
        case .integer(let i): return ":\(i)"
        case .bulkString(let b): return "$\(String(decoding: b.readableBytesView, as: UTF8.self).debugDescription)"
        case .bulkError(let b): return "!\(String(buffer: b))"
        case .array(let a): return "*[\(a.map(\.description).joined(separator: ", "))]"
        case .map(let m): return "%{\(m.map { "\($0.key): \($0.value)" }.joined(separator: ", "))}"
        case .set(let s): return "~[\(s.map(\.description).joined(separator: ", "))]"
        case .double(let d): return ",\(d)"
        case .boolean(let b): return b ? "#t" : "#f"
        case .bigNumber(let b): return "(\(String(buffer: b))"
        case .verbatimString(let f, let b): return "=\(f):\(String(buffer: b))"
        case .null: return "_"
        case .push(let p): return ">[\(p.map(\.description).joined(separator: ", "))]"
        case .attribute(let a, let v): return "|{\(a.map { "\($0.key): \($0.value)" }.joined(separator: ", "))} \(v)"
        }
    }

    /// Structural equality; doubles compare equal when both are NaN, so decoded values equal what was encoded.
    public static func == (lhs: RESPValue, rhs: RESPValue) -> Bool {
        switch (lhs, rhs) {
        case (.simpleString(let a), .simpleString(let b)): return a == b
        case (.simpleError(let a), .simpleError(let b)): return a == b
        case (.integer(let a), .integer(let b)): return a == b
        case (.bulkString(let a), .bulkString(let b)): return a == b
        case (.bulkError(let a), .bulkError(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.set(let a), .set(let b)): return a == b
        case (.push(let a), .push(let b)): return a == b
        case (.map(let a), .map(let b)): return pairsEqual(a, b)
        case (.double(let a), .double(let b)): return a == b || (a.isNaN && b.isNaN)
        case (.boolean(let a), .boolean(let b)): return a == b
        case (.bigNumber(let a), .bigNumber(let b)): return a == b
        case (.verbatimString(let fa, let a), .verbatimString(let fb, let b)): return fa == fb && a == b
        case (.null, .null): return true
        case (.attribute(let aa, let a), .attribute(let ab, let b)): return pairsEqual(aa, ab) && a == b
        default: return false
        }
    }

    private static func pairsEqual(
        _ a: [(key: RESPValue, value: RESPValue)],
        _ b: [(key: RESPValue, value: RESPValue)]
    ) -> Bool {
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) where x.key != y.key || x.value != y.value { return false }
        return true
    }
}
