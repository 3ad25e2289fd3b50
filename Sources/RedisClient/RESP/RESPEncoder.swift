import NIOCore

/// A value that can be sent as one argument of a Redis command (a RESP bulk string).
///
/// Conformers write their bytes straight into the outgoing buffer, so building a command allocates
/// nothing but that buffer. `String`, `Substring`, `ByteBuffer`, `[UInt8]`, `Int`, `Int64` and
/// `Double` conform; conform your own key types to send them without converting first.
public protocol RESPBulkConvertible: Sendable {
    /// Writes `self` as a complete bulk string (`$<length>\r\n<bytes>\r\n`) into `buffer`.
    func writeRESPBulk(into buffer: inout ByteBuffer)
}

extension ByteBuffer {
    /// Writes a non-negative integer in decimal, without going through `String`.
    package mutating func writeRESPDecimal(_ value: Int) {
        if value < 10 {
            self.writeInteger(UInt8(truncatingIfNeeded: value) &+ UInt8(ascii: "0"))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for 20 decimal digits
        withUnsafeMutableBytes(of: &digits) { raw in
            var count = 0
            var v = value.magnitude
            while v > 0 {
                count += 1
                raw[24 - count] = UInt8(truncatingIfNeeded: v % 10) &+ UInt8(ascii: "0")
                v /= 10
            }
            self.writeBytes(UnsafeRawBufferPointer(rebasing: raw[(24 - count)...]))
        }
    }

    /// Writes `<prefix><length>\r\n`, the header of a bulk string or aggregate, in a single write
    /// (each ByteBuffer write has a fixed cost, and commands are mostly headers).
    package mutating func writeRESPHeader(_ prefix: UInt8, _ length: Int) {
        var scratch: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)  // 32 bytes: prefix, sign, 20 digits, CRLF
        withUnsafeMutableBytes(of: &scratch) { raw in
            var index = 31
            raw[index] = UInt8(ascii: "\n")
            index -= 1
            raw[index] = UInt8(ascii: "\r")
            var v = length.magnitude
            repeat {
                index -= 1
                raw[index] = UInt8(truncatingIfNeeded: v % 10) &+ UInt8(ascii: "0")
                v /= 10
            } while v > 0
            if length < 0 {
                index -= 1
                raw[index] = UInt8(ascii: "-")
            }
            index -= 1
            raw[index] = prefix
            self.writeBytes(UnsafeRawBufferPointer(rebasing: raw[index...]))
        }
    }

    /// Writes raw bytes as a bulk string.
    package mutating func writeRESPBulk(bytes: some Collection<UInt8>) {
        let written: Void? = bytes.withContiguousStorageIfAvailable { self.writeRESPBulk(contiguous: UnsafeRawBufferPointer($0)) }
        if written == nil {
            self.writeRESPHeader(UInt8(ascii: "$"), bytes.count)
            self.writeBytes(bytes)
            self.writeInteger(UInt16(0x0D0A))
        }
    }

    /// Writes contiguous bytes as a bulk string: header, payload and CRLF in one write into reserved space (every
    /// ByteBuffer write pays a uniqueness and an exclusivity check; an argument is three of them otherwise).
    package mutating func writeRESPBulk(contiguous bytes: UnsafeRawBufferPointer) {
        let length = bytes.count
        // `$`, at most 20 digits, CRLF, the payload, CRLF.
        self.writeWithUnsafeMutableBytes(minimumWritableBytes: length + 25) { target in
            var digits = 1
            var rest = length / 10
            while rest > 0 {
                digits += 1
                rest /= 10
            }
            target[0] = UInt8(ascii: "$")
            var v = length
            var index = digits
            repeat {
                target[index] = UInt8(truncatingIfNeeded: v % 10) &+ UInt8(ascii: "0")
                v /= 10
                index -= 1
            } while v > 0
            target[digits + 1] = UInt8(ascii: "\r")
            target[digits + 2] = UInt8(ascii: "\n")
            let payloadStart = digits + 3
            if length > 0 {
                UnsafeMutableRawBufferPointer(rebasing: target[payloadStart..<(payloadStart + length)]).copyMemory(from: bytes)
            }
            target[payloadStart + length] = UInt8(ascii: "\r")
            target[payloadStart + length + 1] = UInt8(ascii: "\n")
            return payloadStart + length + 2
        }
    }
}

extension String: RESPBulkConvertible {
    /// Writes the UTF-8 bytes of the string.
    public func writeRESPBulk(into buffer: inout ByteBuffer) {
        var copy = self
        copy.withUTF8 { buffer.writeRESPBulk(contiguous: UnsafeRawBufferPointer($0)) }
    }
}

extension Substring: RESPBulkConvertible {
    /// Writes the UTF-8 bytes of the substring.
    public func writeRESPBulk(into buffer: inout ByteBuffer) {
        buffer.writeRESPBulk(bytes: self.utf8)
    }
}

extension ByteBuffer: RESPBulkConvertible {
    /// Writes the readable bytes of the buffer.
    public func writeRESPBulk(into buffer: inout ByteBuffer) {
        self.withUnsafeReadableBytes { buffer.writeRESPBulk(contiguous: $0) }
    }
}

