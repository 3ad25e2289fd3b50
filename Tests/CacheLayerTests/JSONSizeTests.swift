import CommonSupport
@testable import CacheLayer
import Foundation
import Testing

@Suite("JSONSize")
struct JSONSizeTests {
    static let encoder = JSONCacheCodec()

    func encodedCount<Value: Encodable>(_ value: Value) throws -> Int {
        try Self.encoder.encode(value).count
    }

    @Test func stringSizesMatchTheEncoderOnRandomStrings() throws {
        var random = SeededGenerator(seed: 42)
        // Weighted towards the characters JSON escapes, plus multi-byte and astral scalars.
        let special: [Unicode.Scalar] = ["\"", "\\", "/", "\u{08}", "\u{0C}", "\n", "\r", "\t", "\u{00}", "\u{1F}", "\u{7F}", "é", "\u{2028}", "\u{2029}", "😀", "<", "&", "'"]
        for _ in 0..<2_000 {
            var scalars = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 0..<40, using: &random) {
                if Bool.random(using: &random) {
                    scalars.append(special.randomElement(using: &random)!)
                } else {
                    var scalar: Unicode.Scalar?
                    while scalar == nil { scalar = Unicode.Scalar(UInt32.random(in: 0...0x1FFFF, using: &random)) }
                    scalars.append(scalar!)
                }
            }
            let string = String(scalars)
            #expect(JSONSize.of(string) == (try encodedCount(string)), "\(string.debugDescription)")
        }
    }

    @Test func integerAndBoolSizesMatchTheEncoder() throws {
        var random = SeededGenerator(seed: 1)
        let fixed: [Int] = [0, 1, -1, 9, 10, -10, 99, 100, Int.max, Int.min]
        for value in fixed + (0..<500).map({ _ in Int.random(in: .min ... .max, using: &random) >> Int.random(in: 0..<63, using: &random) }) {
            #expect(JSONSize.of(value) == (try encodedCount(value)))
        }
        #expect(JSONSize.of(UInt64.max) == (try encodedCount(UInt64.max)))
        #expect(JSONSize.of(Int32.min) == (try encodedCount(Int32.min)))
        #expect(JSONSize.of(UInt.zero) == (try encodedCount(UInt.zero)))
        #expect(JSONSize.of(UInt32(4_000_000_000)) == (try encodedCount(UInt32(4_000_000_000))))
        #expect(JSONSize.of(Int64(-77)) == (try encodedCount(Int64(-77))))
        #expect(JSONSize.of(true) == (try encodedCount(true)))
        #expect(JSONSize.of(false) == (try encodedCount(false)))
    }

    @Test func dataAndByteArraySizesMatchTheEncoder() throws {
        var random = SeededGenerator(seed: 3)
        for length in (0..<64).map({ $0 }) + [255, 256, 1000] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            #expect(JSONSize.of(Data(bytes)) == (try encodedCount(Data(bytes))), "\(bytes)")
            #expect(JSONSize.of(bytes) == (try encodedCount(bytes)))
        }
        // All ones encode to "////" in Base64, each escaped.
        let slashes = Data(repeating: 0xFF, count: 6)
        #expect(JSONSize.of(slashes) == (try encodedCount(slashes)))
    }

    @Test func otherTypesFallBackToTheCodec() {
        #expect(JSONSize.of(1.5) == nil)
        #expect(JSONSize.of(["a"]) == nil)
        #expect(JSONSize.of(Optional("a")) == nil)
    }
}
