import NIOCore

/// Why a byte stream is not valid RESP. The connection turns it into a ``RedisError`` with the
/// `protocolError` code and closes, since the reply stream can no longer be trusted.
///
/// This file and the others in `RESP/` depend on NIOCore only, so `scripts/fuzz` can compile them alone.
package struct RESPParsingError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Reason: Sendable, Equatable {
        case invalidTypeByte(UInt8)
        case invalidInteger
        case invalidDouble
        case invalidBoolean
        case invalidLength
        case lengthTooLarge(Int64)
        case lineTooLong
        case nestingTooDeep
        case missingCRLF
        case invalidVerbatimString
    }

    package var reason: Reason

    package init(_ reason: Reason) { self.reason = reason }

    package var description: String {
        switch self.reason {
        case .invalidTypeByte(let b): return "unknown RESP type byte 0x\(String(b, radix: 16))"
        case .invalidInteger: return "malformed RESP integer"
        case .invalidDouble: return "malformed RESP double"
        case .invalidBoolean: return "malformed RESP boolean"
        case .invalidLength: return "malformed RESP length"
        case .lengthTooLarge(let n): return "RESP length \(n) exceeds the configured limit"
        case .lineTooLong: return "RESP line exceeds the configured limit without a CRLF"
        case .nestingTooDeep: return "RESP aggregates nested deeper than the configured limit"
        case .missingCRLF: return "RESP payload not terminated by CRLF"
        case .invalidVerbatimString: return "malformed RESP verbatim string"
        }
    }
}

