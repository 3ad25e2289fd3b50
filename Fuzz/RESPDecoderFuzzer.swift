// libFuzzer entry point for the RESP decoder; built by scripts/fuzz together with Sources/RedisClient/RESP/*.swift.
//
// For every input it checks that the decoder
// - never crashes, traps or allocates without bound (ASan + libFuzzer's -rss_limit_mb / -malloc_limit_mb),
// - decodes the same values whether the bytes arrive at once or in chunks (chunk size from the first byte),
// - decodes what it encodes: every decoded value, re-encoded, decodes to an equal value.
import NIOCore

private func decodeAll(_ input: ByteBuffer, chunkSize: Int) -> (values: [RESPValue], failed: Bool) {
    let processor = NIOSingleStepByteToMessageProcessor(
        RESPDecoder(maxBulkLength: 1 << 20, maxDepth: 32, maxLineLength: 1 << 16)
    )
    var values: [RESPValue] = []
    var remaining = input
    do {
        while remaining.readableBytes > 0 {
            let chunk = remaining.readSlice(length: min(chunkSize, remaining.readableBytes))!
            try processor.process(buffer: chunk) { values.append($0) }
        }
        return (values, false)
    } catch {
        return (values, true)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRESPDecoder(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let start, count > 0 else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    let chunkSize = Int(bytes[0] % 16) + 1
    let input = ByteBuffer(bytes: bytes.dropFirst())

    let whole = decodeAll(input, chunkSize: Int.max)
    let chunked = decodeAll(input, chunkSize: chunkSize)
    if !whole.failed && !chunked.failed {
        precondition(whole.values == chunked.values, "chunked decoding differs from whole decoding")
    } else {
        let common = min(whole.values.count, chunked.values.count)
        precondition(Array(whole.values.prefix(common)) == Array(chunked.values.prefix(common)), "prefix differs")
    }

    for value in whole.values {
        var encoded = ByteBuffer()
        RESPEncoder.writeValue(value, into: &encoded)
        let again = decodeAll(encoded, chunkSize: Int.max)
        precondition(!again.failed && again.values == [value], "round trip failed for \(value)")
    }
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

@_cdecl("RESPDecoderFuzzer_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { fuzzRESPDecoder($0, $1) }
}
