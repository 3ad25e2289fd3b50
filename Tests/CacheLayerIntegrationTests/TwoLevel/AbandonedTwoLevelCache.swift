@testable import CacheLayer
import RedisClient
import RedisTestSupport
import Testing

/// Drops the only reference to a two-level cache made by `make` and checks that it is freed at once (its invalidation
/// loop holds the near cache, not the cache) and that its invalidation connection (tracking or pub/sub) then leaves the
/// server's client list.
func expectAbandonedCacheEndsItsConnection(
    _ server: RedisServer,
    loop: String,
    make: () async throws -> TwoLevelCache
) async throws {
    weak var abandoned: TwoLevelCache?
    let id: Int
    do {
        let cache = try await make()
        id = try #require(cache.trackingClientID)
        abandoned = cache
    }
    #expect(abandoned == nil, "the \(loop) must not keep the cache alive")
    let gone = await eventually {
        let clients: String = (try? await server.withRawConnection { try await $0.send("CLIENT", "LIST").string }) ?? ""
        return !clients.isEmpty && !clients.contains("id=\(id) ")
    }
    #expect(gone)
}
