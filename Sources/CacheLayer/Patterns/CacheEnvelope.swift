/// A value with the times fail-safe and early refresh need, stored in its place.
///
/// Plain reads (`get`, `getMany`, `require`) see through it: every backend returns the value inside, or a miss once
/// `expiresAt` has passed. Backends that keep Swift values compare the stored type with `CacheEnvelope<Value>`;
/// backends that keep bytes store it framed (see ``EnvelopeFraming``), so a plain read recognises it by its first
/// byte instead of attempting a second decode.
struct CacheEnvelope<Value: Codable & Sendable>: Codable, Sendable {
    /// The value.
    var value: Value
    /// When the value goes stale, in milliseconds since 1970 on the writer's wall clock; `Int64.max` for never.
    var expiresAt: Int64
    /// When a read should start a background refresh, same unit; `nil` without early refresh.
    var refreshAt: Int64?
}

/// An envelope whose value type is not known statically: lets a backend frame and unframe any envelope.
protocol AnyCacheEnvelope: Codable, Sendable {
    /// The bytes stored for this envelope: the frame header, then the value as `codec` encodes it.
    func framed(with codec: any CacheCodec) throws -> [UInt8]
    /// The envelope in `bytes`, which ``EnvelopeFraming/isFramed(_:)`` accepted.
    static func unframed(_ bytes: [UInt8], with codec: any CacheCodec) throws -> Self
}

extension CacheEnvelope: AnyCacheEnvelope {
    func framed(with codec: any CacheCodec) throws -> [UInt8] {
        EnvelopeFraming.frame(expiresAt: expiresAt, refreshAt: refreshAt, payload: try codec.encode(value))
    }

    static func unframed(_ bytes: [UInt8], with codec: any CacheCodec) throws -> CacheEnvelope<Value> {
        let header = EnvelopeFraming.header(of: bytes)
        let value = try codec.decode(Value.self, from: Array(bytes[EnvelopeFraming.headerSize...]))
        return CacheEnvelope(value: value, expiresAt: header.expiresAt, refreshAt: header.refreshAt)
    }
}

/// How backends that store bytes store an envelope: a 5-byte marker, the two times (big-endian `Int64`s,
/// `Int64.min` for no refresh time), then the value's own encoding.
///
/// The marker starts with a zero byte, which no JSON document starts with (and which a MessagePack or Protobuf
/// encoding of a whole value does not continue with these bytes), so a read checks one byte to tell an envelope
/// from a plain value.
enum EnvelopeFraming {
    static let marker: [UInt8] = [0x00, 0x43, 0x4C, 0x45, 0x01]   // NUL "CLE" version 1
    static let headerSize = marker.count + 16

    /// Whether `bytes` hold a framed envelope.
    @inline(__always)
    static func isFramed(_ bytes: [UInt8]) -> Bool {
        bytes.first == 0 && bytes.count >= headerSize && bytes[1] == marker[1] && bytes[2] == marker[2]
            && bytes[3] == marker[3] && bytes[4] == marker[4]
    }

    static func frame(expiresAt: Int64, refreshAt: Int64?, payload: [UInt8]) -> [UInt8] {
        var bytes = marker
        bytes.reserveCapacity(headerSize + payload.count)
        append(expiresAt, to: &bytes)
        append(refreshAt ?? .min, to: &bytes)
        bytes += payload
        return bytes
    }

    /// The times in the header of framed `bytes`.
    static func header(of bytes: [UInt8]) -> (expiresAt: Int64, refreshAt: Int64?) {
        let refreshAt = read(bytes, at: marker.count + 8)
        return (read(bytes, at: marker.count), refreshAt == .min ? nil : refreshAt)
    }

    private static func append(_ value: Int64, to bytes: inout [UInt8]) {
        let bits = UInt64(bitPattern: value)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
    }

    private static func read(_ bytes: [UInt8], at offset: Int) -> Int64 {
        var bits: UInt64 = 0
        for index in offset..<(offset + 8) { bits = bits << 8 | UInt64(bytes[index]) }
        return Int64(bitPattern: bits)
    }
}

// MARK: - Reading and writing for Cache conformances

extension CachePatternsState {
    /// The bytes a ``Cache`` that stores bytes keeps for `value`: what `codec` makes of it, or, for a value that
    /// ``Cache/getOrSet(_:as:ttl:options:factory:)`` wrote with fail-safe or early refresh, that behind a
    /// 21-byte header with its times.
    ///
    /// Use it with ``decode(_:from:with:)`` so plain reads of such values work (see ``Cache``).
    public func encode<Value: Encodable>(_ value: Value, with codec: any CacheCodec) throws -> [UInt8] {
        if let envelope = value as? any AnyCacheEnvelope { return try envelope.framed(with: codec) }
        return try codec.encode(value)
    }

    /// The value in `bytes` written by ``encode(_:with:)``.
    ///
    /// A value written by fail-safe or early refresh reads as the value itself, or as `nil` (a miss) once its time
    /// to live has passed. Recognising one costs a check of the first byte.
    ///
    /// - Throws: What `codec` throws when the bytes do not decode as `Value`.
    public func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8], with codec: any CacheCodec) throws -> Value? {
        guard EnvelopeFraming.isFramed(bytes) else { return try codec.decode(type, from: bytes) }
        if let envelopeType = Value.self as? any AnyCacheEnvelope.Type {
            return try envelopeType.unframed(bytes, with: codec) as? Value
        }
        guard nowMilliseconds() < EnvelopeFraming.header(of: bytes).expiresAt else { return nil }
        return try codec.decode(type, from: Array(bytes[EnvelopeFraming.headerSize...]))
    }

    /// For a ``Cache`` that keeps Swift values: what `get(_:as:)` returns when the value stored under `key` is not a
    /// `Value` (after a cast `stored as? Value` failed).
    ///
    /// A value written by fail-safe or early refresh reads as the value itself, or as `nil` (a miss) once its time to
    /// live has passed; anything else throws ``CacheError/Code/typeMismatch``.
    public func value<Value: Codable & Sendable>(in stored: any Sendable, as type: Value.Type, key: String) throws(CacheError) -> Value? {
        guard let envelope = stored as? CacheEnvelope<Value> else {
            throw CacheError.typeMismatch(key: key, stored: String(describing: Swift.type(of: stored)), requested: "\(Value.self)")
        }
        return nowMilliseconds() < envelope.expiresAt ? envelope.value : nil
    }
}