extension Array: RESPBulkConvertible where Element == UInt8 {
    /// Writes the bytes as they are (binary-safe).
    public func writeRESPBulk(into buffer: inout ByteBuffer) {
        buffer.writeRESPBulk(bytes: self)
    }
}

extension Int: RESPBulkConvertible {
    /// Writes the integer in decimal, as Redis expects numeric arguments.
    public func writeRESPBulk(into buffer: inout ByteBuffer) {
        if self >= 0 {
            // Header first needs the digit count: compute it cheaply.
            var digits = 1
            var v = self
            while v >= 10 {
                v /= 10
                digits += 1
            }
            buffer.writeRESPHeader(UInt8(ascii: "$"), digits)
            buffer.writeRESPDecimal(self)
            buffer.writeInteger(UInt16(0x0D0A))
        } else {
            String(self).writeRESPBulk(into: &buffer)
        }
    }
}

extension Int64: RESPBulkConvertible {
    /// Writes the integer in decimal.
    public func writeRESPBulk(into buffer: inout ByteBuffer) {
        Int(self).writeRESPBulk(into: &buffer)
    }
}

extension Double: RESPBulkConvertible {
    /// Writes the number in Swift's shortest round-tripping decimal form (`inf`, `-inf` for infinities).
    public func writeRESPBulk(into buffer: inout ByteBuffer) {
        let text: String
        if self == .infinity {
            text = "inf"
        } else if self == -.infinity {
            text = "-inf"
        } else {
            text = String(self)
        }
        text.writeRESPBulk(into: &buffer)
    }
}

/// Encodes commands and values as RESP.
package enum RESPEncoder {
    /// Writes a command, an array of bulk strings, into `buffer`.
    package static func writeCommand(_ arguments: some Collection<some RESPBulkConvertible>, into buffer: inout ByteBuffer) {
        buffer.writeRESPHeader(UInt8(ascii: "*"), arguments.count)
        for argument in arguments { argument.writeRESPBulk(into: &buffer) }
    }

    /// Writes any value in RESP3 syntax. The client itself only sends commands; this exists for tests,
    /// fuzzing seeds and fake servers.
    package static func writeValue(_ value: RESPValue, into buffer: inout ByteBuffer) {
        switch value {
        case .simpleString(let b): writeLine(UInt8(ascii: "+"), b, into: &buffer)
        case .simpleError(let b): writeLine(UInt8(ascii: "-"), b, into: &buffer)
        case .integer(let i):
            buffer.writeInteger(UInt8(ascii: ":"))
            buffer.writeString(String(i))
            buffer.writeInteger(UInt16(0x0D0A))
        case .bulkString(let b): b.writeRESPBulk(into: &buffer)
        case .bulkError(let b):
            buffer.writeRESPHeader(UInt8(ascii: "!"), b.readableBytes)
            buffer.writeImmutableBuffer(b)
            buffer.writeInteger(UInt16(0x0D0A))
        case .verbatimString(let format, let b):
            buffer.writeRESPHeader(UInt8(ascii: "="), b.readableBytes + 4)
            buffer.writeString(format)
            buffer.writeInteger(UInt8(ascii: ":"))
            buffer.writeImmutableBuffer(b)
            buffer.writeInteger(UInt16(0x0D0A))
        case .array(let a): writeAggregate(UInt8(ascii: "*"), a, into: &buffer)
        case .set(let a): writeAggregate(UInt8(ascii: "~"), a, into: &buffer)
        case .push(let a): writeAggregate(UInt8(ascii: ">"), a, into: &buffer)
        case .map(let pairs): writePairs(UInt8(ascii: "%"), pairs, into: &buffer)
        case .attribute(let pairs, let inner):
            writePairs(UInt8(ascii: "|"), pairs, into: &buffer)
            writeValue(inner, into: &buffer)
        case .double(let d):
            buffer.writeInteger(UInt8(ascii: ","))
            if d.isNaN {
                buffer.writeString("nan")
            } else if d == .infinity {
                buffer.writeString("inf")
            } else if d == -.infinity {
                buffer.writeString("-inf")
            } else {
                buffer.writeString(String(d))
            }
            buffer.writeInteger(UInt16(0x0D0A))
        case .boolean(let b): buffer.writeString(b ? "#t\r\n" : "#f\r\n")
        case .bigNumber(let b): writeLine(UInt8(ascii: "("), b, into: &buffer)
        case .null: buffer.writeString("_\r\n")
        }
    }

    private static func writeLine(_ prefix: UInt8, _ line: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeInteger(prefix)
        buffer.writeImmutableBuffer(line)
        buffer.writeInteger(UInt16(0x0D0A))
    }

    private static func writeAggregate(_ prefix: UInt8, _ elements: [RESPValue], into buffer: inout ByteBuffer) {
        buffer.writeRESPHeader(prefix, elements.count)
        for element in elements { writeValue(element, into: &buffer) }
    }

    private static func writePairs(
        _ prefix: UInt8,
        _ pairs: [(key: RESPValue, value: RESPValue)],
        into buffer: inout ByteBuffer
    ) {
        buffer.writeRESPHeader(prefix, pairs.count)
        for pair in pairs {
            writeValue(pair.key, into: &buffer)
            writeValue(pair.value, into: &buffer)
        }
    }
}
