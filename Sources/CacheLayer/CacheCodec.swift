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
    // One encoder and decoder for every call: building them per value dominated batch reads of small values.
    // Both are Sendable and safe to use from several threads at once; their options are never changed here.
    private let encoder: JSONEncoder
    private let decoder: JSONDecoder

    /// Creates a JSON codec. Dates are stored as ISO 8601 strings, data as Base64.
    public init() {
        encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
    }

    public func encode<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        Array(try encoder.encode(value))
    }

    public func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8]) throws -> Value {
        try decoder.decode(type, from: Data(bytes))
    }
}

extension CacheCodec where Self == JSONCacheCodec {
    /// JSON through Foundation (the default).
    public static var json: JSONCacheCodec { JSONCacheCodec() }
}
