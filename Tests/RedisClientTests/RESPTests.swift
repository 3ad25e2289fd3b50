import CommonSupport
import NIOCore
import Testing

@testable import RedisClient

func randomValue(_ rng: inout SplitMix64, depth: Int = 0) -> RESPValue {
    func bytes(_ rng: inout SplitMix64, max: Int = 40) -> ByteBuffer {
        let count = Int.random(in: 0...max, using: &rng)
        return ByteBuffer(bytes: (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) })
    }
    func line(_ rng: inout SplitMix64) -> ByteBuffer {
        // Simple strings may not contain CR or LF.
        let count = Int.random(in: 0...20, using: &rng)
        return ByteBuffer(bytes: (0..<count).map { _ in UInt8.random(in: 32...126, using: &rng) })
    }
    let leaf = depth >= 4
    switch Int.random(in: 0..<(leaf ? 10 : 15), using: &rng) {
    case 0: return .simpleString(line(&rng))
    case 1: return .simpleError(line(&rng))
    case 2: return .integer(Int64.random(in: .min ... .max, using: &rng))
    case 3: return .bulkString(bytes(&rng))
    case 4: return .bulkError(bytes(&rng))
    case 5:
        let choices: [Double] = [0, -0.5, 1e300, .infinity, -.infinity, .nan, 3.25]
        return Bool.random(using: &rng)
            ? .double(choices[Int.random(in: 0..<choices.count, using: &rng)])
            : .double(Double.random(in: -1e9...1e9, using: &rng))
    case 6: return .boolean(Bool.random(using: &rng))
    case 7:
        let digits = (0..<Int.random(in: 1...60, using: &rng)).map { _ in Character(String(Int.random(in: 0...9, using: &rng))) }
        return .bigNumber(ByteBuffer(string: (Bool.random(using: &rng) ? "-" : "") + String(digits)))
    case 8: return .verbatimString(format: Bool.random(using: &rng) ? "txt" : "mkd", bytes(&rng))
    case 9: return .null
    default:
        let count = Int.random(in: 0...5, using: &rng)
        let elements = (0..<count).map { _ in randomValue(&rng, depth: depth + 1) }
        switch Int.random(in: 0..<5, using: &rng) {
        case 0: return .array(elements)
        case 1: return .set(elements)
        case 2: return .push(elements)
        case 3: return .map((0..<count).map { _ in (randomValue(&rng, depth: depth + 1), randomValue(&rng, depth: depth + 1)) })
        default:
            return .attribute([(.simpleString(ByteBuffer(string: "ttl")), .integer(3))], randomValue(&rng, depth: depth + 1))
        }
    }
}

func encode(_ value: RESPValue) -> ByteBuffer {
    var buffer = ByteBuffer()
    RESPEncoder.writeValue(value, into: &buffer)
    return buffer
}

/// Decodes every complete value in `buffer`, feeding it in chunks of the given sizes.
func decodeAll(_ buffer: ByteBuffer, chunks: [Int], decoder: RESPDecoder = RESPDecoder()) throws -> [RESPValue] {
    let processor = NIOSingleStepByteToMessageProcessor(decoder)
    var values: [RESPValue] = []
    var remaining = buffer
    var index = 0
    while remaining.readableBytes > 0 {
        let size = min(max(1, chunks[index % chunks.count]), remaining.readableBytes)
        index += 1
        let chunk = remaining.readSlice(length: size)!
        try processor.process(buffer: chunk) { values.append($0) }
    }
    return values
}

