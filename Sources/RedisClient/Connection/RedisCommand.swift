import NIOCore

/// One encoded command, ready to send; build a batch of them for ``RedisConnection/pipeline(_:timeout:)``.
///
/// ```swift
/// let replies = try await connection.pipeline([
///     RedisCommand("SET", "a", "1"),
///     RedisCommand(["GET", "a"]),
///     .get("a"),
/// ])
/// ```
public struct RedisCommand: Sendable {
    /// The RESP bytes of the command.
    package var encoded: ByteBuffer
    /// Whether running the command twice has the same effect as once; only such commands are retried
    /// by the pool after a connection failure.
    public var isIdempotent: Bool

    /// A command from homogeneous arguments, the name first: `RedisCommand(["GET", "key"])`.
    public init(_ arguments: [some RESPBulkConvertible], isIdempotent: Bool = false) {
        var buffer = ByteBuffer()
        RESPEncoder.writeCommand(arguments, into: &buffer)
        self.encoded = buffer
        self.isIdempotent = isIdempotent
    }

    /// A command from a name and arguments of any convertible types: `RedisCommand("EXPIRE", key, 10)`.
    public init(_ name: String, _ arguments: any RESPBulkConvertible..., isIdempotent: Bool = false) {
        var buffer = ByteBuffer()
        buffer.writeRESPHeader(UInt8(ascii: "*"), arguments.count + 1)
        name.writeRESPBulk(into: &buffer)
        for argument in arguments { argument.writeRESPBulk(into: &buffer) }
        self.encoded = buffer
        self.isIdempotent = isIdempotent
    }

    /// A command whose bytes are already RESP-encoded.
    package init(encoded: ByteBuffer, isIdempotent: Bool) {
        self.encoded = encoded
        self.isIdempotent = isIdempotent
    }

    /// Builds a command by letting `body` append arguments to a buffer; `count` is the argument count including the name.
    package static func build(
        count: Int,
        isIdempotent: Bool,
        capacity: Int = 64,
        _ body: (inout ByteBuffer) -> Void
    ) -> RedisCommand {
        var buffer = ByteBufferAllocator().buffer(capacity: capacity)
        buffer.writeRESPHeader(UInt8(ascii: "*"), count)
        body(&buffer)
        return RedisCommand(encoded: buffer, isIdempotent: isIdempotent)
    }

    /// `GET key`.
    public static func get(_ key: some RESPBulkConvertible) -> RedisCommand {
        build(count: 2, isIdempotent: true) { buffer in
            "GET".writeRESPBulk(into: &buffer)
            key.writeRESPBulk(into: &buffer)
        }
    }

    /// `SET key value` with options; see ``RedisCommandExecutor/set(_:value:expiration:condition:)``.
    public static func set(
        _ key: some RESPBulkConvertible,
        value: some RESPBulkConvertible,
        expiration: RedisSetExpiration = .none,
        condition: RedisSetCondition = .always,
        returnOldValue: Bool = false
    ) -> RedisCommand {
        var count = 3
        switch expiration {
        case .none: break
        case .keepTTL: count += 1
        case .after: count += 2
        }
        if condition != .always { count += 1 }
        if returnOldValue { count += 1 }
        return build(count: count, isIdempotent: false, capacity: 256) { buffer in
            "SET".writeRESPBulk(into: &buffer)
            key.writeRESPBulk(into: &buffer)
            value.writeRESPBulk(into: &buffer)
            switch expiration {
            case .none: break
            case .keepTTL: "KEEPTTL".writeRESPBulk(into: &buffer)
            case .after(let duration):
                "PX".writeRESPBulk(into: &buffer)
                max(1, Int(duration.milliseconds)).writeRESPBulk(into: &buffer)
            }
            switch condition {
            case .always: break
            case .ifNotExists: "NX".writeRESPBulk(into: &buffer)
            case .ifExists: "XX".writeRESPBulk(into: &buffer)
            }
            if returnOldValue { "GET".writeRESPBulk(into: &buffer) }
        }
    }
}

extension RedisCommand {
    /// The name of the command when it would switch a connection to subscriber (or monitor) mode: `SUBSCRIBE`,
    /// `UNSUBSCRIBE`, `PSUBSCRIBE`, … and `MONITOR`, which get no reply of their own. `nil` for any other command.
    package var subscriberModeName: String? {
        let view = self.encoded.readableBytesView
        // `*<count>\r\n$<length>\r\n<name>`
        guard let headerEnd = view.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        var index = view.index(after: headerEnd)
        guard index < view.endIndex, view[index] == UInt8(ascii: "$") else { return nil }
        index = view.index(after: index)
        var length = 0
        while index < view.endIndex, let digit = Self.digit(view[index]) {
            length = length * 10 + digit
            guard length <= 12 else { return nil }
            index = view.index(after: index)
        }
        guard length >= 7, view.distance(from: index, to: view.endIndex) >= 2 + length else { return nil }
        let name = view[view.index(index, offsetBy: 2)...].prefix(length)
        // Compared byte by byte, upper-cased (ASCII letters only): no allocation on the path of every command.
        for candidate in Self.subscriberModeNames where candidate.count == length {
            if zip(candidate, name).allSatisfy({ $0 == ($1 & 0xDF) }) { return String(decoding: candidate, as: UTF8.self) }
        }
        return nil
    }

    private static let subscriberModeNames: [[UInt8]] = [
        "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR",
    ].map { Array($0.utf8) }

    private static func digit(_ byte: UInt8) -> Int? {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Int(byte - UInt8(ascii: "0")) : nil
    }
}

/// The expiry option of `SET`.
public enum RedisSetExpiration: Sendable, Hashable {
    /// No expiry (and any existing TTL is cleared, as plain `SET` does).
    case none
    /// `PX`: expire after the duration (rounded to whole milliseconds, at least 1).
    case after(Duration)
    /// `KEEPTTL`: keep the key's current TTL.
    case keepTTL
}

/// The condition option of `SET`.
public enum RedisSetCondition: Sendable, Hashable {
    /// Always set.
    case always
    /// `NX`: only if the key does not exist.
    case ifNotExists
    /// `XX`: only if the key exists.
    case ifExists
}

extension Duration {
    /// The duration in whole milliseconds, rounded towards zero and saturating at `Int64.min` and `Int64.max`.
    package var milliseconds: Int64 {
        let (seconds, attoseconds) = self.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return seconds < 0 ? .min : .max }
        let (total, overflow2) = whole.addingReportingOverflow(attoseconds / 1_000_000_000_000_000)
        if overflow2 { return seconds < 0 ? .min : .max }
        return total
    }

    /// Longer than any wait that matters (about 34,800 years): what timeouts and sleeps are clamped to.
    package static let noLimit: Duration = .seconds(Int64(1) << 40)

    /// This duration, at most ``noLimit``: `Task.sleep(for:)` and clock arithmetic trap on durations near
    /// `Duration.seconds(.max)`.
    package var clampedForSleeping: Duration { min(self, .noLimit) }
}
