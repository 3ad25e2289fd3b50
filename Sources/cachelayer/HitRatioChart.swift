import CacheSimulation
import CacheLayer
import Foundation

/// An SVG line chart of hit ratio against cache size, one line per policy, that any browser opens.
struct HitRatioChart {
    var title: String
    var policies: [ReplayPolicy]
    var results: [ReplayResult]

    private static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]

    func svg() -> String {
        let width = 800.0
        let height = 500.0
        let left = 70.0
        let right = 170.0
        let top = 50.0
        let bottom = 60.0
        let plotWidth = width - left - right
        let plotHeight = height - top - bottom

        let sizes = Array(Set(results.map(\.size))).sorted()
        // Cache sizes usually grow geometrically, so a log axis spaces them evenly.
        let logarithmic = sizes.count > 2 && Double(sizes.last!) / Double(sizes.first!) >= 8
        func scaled(_ size: Int) -> Double { logarithmic ? log10(Double(size)) : Double(size) }
        let minX = scaled(sizes.first ?? 1)
        let maxX = scaled(sizes.last ?? 1)
        func x(_ size: Int) -> Double {
            maxX == minX ? left + plotWidth / 2 : left + (scaled(size) - minX) / (maxX - minX) * plotWidth
        }
        let highest = results.map(\.hitRatio).max() ?? 1
        let maxY = min(1, max(0.1, (highest * 10).rounded(.up) / 10))
        func y(_ ratio: Double) -> Double { top + plotHeight - ratio / maxY * plotHeight }

        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
            viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left + plotWidth / 2)" y="25" text-anchor="middle" font-size="16">\(escape(title))</text>

            """
        // Horizontal grid and y labels every 10 points.
        var tick = 0.0
        while tick <= maxY + 1e-9 {
            let ty = y(tick)
            svg += "<line x1=\"\(left)\" y1=\"\(ty)\" x2=\"\(left + plotWidth)\" y2=\"\(ty)\" stroke=\"#ddd\"/>\n"
            svg += "<text x=\"\(left - 8)\" y=\"\(ty + 4)\" text-anchor=\"end\">\(Int((tick * 100).rounded()))%</text>\n"
            tick += maxY > 0.5 ? 0.1 : 0.05
        }
        for size in sizes {
            let tx = x(size)
            svg += "<line x1=\"\(tx)\" y1=\"\(top)\" x2=\"\(tx)\" y2=\"\(top + plotHeight)\" stroke=\"#eee\"/>\n"
            svg += "<text x=\"\(tx)\" y=\"\(top + plotHeight + 18)\" text-anchor=\"middle\">\(formatted(size))</text>\n"
        }
        svg += "<line x1=\"\(left)\" y1=\"\(top + plotHeight)\" x2=\"\(left + plotWidth)\" y2=\"\(top + plotHeight)\" stroke=\"black\"/>\n"
        svg += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(top + plotHeight)\" stroke=\"black\"/>\n"
        svg += "<text x=\"\(left + plotWidth / 2)\" y=\"\(height - 15)\" text-anchor=\"middle\">cache size\(logarithmic ? " (log scale)" : "")</text>\n"
        svg += "<text transform=\"translate(20 \(top + plotHeight / 2)) rotate(-90)\" text-anchor=\"middle\">hit ratio</text>\n"

        for (index, policy) in policies.enumerated() {
            let color = Self.palette[index % Self.palette.count]
            let points = results.filter { $0.policy == policy }.sorted { $0.size < $1.size }
            let path = points.map { "\(x($0.size)),\(y($0.hitRatio))" }.joined(separator: " ")
            let dash = policy == .opt ? " stroke-dasharray=\"6 4\"" : ""
            svg += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
            for point in points {
                svg += "<circle cx=\"\(x(point.size))\" cy=\"\(y(point.hitRatio))\" r=\"3\" fill=\"\(color)\">"
                svg += "<title>\(policy.rawValue) \(point.size): \(String(format: "%.2f", point.hitRatio * 100))%</title></circle>\n"
            }
            let ly = top + 10 + Double(index) * 22
            let lx = left + plotWidth + 20
            svg += "<line x1=\"\(lx)\" y1=\"\(ly)\" x2=\"\(lx + 25)\" y2=\"\(ly)\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
            let name = policy == ReplayPolicy.default ? "\(policy.rawValue) (default)" : policy.rawValue
            svg += "<text x=\"\(lx + 32)\" y=\"\(ly + 4)\">\(escape(name))</text>\n"
        }
        svg += "</svg>\n"
        return svg
    }

    private func formatted(_ size: Int) -> String {
        if size >= 1_000_000 && size % 100_000 == 0 { return "\(Double(size) / 1_000_000)M" }
        if size >= 10_000 && size % 1000 == 0 { return "\(size / 1000)k" }
        return String(size)
    }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
