import CacheLayer
import Foundation

/// Writes to standard error without buffering, for progress output.
func writeStandardError(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}

/// One JSON object on one line, as the commands print it with `--json`: keys sorted, property names in snake case
/// (`p50Ms` → `p50_ms`, `opsPerSec` → `ops_per_sec`).
func jsonLine(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    encoder.keyEncodingStrategy = .convertToSnakeCase
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// A plain text table with right-aligned numeric columns.
struct TextTable {
    var headers: [String]
    var rows: [[String]] = []

    init(_ headers: String...) { self.headers = headers }

    mutating func add(_ cells: String...) { rows.append(cells) }

    func render() -> String {
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                let padding = String(repeating: " ", count: widths[index] - cell.count)
                return index == 0 ? cell + padding : padding + cell
            }.joined(separator: "  ")
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ([line(headers), rule] + rows.map(line)).joined(separator: "\n")
    }
}

extension Int {
    /// 1234567 → "1,234,567".
    var grouped: String {
        let digits = String(self.magnitude)
        var result = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { result.append(",") }
            result.append(character)
        }
        return self < 0 ? "-" + result : result
    }
}

extension UInt64 {
    var grouped: String { Int(clamping: self).grouped }
}

/// Formats a byte count as "12.3 MiB".
func formatBytes(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}

/// The statistics table shared by the demo and the bench.
func statsTable(_ stats: CacheStats) -> String {
    var table = TextTable("statistic", "value")
    table.add("hits", stats.hits.grouped)
    table.add("misses", stats.misses.grouped)
    table.add("sets", stats.sets.grouped)
    table.add("deletes", stats.deletes.grouped)
    table.add("evictions", stats.evictions.grouped)
    table.add("expirations", stats.expirations.grouped)
    table.add("entries", stats.entryCount.grouped)
    table.add("size", formatBytes(stats.size))
    table.add("hit rate", String(format: "%.2f%%", stats.hitRate * 100))
    return table.render()
}

/// A failure of a command's own set-up, with what to do about it.
struct DemoError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
