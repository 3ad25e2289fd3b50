import CacheLayer
import Foundation

/// Draws ranks in `1...count` with probability proportional to `1 / rank^exponent`, in constant expected
/// time and memory: the rejection-inversion method of Hörmann and Derflinger ("Rejection-inversion to
/// generate variates from monotone discrete distributions", 1996), as in Apache Commons RNG. A precomputed
/// CDF would cost 8 MB and a binary search per draw for a million keys.
package struct ZipfSampler: Sendable {
    private let count: Int
    private let exponent: Double
    private let hIntegralX1: Double
    private let hIntegralCount: Double
    private let s: Double

    /// A sampler over `count` ranks with parameter `exponent` (1 is the classic Zipf law; 0 is uniform).
    package init(count: Int, exponent: Double) {
        precondition(count > 0 && exponent >= 0, "Zipf needs at least one key and an exponent of 0 or more")
        self.count = count
        self.exponent = exponent
        hIntegralX1 = Self.hIntegral(1.5, exponent) - 1
        hIntegralCount = Self.hIntegral(Double(count) + 0.5, exponent)
        s = 2 - Self.hIntegralInverse(Self.hIntegral(2.5, exponent) - Self.h(2, exponent), exponent)
    }

    /// The next rank, 1 being the most popular.
    package func next(using generator: inout some RandomNumberGenerator) -> Int {
        if exponent == 0 { return Int.random(in: 1...count, using: &generator) }
        while true {
            let u = hIntegralCount + Double.random(in: 0..<1, using: &generator) * (hIntegralX1 - hIntegralCount)
            let x = Self.hIntegralInverse(u, exponent)
            let k = min(max(Int(x + 0.5), 1), count)
            if Double(k) - x <= s || u >= Self.hIntegral(Double(k) + 0.5, exponent) - Self.h(Double(k), exponent) {
                return k
            }
        }
    }

    private static func hIntegral(_ x: Double, _ exponent: Double) -> Double {
        let logX = log(x)
        return helper2((1 - exponent) * logX) * logX
    }

    private static func h(_ x: Double, _ exponent: Double) -> Double {
        exp(-exponent * log(x))
    }

    private static func hIntegralInverse(_ x: Double, _ exponent: Double) -> Double {
        var t = x * (1 - exponent)
        if t < -1 { t = -1 }  // Rounding can push t just below -1, where log1p is undefined.
        return exp(helper1(t) * x)
    }

    /// log1p(x) / x, accurate near 0.
    private static func helper1(_ x: Double) -> Double {
        abs(x) > 1e-8 ? log1p(x) / x : 1 - x * (0.5 - x * (1.0 / 3 - 0.25 * x))
    }

    /// expm1(x) / x, accurate near 0.
    private static func helper2(_ x: Double) -> Double {
        abs(x) > 1e-8 ? expm1(x) / x : 1 + x * 0.5 * (1 + x / 3 * (1 + 0.25 * x))
    }
}
