@testable import CacheLayer
import Testing

/// Values of every existential layout: inline in the container's buffer, boxed on the heap, class references.
private struct ThreeWords: Codable, Equatable { var a = 1, b = 2, c = 3 }
private struct FiveWords: Codable, Equatable { var a = 1, b = 2, c = 3, d = 4, e = "five" }
private final class Reference: Codable, Equatable, Sendable {
    let name: String
    init(name: String) { self.name = name }
    static func == (lhs: Reference, rhs: Reference) -> Bool { lhs.name == rhs.name }
}

/// The shard reads a stored value's type from its existential container in place; these tests pin that read to
/// `type(of:)` for every layout, so a change of the container's layout fails here and not in a user's cache.
@Suite("MemoryCache value layouts")
struct MemoryCacheValueLayoutTests {
    static let values: [any Sendable] = [
        true, 42, UInt8(7), "short", String(repeating: "long", count: 20), ThreeWords(), FiveWords(), Reference(name: "r"),
        [1, 2, 3], Int?.some(5), Int?.none, 2.5,
    ]

    @Test(arguments: values.indices)
    func storedTypeIsTheValuesType(index: Int) {
        var record = MemoryCacheSlot.free
        record.value = Self.values[index]
        #expect(MemoryLayout<MemoryCacheSlot>.offset(of: \MemoryCacheSlot.value) == 0)
        #expect(MemoryCacheShard.State.storedType(of: &record) == ObjectIdentifier(type(of: record.value)))
    }

    /// The slot record is laid out without padding but its last two bytes (see `MemoryCacheSlot`), and its value
    /// first; a field added or widened shows here as the per-entry memory it costs.
    @Test func slotRecordIsEightyBytesWithTheValueFirst() {
        #expect(MemoryLayout<MemoryCacheSlot>.stride == 80)
        #expect(MemoryLayout<MemoryCacheSlot>.offset(of: \MemoryCacheSlot.value) == 0)
    }

    @Test func everyLayoutReadsBackAsItselfAndMismatchesAnotherType() async throws {
        let cache = try makeTestMemoryCache()
        try await cache.set("int", to: 42)
        try await cache.set("string", to: String(repeating: "long", count: 20))
        try await cache.set("three", to: ThreeWords())
        try await cache.set("five", to: FiveWords())
        try await cache.set("reference", to: Reference(name: "r"))
        try await cache.set("array", to: [1, 2, 3])

        #expect(try await cache.get("int", as: Int.self) == 42)
        #expect(try await cache.get("string", as: String.self) == String(repeating: "long", count: 20))
        #expect(try await cache.get("three", as: ThreeWords.self) == ThreeWords())
        #expect(try await cache.get("five", as: FiveWords.self) == FiveWords())
        #expect(try await cache.get("reference", as: Reference.self) == Reference(name: "r"))
        #expect(try await cache.get("array", as: [Int].self) == [1, 2, 3])

        await expectCacheError(.typeMismatch) { _ = try await cache.get("int", as: String.self) }
        await expectCacheError(.typeMismatch) { _ = try await cache.get("three", as: FiveWords.self) }
        await expectCacheError(.typeMismatch) { _ = try await cache.get("five", as: ThreeWords.self) }
        await expectCacheError(.typeMismatch) { _ = try await cache.get("reference", as: Int.self) }
        await expectCacheError(.typeMismatch) { _ = try await cache.get("array", as: [String].self) }
        let stats = await cache.stats()
        #expect(stats.hits == 6)
    }
}
