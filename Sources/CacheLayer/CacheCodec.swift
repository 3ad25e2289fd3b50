import Foundation

/// Turns values into bytes and back. Redis stores the bytes; the memory cache uses the encoded size
/// to account for memory.
///
/// Conform a type to use another format (MessagePack, Protobuf, …) and pass it to the cache.
public protocol CacheCodec: Sendable {
    /// Encodes a value.
    func encode<Value: Encodable>(_ value: Value) throws -> [UInt8]
    /// Decodes a value of the given type.
    func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8]) throws -> Value
}

/// The default codec: JSON through Foundation's `JSONEncoder` and `JSONDecoder`.
public struct JSONCacheCodec: CacheCodec {
    /// Creates a JSON codec. Dates are stored as ISO 8601 strings, data as Base64.
    public init() {}

    public func encode<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        return Array(try encoder.encode(value))
    }

    public func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8]) throws -> Value {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(type, from: Data(bytes))
    }
}

extension CacheCodec where Self == JSONCacheCodec {
    /// JSON through Foundation (the default).
    public static var json: JSONCacheCodec { JSONCacheCodec() }
}