@Suite("RESP decoder and encoder")
struct RESPTests {
    @Test("every RESP3 type decodes from its wire form")
    func decodesEveryType() throws {
        let wire =
            "+OK\r\n-ERR bad\r\n:-42\r\n$5\r\nhe\r\no\r\n$-1\r\n*-1\r\n*2\r\n:1\r\n$0\r\n\r\n%1\r\n+k\r\n#t\r\n"
            + "~1\r\n,3.5\r\n,inf\r\n,-inf\r\n(12345678901234567890\r\n=7\r\ntxt:abc\r\n_\r\n>2\r\n+a\r\n+b\r\n"
            + "|1\r\n+key\r\n:1\r\n+real\r\n!4\r\nOOPS\r\n#f\r\n"
        let values = try decodeAll(ByteBuffer(string: wire), chunks: [wire.utf8.count])
        let expected: [RESPValue] = [
            .simpleString(ByteBuffer(string: "OK")),
            .simpleError(ByteBuffer(string: "ERR bad")),
            .integer(-42),
            .bulkString(ByteBuffer(string: "he\r\no")),
            .null,
            .null,
            .array([.integer(1), .bulkString(ByteBuffer())]),
            .map([(.simpleString(ByteBuffer(string: "k")), .boolean(true))]),
            .set([.double(3.5)]),
            .double(.infinity),
            .double(-.infinity),
            .bigNumber(ByteBuffer(string: "12345678901234567890")),
            .verbatimString(format: "txt", ByteBuffer(string: "abc")),
            .null,
            .push([.simpleString(ByteBuffer(string: "a")), .simpleString(ByteBuffer(string: "b"))]),
            .attribute([(.simpleString(ByteBuffer(string: "key")), .integer(1))], .simpleString(ByteBuffer(string: "real"))),
            .bulkError(ByteBuffer(string: "OOPS")),
            .boolean(false),
        ]
        #expect(values == expected)
    }

    @Test("random values survive encode → decode", arguments: [1, 2, 3, 4, 5] as [UInt64])
    func randomRoundTrip(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        for _ in 0..<300 {
            let value = randomValue(&rng)
            let decoded = try decodeAll(encode(value), chunks: [Int.random(in: 1...64, using: &rng)])
            #expect(decoded == [value], "seed \(seed)")
        }
    }

    @Test("a stream split at every byte offset decodes to the same values")
    func splitAtEveryByte() throws {
        var rng = SplitMix64(seed: 42)
        let values = (0..<20).map { _ in randomValue(&rng) }
        var stream = ByteBuffer()
        for value in values { RESPEncoder.writeValue(value, into: &stream) }
        #expect(try decodeAll(stream, chunks: [1]) == values)
        for split in 1..<stream.readableBytes {
            #expect(try decodeAll(stream, chunks: [split, stream.readableBytes]) == values, "split at \(split)")
        }
    }

    @Test("a large aggregate arriving in many small reads decodes in linear time")
    func largeAggregateInSmallReads() throws {
        var wire = ByteBuffer()
        RESPEncoder.writeValue(.array((0..<50_000).map { .bulkString(ByteBuffer(string: "key:\($0)")) }), into: &wire)
        let start = ContinuousClock.now
        let values = try decodeAll(wire, chunks: [512])
        #expect(values.first?.array?.count == 50_000)
        // Re-parsing from the start on every read would be quadratic: about 6 * 10^8 byte steps here.
        // Generous, so that a loaded machine or the thread sanitizer (about 10x slower) cannot fail it.
        #expect(ContinuousClock.now - start < .seconds(120))
    }

    @Test("many replies in one read are all decoded")
    func manyRepliesInOneRead() throws {
        let wire = String(repeating: "+OK\r\n", count: 1000)
        #expect(try decodeAll(ByteBuffer(string: wire), chunks: [100_000]).count == 1000)
    }

