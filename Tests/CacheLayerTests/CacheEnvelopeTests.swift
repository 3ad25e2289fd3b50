@testable import CacheLayer
import CommonSupport
import Foundation
import Testing

/// How values that fail-safe and early refresh store with their times are written as bytes and read back.
@Suite("Envelope framing")
struct CacheEnvelopeTests {
    /// Pattern state whose wall clock a test moves.
    final class Clock: Sendable {
        private let now = Locked(Date(timeIntervalSince1970: 1_700_000_000))
        var date: Date { now.withLock { $0 } }
        var milliseconds: Int64 { Int64(date.timeIntervalSince1970 * 1000) }
        func advance(seconds: Double) { now.withLock { $0 += seconds } }
    }

    static func state(_ clock: Clock) -> CachePatternsState {
        CachePatternsState(backend: "bytes", wallClock: { clock.date })
    }

    struct User: Codable, Sendable, Equatable {
        var id: Int
        var name: String
    }

    @Test func plainValuesAreStoredExactlyAsTheCodecEncodesThem() throws {
        let patterns = Self.state(Clock())
        let codec = JSONCacheCodec()
        let user = User(id: 1, name: "Ada")
        // (Foundation's JSONEncoder may order an object's keys differently from one call to the next, so objects are
        // compared decoded.)
        #expect(try codec.decode(User.self, from: patterns.encode(user, with: codec)) == user)
        #expect(try patterns.encode(42, with: codec) == codec.encode(42))
        #expect(try patterns.encode(["a", "b"], with: codec) == codec.encode(["a", "b"]))
        // No JSON document starts with the marker's zero byte, so plain values are never taken for envelopes.
        for bytes in [try codec.encode(0), try codec.encode(""), try codec.encode([Int]()), try codec.encode(user), try codec.encode(Optional<Int>.none)] {
            #expect(!EnvelopeFraming.isFramed(bytes))
        }
    }

    @Test func anEnvelopeIsFramedAndReadBackWithItsTimes() throws {
        let clock = Clock()
        let patterns = Self.state(clock)
        let codec = JSONCacheCodec()
        for refreshAt in [nil, clock.milliseconds + 48_000] as [Int64?] {
            let envelope = CacheEnvelope(value: User(id: 7, name: "Bob"), expiresAt: clock.milliseconds + 60_000, refreshAt: refreshAt)
            let bytes = try patterns.encode(envelope, with: codec)
            #expect(EnvelopeFraming.isFramed(bytes))
            #expect(try codec.decode(User.self, from: Array(bytes[EnvelopeFraming.headerSize...])) == envelope.value)
            let read = try #require(try patterns.decode(CacheEnvelope<User>.self, from: bytes, with: codec))
            #expect(read.value == envelope.value)
            #expect(read.expiresAt == envelope.expiresAt)
            #expect(read.refreshAt == refreshAt)
        }
    }

    @Test func aPlainReadOfAnEnvelopeReturnsItsValueUntilItsTimeToLiveHasPassed() throws {
        let clock = Clock()
        let patterns = Self.state(clock)
        let codec = JSONCacheCodec()
        let envelope = CacheEnvelope(value: User(id: 7, name: "Bob"), expiresAt: clock.milliseconds + 60_000, refreshAt: nil)
        let bytes = try patterns.encode(envelope, with: codec)
        #expect(try patterns.decode(User.self, from: bytes, with: codec) == envelope.value)
        clock.advance(seconds: 60)
        #expect(try patterns.decode(User.self, from: bytes, with: codec) == nil)
        // The envelope itself is still there for fail-safe.
        #expect(try patterns.decode(CacheEnvelope<User>.self, from: bytes, with: codec)?.value == envelope.value)
    }

    @Test func readsOfTheWrongTypeFailAsTheCodecFails() throws {
        let patterns = Self.state(Clock())
        let codec = JSONCacheCodec()
        let framed = try patterns.encode(CacheEnvelope(value: 1, expiresAt: .max, refreshAt: nil), with: codec)
        #expect(throws: DecodingError.self) { try patterns.decode(String.self, from: framed, with: codec) }
        // A plain value is not an envelope: fail-safe treats the decoding error as a miss.
        #expect(throws: DecodingError.self) { try patterns.decode(CacheEnvelope<Int>.self, from: codec.encode(1), with: codec) }
    }

    @Test func aValueInMemoryReadsThroughItsEnvelopeOrIsATypeMismatch() throws {
        let clock = Clock()
        let patterns = Self.state(clock)
        let stored = CacheEnvelope(value: "v", expiresAt: clock.milliseconds + 1_000, refreshAt: nil)
        #expect(try patterns.value(in: stored, as: String.self, key: "k") == "v")
        clock.advance(seconds: 1)
        #expect(try patterns.value(in: stored, as: String.self, key: "k") == nil)
        let error = #expect(throws: CacheError.self) { try patterns.value(in: 3, as: String.self, key: "k") }
        #expect(error?.code == .typeMismatch)
    }
}
