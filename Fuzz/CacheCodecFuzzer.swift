// libFuzzer entry point for the cache codec; built by `scripts/fuzz codec` together with CacheCodec.swift.
//
// What a corrupted or foreign value stored under a key goes through: `get` hands the stored bytes to the codec
// (RedisCache maps a DecodingError to `typeMismatch`, anything else to `decodingFailed`). For every input it
// decodes the bytes as each of several value types and checks that JSONCacheCodec
// - never crashes, traps or allocates without bound (ASan + libFuzzer's limits),
// - fails only by throwing,
// - round-trips what it accepts: a decoded value, encoded again, decodes to an equal value.
import Foundation

/// A typical cached record.
private struct User: Codable, Equatable {
    var id: Int
    var name: String
    var tags: [String]
    var created: Date?
    var avatar: Data?
}

/// The shape getOrSet's fail-safe and early refresh store (CacheEnvelope in Cache+GetOrSet.swift).
private struct Envelope<Value: Codable & Equatable>: Codable, Equatable {
    var value: Value
    var expiresAt: Int64
    var refreshAt: Int64?
}

private let codec = JSONCacheCodec()

private func check<Value: Codable & Equatable>(_ type: Value.Type, _ bytes: [UInt8]) {
    guard let value = try? codec.decode(type, from: bytes) else { return }
    // A value that decodes but cannot be encoded again (say, a Double out of JSON's range) is fine: it throws.
    guard let encoded = try? codec.encode(value) else { return }
    let again: Value
    do {
        again = try codec.decode(type, from: encoded)
    } catch {
        preconditionFailure("\(Value.self): re-encoded bytes do not decode: \(error)")
    }
    precondition(again == value, "\(Value.self): round trip changed \(value) into \(again)")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCacheCodec(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let start else { return 0 }
    let bytes = [UInt8](UnsafeRawBufferPointer(start: start, count: count))
    check(String.self, bytes)
    check(Int.self, bytes)
    check(Int64.self, bytes)
    check(Double.self, bytes)
    check(Bool.self, bytes)
    check([String].self, bytes)
    check([String: Int].self, bytes)
    check(Int?.self, bytes)
    check(Date.self, bytes)
    check(Data.self, bytes)
    check(User.self, bytes)
    check([User].self, bytes)
    check(Envelope<User>.self, bytes)
    check(Envelope<String>.self, bytes)
    return 0
}

// SwiftPM links executables with `main` aliased to `<module>_main`, so libFuzzer's own `main` is not used:
// provide that entry point and hand control to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafeRawPointer?, Int) -> CInt
) -> CInt

@_cdecl("CacheCodecFuzzer_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { fuzzCacheCodec($0, $1) }
}