/// An incremental RESP2/RESP3 decoder.
///
/// Feed it bytes as they arrive; it returns one complete top-level value at a time, or `nil` when the
/// buffer holds only part of one. Aggregates are decoded resumably: every complete element is consumed
/// and kept on a stack of open aggregates, so a huge array arriving in many reads costs linear time,
/// never a re-parse from its start. Strings are zero-copy slices of the input buffer.
///
/// Every length is checked against ``maxBulkLength`` before anything is read, aggregates grow only as
/// their elements are actually decoded (never pre-sized from an announced count), and nesting is bounded
/// by ``maxDepth``: hostile input yields a ``RESPParsingError``, never a crash or a large allocation.
/// After an error the decoder's state is undefined: the connection must be closed.
package struct RESPDecoder: NIOSingleStepByteToMessageDecoder {
    package typealias InboundOut = RESPValue

    /// Largest accepted bulk string / blob length.
    package var maxBulkLength: Int
    /// Most elements an aggregate may announce (a map or attribute counts its keys and values).
    package var maxAggregateCount: Int
    /// Largest accepted nesting of aggregates.
    package var maxDepth: Int
    /// Longest accepted line (simple strings, errors, numbers) before its CRLF.
    package var maxLineLength: Int

    /// 64 MiB: a cache value is far smaller; Redis itself accepts up to 512 MB (`proto-max-bulk-len`).
    package static let defaultMaxBulkLength = 64 * 1024 * 1024
    /// 1,048,576 elements: room for an `MGET` of a million keys.
    package static let defaultMaxAggregateCount = 1024 * 1024
    package static let defaultMaxDepth = 64
    package static let defaultMaxLineLength = 1024 * 1024

    /// An aggregate whose header has been read but not all of its elements.
    private struct Frame {
        var type: UInt8
        /// Elements (for maps and attributes: keys and values alternately; for attributes, then the value) still due.
        var remaining: Int
        var elements: [RESPValue] = []
    }

    /// The aggregates currently open, outermost first.
    private var open: [Frame] = []

    package init(
        maxBulkLength: Int = RESPDecoder.defaultMaxBulkLength,
        maxAggregateCount: Int = RESPDecoder.defaultMaxAggregateCount,
        maxDepth: Int = RESPDecoder.defaultMaxDepth,
        maxLineLength: Int = RESPDecoder.defaultMaxLineLength
    ) {
        self.maxBulkLength = maxBulkLength
        // At most a quarter of Int.max, so doubling a map's count (keys and values) cannot overflow.
        self.maxAggregateCount = min(maxAggregateCount, Int.max / 4)
        self.maxDepth = maxDepth
        self.maxLineLength = maxLineLength
    }

    package mutating func decode(buffer: inout ByteBuffer) throws -> RESPValue? {
        while true {
            // Parsing only moves the reader index, so an incomplete token is undone by moving it back (cheaper than
            // parsing a copy of the buffer: no retain and release per token).
            let start = buffer.readerIndex
            guard let token = try self.parseToken(&buffer) else {
                buffer.moveReaderIndex(to: start)
                return nil
            }
            var value: RESPValue
            switch token {
            case .value(let v):
                value = v
            case .aggregate(let type, let count):
                let due = type == UInt8(ascii: "%") ? count * 2 : type == UInt8(ascii: "|") ? count * 2 + 1 : count
                if due > 0 {
                    guard self.open.count < self.maxDepth else { throw RESPParsingError(.nestingTooDeep) }
                    // Deliberately no reserveCapacity(due): the count is untrusted.
                    self.open.append(Frame(type: type, remaining: due))
                    continue
                }
                value = Self.build(type: type, elements: [])
            }
            // Hand the finished value to the enclosing aggregates, closing those it completes.
            while !self.open.isEmpty {
                let last = self.open.count - 1
                self.open[last].elements.append(value)
                self.open[last].remaining -= 1
                guard self.open[last].remaining == 0 else { break }
                let frame = self.open.removeLast()
                value = Self.build(type: frame.type, elements: frame.elements)
            }
            if self.open.isEmpty { return value }
        }
    }

    package mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> RESPValue? {
        try self.decode(buffer: &buffer)
    }

    private static func build(type: UInt8, elements: [RESPValue]) -> RESPValue {
        switch type {
        case UInt8(ascii: "~"): return .set(elements)
        case UInt8(ascii: ">"): return .push(elements)
        case UInt8(ascii: "%"): return .map(pairs(elements[...]))
        case UInt8(ascii: "|"):
            // An attribute annotates the value that follows it; both form one value.
            return .attribute(pairs(elements.dropLast()), elements.last ?? .null)
        default: return .array(elements)
        }
    }

    private static func pairs(_ elements: ArraySlice<RESPValue>) -> [(key: RESPValue, value: RESPValue)] {
        var result: [(key: RESPValue, value: RESPValue)] = []
        result.reserveCapacity(elements.count / 2)  // elements already decoded: a trusted size
        var index = elements.startIndex
        while index + 1 < elements.endIndex {
            result.append((elements[index], elements[index + 1]))
            index += 2
        }
        return result
    }

    private enum Token {
        case value(RESPValue)
        case aggregate(type: UInt8, count: Int)
    }

    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")

    /// Parses a scalar value or the header of an aggregate from `buffer`, advancing it; `nil` when more bytes
    /// are needed (the buffer is then in an unspecified position).
    private func parseToken(_ buffer: inout ByteBuffer) throws -> Token? {
        guard let type = buffer.readInteger(as: UInt8.self) else { return nil }
        switch type {
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"):
            guard let count = try self.readLength(&buffer, limit: self.maxAggregateCount) else { return nil }
            if count < 0 {
                guard type == UInt8(ascii: "*") else { throw RESPParsingError(.invalidLength) }
                return .value(.null)
            }
            return .aggregate(type: type, count: count)
        case UInt8(ascii: "%"), UInt8(ascii: "|"):
            // Keys and values both count towards the limit.
            guard let count = try self.readLength(&buffer, limit: self.maxAggregateCount / 2) else { return nil }
            guard count >= 0 else { throw RESPParsingError(.invalidLength) }
            return .aggregate(type: type, count: count)
        default:
            guard let value = try self.parseScalar(type, &buffer) else { return nil }
            return .value(value)
        }
    }

    private func parseScalar(_ type: UInt8, _ buffer: inout ByteBuffer) throws -> RESPValue? {
        switch type {
        case UInt8(ascii: "+"):
            guard let line = try self.readLine(&buffer) else { return nil }
            return .simpleString(line)
        case UInt8(ascii: "-"):
            guard let line = try self.readLine(&buffer) else { return nil }
            return .simpleError(line)
        case UInt8(ascii: ":"):
            guard let line = try self.readLine(&buffer) else { return nil }
            return .integer(try line.withUnsafeReadableBytes { try Self.parseInteger($0) })
        case UInt8(ascii: "$"):
            guard let length = try self.readLength(&buffer) else { return nil }
            if length < 0 { return .null }
            guard let payload = try Self.readBlob(&buffer, length: length) else { return nil }
            return .bulkString(payload)
        case UInt8(ascii: "!"):
            guard let length = try self.readLength(&buffer) else { return nil }
            guard length >= 0 else { throw RESPParsingError(.invalidLength) }
            guard let payload = try Self.readBlob(&buffer, length: length) else { return nil }
            return .bulkError(payload)
        case UInt8(ascii: "="):
            guard let length = try self.readLength(&buffer) else { return nil }
            guard length >= 4 else { throw RESPParsingError(.invalidVerbatimString) }
            guard var payload = try Self.readBlob(&buffer, length: length) else { return nil }
            // The format is three printable ASCII characters (`txt`, `mkd`) and a colon.
            guard let formatBytes = payload.readBytes(length: 3),
                formatBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }),
                payload.readInteger(as: UInt8.self) == UInt8(ascii: ":")
            else { throw RESPParsingError(.invalidVerbatimString) }
            return .verbatimString(format: String(decoding: formatBytes, as: UTF8.self), payload)
        case UInt8(ascii: "("):
            guard let line = try self.readLine(&buffer) else { return nil }
            try Self.validateBigNumber(line)
            return .bigNumber(line)
        case UInt8(ascii: ","):
            guard let line = try self.readLine(&buffer) else { return nil }
            return .double(try Self.parseDouble(line))
        case UInt8(ascii: "#"):
            guard let line = try self.readLine(&buffer) else { return nil }
            guard line.readableBytes == 1, let b = line.getInteger(at: line.readerIndex, as: UInt8.self) else {
                throw RESPParsingError(.invalidBoolean)
            }
            switch b {
            case UInt8(ascii: "t"): return .boolean(true)
            case UInt8(ascii: "f"): return .boolean(false)
            default: throw RESPParsingError(.invalidBoolean)
            }
        case UInt8(ascii: "_"):
            guard let line = try self.readLine(&buffer) else { return nil }
            guard line.readableBytes == 0 else { throw RESPParsingError(.missingCRLF) }
            return .null
        default:
            throw RESPParsingError(.invalidTypeByte(type))
        }
    }

    /// Reads up to the next CRLF, returning the line without it; `nil` when no CRLF has arrived yet.
    private func readLine(_ buffer: inout ByteBuffer) throws -> ByteBuffer? {
        guard let lineLength = try self.lineLength(buffer) else { return nil }
        let line = buffer.readSlice(length: lineLength)!
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }

    /// The length of the line at the reader index without its CRLF; `nil` when no CRLF has arrived yet.
    /// Scans the bytes in place: no slice or view of the buffer (each would cost a retain and a release).
    private func lineLength(_ buffer: ByteBuffer) throws -> Int? {
        let maxLineLength = self.maxLineLength
        return try buffer.withUnsafeReadableBytes { bytes -> Int? in
            guard let crIndex = bytes.firstIndex(of: Self.cr) else {
                if bytes.count > maxLineLength { throw RESPParsingError(.lineTooLong) }
                return nil
            }
            if crIndex > maxLineLength { throw RESPParsingError(.lineTooLong) }
            guard crIndex + 1 < bytes.count else { return nil }
            guard bytes[crIndex + 1] == Self.lf else { throw RESPParsingError(.missingCRLF) }
            return crIndex
        }
    }

    /// Reads a length line; negative values other than -1 are invalid, values over the limit are rejected.
    /// A length or count line, checked against `limit` (the bulk length limit unless given).
    private func readLength(_ buffer: inout ByteBuffer, limit: Int? = nil) throws -> Int? {
        guard let lineLength = try self.lineLength(buffer) else { return nil }
        let value = try buffer.withUnsafeReadableBytes { bytes in
            try Self.parseInteger(UnsafeRawBufferPointer(rebasing: bytes[..<lineLength]))
        }
        buffer.moveReaderIndex(forwardBy: lineLength + 2)
        if value < -1 { throw RESPParsingError(.invalidLength) }
        if value > Int64(limit ?? self.maxBulkLength) { throw RESPParsingError(.lengthTooLarge(value)) }
        return Int(value)
    }

    private static func readBlob(_ buffer: inout ByteBuffer, length: Int) throws -> ByteBuffer? {
        guard buffer.readableBytes >= 2, buffer.readableBytes - 2 >= length else { return nil }  // no overflow near Int.max
        let payload = buffer.readSlice(length: length)!
        guard buffer.readInteger(as: UInt8.self) == cr, buffer.readInteger(as: UInt8.self) == lf else {
            throw RESPParsingError(.missingCRLF)
        }
        return payload
    }

    private static func parseInteger(_ view: UnsafeRawBufferPointer) throws -> Int64 {
        var index = view.startIndex
        guard index < view.endIndex else { throw RESPParsingError(.invalidInteger) }
        var negative = false
        if view[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        } else if view[index] == UInt8(ascii: "+") {
            index += 1
        }
        guard index < view.endIndex else { throw RESPParsingError(.invalidInteger) }
        // Accumulate negatively so Int64.min parses without overflow.
        var result: Int64 = 0
        while index < view.endIndex {
            let byte = view[index]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { throw RESPParsingError(.invalidInteger) }
            let (m, o1) = result.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.subtractingReportingOverflow(Int64(byte &- UInt8(ascii: "0")))
            guard !o1, !o2 else { throw RESPParsingError(.invalidInteger) }
            result = s
            index += 1
        }
        if negative { return result }
        guard result != .min else { throw RESPParsingError(.invalidInteger) }
        return -result
    }

    private static func parseDouble(_ line: ByteBuffer) throws -> Double {
        guard line.readableBytes > 0, line.readableBytes <= 512 else { throw RESPParsingError(.invalidDouble) }
        let text = String(decoding: line.readableBytesView, as: UTF8.self)
        switch text {
        case "inf", "+inf": return .infinity
        case "-inf": return -.infinity
        case "nan", "-nan": return .nan
        default:
            // Only plain decimal/exponent syntax; Swift's parser would also accept hex floats and "infinity".
            for byte in line.readableBytesView {
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."),
                    UInt8(ascii: "e"), UInt8(ascii: "E"):
                    continue
                default: throw RESPParsingError(.invalidDouble)
                }
            }
            guard let value = Double(text) else { throw RESPParsingError(.invalidDouble) }
            return value
        }
    }

    private static func validateBigNumber(_ line: ByteBuffer) throws {
        var view = line.readableBytesView[...]
        if view.first == UInt8(ascii: "-") || view.first == UInt8(ascii: "+") { view = view.dropFirst() }
        guard !view.isEmpty, view.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw RESPParsingError(.invalidInteger)
        }
    }
}