    @Test("lengths over the limit are protocol errors without allocating", arguments: [
        "$600000000\r\n", "*9223372036854775807\r\n", "%99999999999\r\n", "$-5\r\n", "=2\r\nab\r\n",
        "$99999999999999999999999\r\n",
    ])
    func oversizedLengthsAreRejected(wire: String) {
        #expect(throws: RESPParsingError.self) {
            _ = try decodeAll(ByteBuffer(string: wire), chunks: [1000])
        }
    }

    @Test("nesting deeper than the limit is a protocol error")
    func deepNestingIsRejected() {
        let wire = String(repeating: "*1\r\n", count: 100) + ":1\r\n"
        #expect(throws: RESPParsingError(.nestingTooDeep)) {
            _ = try decodeAll(ByteBuffer(string: wire), chunks: [1000], decoder: RESPDecoder(maxDepth: 10))
        }
        // Within the limit it decodes.
        let shallow = String(repeating: "*1\r\n", count: 10) + ":1\r\n"
        #expect(throws: Never.self) {
            _ = try decodeAll(ByteBuffer(string: shallow), chunks: [3], decoder: RESPDecoder(maxDepth: 10))
        }
    }

    @Test("malformed input is a typed error", arguments: [
        "?\r\n", ":12a\r\n", "$3\r\nabcXY", "#x\r\n", ",1.2.3x\r\n", "+OK\rX", ":\r\n", "_x\r\n", "(12a\r\n",
    ])
    func malformedInputIsRejected(wire: String) {
        #expect(throws: RESPParsingError.self) {
            _ = try decodeAll(ByteBuffer(string: wire), chunks: [1000])
        }
    }

    @Test("a line without CRLF beyond the line limit is rejected rather than buffered forever")
    func unterminatedLineIsBounded() {
        let wire = "+" + String(repeating: "a", count: 2000)
        #expect(throws: RESPParsingError(.lineTooLong)) {
            _ = try decodeAll(ByteBuffer(string: wire), chunks: [100], decoder: RESPDecoder(maxLineLength: 1000))
        }
    }

    @Test("commands encode as arrays of bulk strings, binary-safe")
    func commandEncoding() {
        var buffer = ByteBuffer()
        RESPEncoder.writeCommand(["SET", "k\r\n", "1234567890"], into: &buffer)
        #expect(String(buffer: buffer) == "*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$10\r\n1234567890\r\n")
        let command = RedisCommand("SET", [UInt8]([0, 255]), 42, -7, ByteBuffer(string: "x"))
        var expected = Array("*5\r\n$3\r\nSET\r\n$2\r\n".utf8)
        expected += [0, 255]
        expected += Array("\r\n$2\r\n42\r\n$2\r\n-7\r\n$1\r\nx\r\n".utf8)
        #expect(Array(command.encoded.readableBytesView) == expected)
    }

    @Test(
        "bulk strings of every length class encode alike from arrays, strings, substrings, byte buffers and lazy sequences",
        arguments: [0, 1, 9, 10, 99, 100, 101, 999, 1000, 65_536, 1_000_001]
    )
    func bulkLengths(length: Int) {
        let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let text = String(repeating: "é", count: length / 2) + (length % 2 == 1 ? "x" : "")
        func encoded(_ value: some RESPBulkConvertible) -> [UInt8] {
            var buffer = ByteBuffer(string: "prefix")
            value.writeRESPBulk(into: &buffer)
            return Array(buffer.readableBytesView)
        }
        func expected(_ payload: [UInt8]) -> [UInt8] {
            Array("prefix$\(payload.count)\r\n".utf8) + payload + Array("\r\n".utf8)
        }
        #expect(encoded(bytes) == expected(bytes))
        #expect(encoded(ByteBuffer(bytes: bytes)) == expected(bytes))
        #expect(encoded(text) == expected(Array(text.utf8)))
        #expect(encoded(text[...]) == expected(Array(text.utf8)))
        // Not contiguous: the header, payload and CRLF are written separately.
        var lazy = ByteBuffer(string: "prefix")
        lazy.writeRESPBulk(bytes: bytes.lazy.map { $0 })
        #expect(Array(lazy.readableBytesView) == expected(bytes))
    }

    @Test("SET options encode in order")
    func setOptions() {
        let command = RedisCommand.set("k", value: "v", expiration: .after(.milliseconds(1500)), condition: .ifNotExists, returnOldValue: true)
        #expect(String(buffer: command.encoded) == "*7\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nPX\r\n$4\r\n1500\r\n$2\r\nNX\r\n$3\r\nGET\r\n")
    }
}
