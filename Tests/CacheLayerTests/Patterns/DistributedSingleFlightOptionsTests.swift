import CacheLayer
import Testing

@Suite("DistributedSingleFlightOptions")
struct DistributedSingleFlightOptionsTests {
    @Test(arguments: [
        DistributedSingleFlightOptions(lockTTL: .zero),
        DistributedSingleFlightOptions(lockTTL: .seconds(Int64(1) << 41)),
        DistributedSingleFlightOptions(maxWait: .zero),
        DistributedSingleFlightOptions(initialPollInterval: .zero),
        DistributedSingleFlightOptions(initialPollInterval: .seconds(1), maxPollInterval: .milliseconds(10)),
    ])
    func nonsenseIsRefusedByGetOrSetOptions(distributed: DistributedSingleFlightOptions) {
        let error = #expect(throws: CacheError.self) { try GetOrSetOptions(distributed: distributed).validate() }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("distributed.") == true)
    }

    @Test func theDefaultsAreValid() throws {
        try GetOrSetOptions(distributed: DistributedSingleFlightOptions()).validate()
    }

    @Test func aCacheWithoutSharedStoreIgnoresTheOptionAndKeepsLocalSingleFlight() async throws {
        let cache = try MemoryCache(configuration: .development)
        let options = GetOrSetOptions(distributed: DistributedSingleFlightOptions())
        let first = try await cache.getOrSet("k", ttl: .seconds(60), options: options) { 1 }
        let second = try await cache.getOrSet("k", ttl: .seconds(60), options: options) { 2 }
        #expect(first == 1 && second == 1)
        try await cache.close()
    }
}
