import CacheLayer
import Foundation

/// Reads trace files into ``Trace`` values.
package enum TraceReader {
    /// The file formats the reader understands.
    package enum Format: String, Sendable, CaseIterable {
        /// The ARC paper's traces: `starting_block number_of_blocks ignored request_number` per line, each
        /// line standing for `number_of_blocks` consecutive page requests.
        case arc
        /// One key per line.
        case lines
        /// `key,size[,ttl]` per line: variable-size entries (bytes) with an optional time to live in seconds.
        case csv
    }

    /// Why a trace could not be read.
    package struct ReadError: Error, CustomStringConvertible {
        package var description: String
    }

    /// Reads `path` in `format`; a path ending in `.zst` is decompressed with the `zstd` command first.
    package static func read(path: String, format: Format) throws -> Trace {
        let bytes = try contents(of: path)
        let name = (path as NSString).lastPathComponent
        switch format {
        case .arc: return try parseARC(bytes, name: name)
        case .lines: return parseLines(bytes, name: name)
        case .csv: return try parseCSV(bytes, name: name)
        }
    }

    /// The file's bytes, decompressed when it is zstd-compressed.
    package static func contents(of path: String) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ReadError(description: "trace file \(path) does not exist")
        }
        if path.hasSuffix(".zst") { return try decompress(path) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ReadError(description: "cannot read \(path)")
        }
        return [UInt8](data)
    }

    /// Runs `zstd -dc`: the Debian tool is simpler to depend on than a compression library, and the traces
    /// are decompressed once per run.
    private static func decompress(_ path: String) throws -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["zstd", "-dc", "--", path]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        do {
            try process.run()
        } catch {
            throw ReadError(description: "cannot run zstd to decompress \(path) (\(error)); install it (apt-get install zstd)")
        }
        // Read before waiting: the pipe would fill and block zstd otherwise.
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: message, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw ReadError(
                description: "zstd failed to decompress \(path) (status \(process.terminationStatus)): \(text); is zstd installed (apt-get install zstd)?"
            )
        }
        return [UInt8](data)
    }

    /// Renames keys to dense ids in order of first appearance.
    private struct KeyNamer<Key: Hashable> {
        var ids: [Key: UInt32] = [:]

        mutating func id(_ key: Key) -> UInt32 {
            if let id = ids[key] { return id }
            let id = UInt32(ids.count)
            ids[key] = id
            return id
        }
    }

    /// Calls `body` with the byte range of each non-empty line.
    private static func forEachLine(_ bytes: [UInt8], _ body: (Range<Int>, Int) throws -> Void) rethrows {
        var start = 0
        var lineNumber = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "\n") { end += 1 }
            lineNumber += 1
            var trimmedEnd = end
            if trimmedEnd > start, bytes[trimmedEnd - 1] == UInt8(ascii: "\r") { trimmedEnd -= 1 }
            if trimmedEnd > start { try body(start..<trimmedEnd, lineNumber) }
            start = end + 1
        }
    }

    static func parseARC(_ bytes: [UInt8], name: String) throws -> Trace {
        var namer = KeyNamer<UInt64>()
        var keys: [UInt32] = []
        keys.reserveCapacity(bytes.count / 8)
        try forEachLine(bytes) { range, lineNumber in
            // Only the first two fields matter; parse them in place, as P3 has millions of lines.
            var fields: (UInt64, UInt64) = (0, 0)
            var fieldCount = 0
            var value: UInt64 = 0
            var inNumber = false
            for index in range {
                let byte = bytes[index]
                if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                    value = value &* 10 &+ UInt64(byte - UInt8(ascii: "0"))
                    inNumber = true
                } else if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                    if inNumber {
                        if fieldCount == 0 { fields.0 = value } else { fields.1 = value }
                        fieldCount += 1
                    }
                    value = 0
                    inNumber = false
                    if fieldCount == 2 { break }
                } else {
                    throw ReadError(description: "\(name):\(lineNumber): not an ARC trace line (expected numbers)")
                }
            }
            if inNumber && fieldCount < 2 {
                if fieldCount == 0 { fields.0 = value } else { fields.1 = value }
                fieldCount += 1
            }
            guard fieldCount == 2 else {
                throw ReadError(description: "\(name):\(lineNumber): expected `start count ignored request`")
            }
            for page in fields.0..<(fields.0 + fields.1) { keys.append(namer.id(page)) }
        }
        return Trace(name: name, keys: keys, keyCount: namer.ids.count)
    }

    static func parseLines(_ bytes: [UInt8], name: String) -> Trace {
        var namer = KeyNamer<String>()
        var keys: [UInt32] = []
        forEachLine(bytes) { range, _ in
            keys.append(namer.id(String(decoding: bytes[range], as: UTF8.self)))
        }
        return Trace(name: name, keys: keys, keyCount: namer.ids.count)
    }

    static func parseCSV(_ bytes: [UInt8], name: String) throws -> Trace {
        var namer = KeyNamer<String>()
        var keys: [UInt32] = []
        var sizes: [UInt32] = []
        var ttls: [UInt32] = []
        var anyTTL = false
        try forEachLine(bytes) { range, lineNumber in
            let fields = bytes[range].split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
            guard fields.count == 2 || fields.count == 3,
                let size = UInt32(String(decoding: fields[1], as: UTF8.self).trimmingCharacters(in: .whitespaces))
            else {
                // A header line is allowed as the first line.
                if lineNumber == 1 { return }
                throw ReadError(description: "\(name):\(lineNumber): expected `key,size[,ttl]`")
            }
            var ttl: UInt32 = 0
            if fields.count == 3 {
                let text = String(decoding: fields[2], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                if !text.isEmpty {
                    guard let value = UInt32(text) else {
                        throw ReadError(description: "\(name):\(lineNumber): the ttl must be whole seconds")
                    }
                    ttl = value
                    anyTTL = anyTTL || value > 0
                }
            }
            keys.append(namer.id(String(decoding: fields[0], as: UTF8.self)))
            sizes.append(max(1, size))
            ttls.append(ttl)
        }
        return Trace(name: name, keys: keys, keyCount: namer.ids.count, sizes: sizes, ttls: anyTTL ? ttls : nil)
    }
}
