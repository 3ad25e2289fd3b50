@testable import CacheLayer
import Testing

/// The generation check that keeps an invalidation from being undone by a read in flight; no server needed.
@Suite("NearCacheFillGate")
struct NearCacheFillGateTests {
    @Test func nothingMayFillBeforeInvalidationsAreReceived() {
        var gate = NearCacheFillGate(isCoherent: false)
        #expect(gate.stamp("k") == nil)
        gate.setCoherent(true)
        let stamp = try! #require(gate.stamp("k"))
        #expect(gate.allowsFill(stamp))
    }

    @Test func anInvalidationOfTheKeyRefusesReadsStampedBeforeIt() throws {
        var gate = NearCacheFillGate(isCoherent: true)
        let before = try #require(gate.stamp("k"))
        gate.invalidate("k")
        #expect(!gate.allowsFill(before))
        let after = try #require(gate.stamp("k"))
        #expect(gate.allowsFill(after))
    }

    @Test func aReadReturnedSinceItsStampKeepsAnOwnWriteOutButDoesNotRefuseOtherReads() throws {
        var gate = NearCacheFillGate(isCoherent: true)
        let write = try #require(gate.stamp("k"))
        let otherRead = try #require(gate.stamp("k"))
        gate.recordRead("k")
        #expect(gate.allowsFill(otherRead))
        #expect(gate.decideOwnWrite("k", stamp: write, sequence: 1) == .remove)
        let pooled = try #require(gate.stamp("k"))
        gate.recordRead("k")
        #expect(gate.decideOwnWrite("k", stamp: pooled, sequence: nil) == .remove)
        let later = try #require(gate.stamp("k"))
        #expect(gate.decideOwnWrite("k", stamp: later, sequence: 2) == .store)
    }

    @Test func anInvalidationOfAKeyInAnotherStripeDoesNotRefuse() throws {
        var gate = NearCacheFillGate(stripeCount: 64, isCoherent: true)
        let other = try #require((0..<1000).map { "other-\($0)" }.first { gate.stripe(of: $0) != gate.stripe(of: "k") })
        let stamp = try #require(gate.stamp("k"))
        gate.invalidate(other)
        #expect(gate.allowsFill(stamp))
    }

    @Test func aFlushRefusesEveryReadInFlight() throws {
        var gate = NearCacheFillGate(isCoherent: true)
        let stamps = try (0..<100).map { try #require(gate.stamp("k\($0)")) }
        gate.invalidateAll()
        #expect(stamps.allSatisfy { !gate.allowsFill($0) })
    }

    @Test func losingCoherenceRefusesReadsInFlightEvenAfterItIsBack() throws {
        var gate = NearCacheFillGate(isCoherent: true)
        let stamp = try #require(gate.stamp("k"))
        gate.setCoherent(false)
        #expect(!gate.allowsFill(stamp))
        #expect(gate.stamp("k") == nil)
        gate.setCoherent(true)
        #expect(!gate.allowsFill(stamp), "a read that started before the connection was lost may carry an unannounced old value")
    }
}
