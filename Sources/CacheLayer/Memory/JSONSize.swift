import Foundation

/// The exact number of bytes `JSONCacheCodec` produces for common value types, computed without encoding.
///
/// Encoding every value on `set` just to learn its size costs far more than the cache operation itself, so
/// the memory cache uses these formulas when its codec is the JSON codec. They match Foundation's
/// `JSONEncoder` byte for byte (a test compares them against the real encoder): strings are quoted; `"`,
/// `\`, `/`, and the control characters `\b \f \n \r \t` take two bytes, other control characters six
/// (`\u00XX`), everything else its UTF-8 length; `Data` is quoted Base64 in which `/` is escaped too;
/// `[UInt8]` is an array of numbers. Returns `nil` for other types; the caller then encodes the value.
package enum JSONSize {
    package static func of<Value>(_ value: Value) -> Int? {
        // Metatype comparisons are pointer compares; the bit casts below are exact because the types are equal.
        if Value.self == String.self { return string(unsafeBitCast(value, to: String.self)) }
        if Value.self == Int.self { return integer(unsafeBitCast(value, to: Int.self)) }
        if Value.self == Bool.self { return unsafeBitCast(value, to: Bool.self) ? 4 : 5 }
        if Value.self == Data.self { return data(unsafeBitCast(value, to: Data.self)) }
        if Value.self == [UInt8].self { return byteArray(unsafeBitCast(value, to: [UInt8].self)) }
        if Value.self == Int64.self { return integer(unsafeBitCast(value, to: Int64.self)) }
        if Value.self == Int32.self { return integer(unsafeBitCast(value, to: Int32.self)) }
        if Value.self == UInt.self { return integer(unsafeBitCast(value, to: UInt.self)) }
        if Value.self == UInt64.self { return integer(unsafeBitCast(value, to: UInt64.self)) }
        if Value.self == UInt32.self { return integer(unsafeBitCast(value, to: UInt32.self)) }
        return nil
    }

    /// A JSON string literal: quotes plus each byte's escaped length.
    package static func string(_ string: String) -> Int {
        if let size = string.utf8.withContiguousStorageIfAvailable(escapedSize) { return size }
        var size = 2
        for byte in string.utf8 {
            size += escapedLength(byte)
        }
        return size
    }

    /// The quoted, escaped length of UTF-8 `bytes`, eight bytes at a time: a word with no byte below 0x20 and
    /// no `"`, `\` or `/` (the usual case) adds 8 without looking at its bytes one by one.
    private static func escapedSize(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        @inline(__always) func hasZeroByte(_ word: UInt64) -> Bool { (word &- ones) & ~word & highs != 0 }
        var size = 2 + bytes.count
        var index = 0
        if let base = bytes.baseAddress {
            while index + 8 <= bytes.count {
                let word = UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)
                // Exact "some byte < 0x20" test (Bit Twiddling Hacks' hasless), then equality with each special.
                let special = (word &- ones &* 0x20) & ~word & highs != 0
                    || hasZeroByte(word ^ (ones &* 0x22)) || hasZeroByte(word ^ (ones &* 0x5C)) || hasZeroByte(word ^ (ones &* 0x2F))
                if special {
                    for offset in index..<(index + 8) { size += escapedLength(bytes[offset]) - 1 }
                }
                index += 8
            }
        }
        while index < bytes.count {
            size += escapedLength(bytes[index]) - 1
            index += 1
        }
        return size
    }

    @inline(__always)
    private static func escapedLength(_ byte: UInt8) -> Int {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): 2
        case 0x08, 0x0C, 0x0A, 0x0D, 0x09: 2
        case 0x00..<0x20: 6
        default: 1
        }
    }

    /// Decimal digits plus a minus sign.
    package static func integer<I: BinaryInteger>(_ value: I) -> Int {
        var magnitude = value.magnitude
        var digits = 1
        while magnitude >= 10 {
            magnitude /= 10
            digits += 1
        }
        return value < 0 ? digits + 1 : digits
    }

    /// Quoted Base64 with padding, where every `/` (the 6-bit group 63) is written as `\/`.
    package static func data(_ data: Data) -> Int {
        let base64 = (data.count + 2) / 3 * 4
        var slashes = 0
        data.withUnsafeBytes { bytes in
            var index = 0
            while index < bytes.count {
                let b0 = UInt32(bytes[index])
                let b1 = index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0
                let b2 = index + 2 < bytes.count ? UInt32(bytes[index + 2]) : 0
                let group = b0 << 16 | b1 << 8 | b2
                let characters = min(4, (bytes.count - index) * 8 / 6 + 1)
                for position in 0..<characters where (group >> (18 - 6 * UInt32(position))) & 0x3F == 63 {
                    slashes += 1
                }
                index += 3
            }
        }
        return base64 + 2 + slashes
    }

    /// `[1,2,255]`: brackets, digits and commas.
    package static func byteArray(_ bytes: [UInt8]) -> Int {
        if bytes.isEmpty { return 2 }
        var size = 2 + bytes.count - 1
        for byte in bytes {
            size += byte >= 100 ? 3 : (byte >= 10 ? 2 : 1)
        }
        return size
    }
}
