import NIOCore
import Testing

@testable import RedisClient

/// Decoder limits are cache-sized by default and configurable, and never overflow. (Extreme durations against a real
/// server are in RedisClientIntegrationTests/ExtremeDurationClientTests.swift.)
@Suite("Extreme input")
struct ExtremeInputTests {
    @Test("decoder limits default to cache-sized values and are configurable")
    func decoderLimits() throws {
        let configuration = RedisConnectionConfiguration()
        #expect(configuration.maxBulkLength <= 64 * 1024 * 1024)
        #expect(configuration.maxAggregateCount <= 16 * 1024 * 1024)

        var strict = RESPDecoder(maxBulkLength: 1024, maxAggregateCount: 10)
        var tooMany = ByteBuffer(string: "*11\r\n")
        #expect(throws: RESPParsingError.self) { _ = try strict.decode(buffer: &tooMany) }
        var manyPairs = ByteBuffer(string: "%6\r\n")  // 12 elements
        #expect(throws: RESPParsingError.self) { _ = try strict.decode(buffer: &manyPairs) }
        var longBulkIsFine = ByteBuffer(string: "$1000\r\n")  // within the bulk limit: waits for the bytes
        #expect(try strict.decode(buffer: &longBulkIsFine) == nil)
        var tooLong = ByteBuffer(string: "$1025\r\n")
        #expect(throws: RESPParsingError.self) { _ = try strict.decode(buffer: &tooLong) }

        // A limit as large as Int.max does not overflow when doubled for maps.
        var unlimited = RESPDecoder(maxBulkLength: .max, maxAggregateCount: .max)
        var hugeMap = ByteBuffer(string: "%\(Int64.max)\r\n")
        _ = try? unlimited.decode(buffer: &hugeMap)
    }
}
