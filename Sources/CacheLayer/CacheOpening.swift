/// Returns `cache` once `check` (reaching Redis, setting up tracking, …) has passed; when it fails, closes the cache,
/// so that nothing it started keeps running, and rethrows.
func opened<C: Cache>(_ cache: C, after check: (C) async throws -> Void) async throws -> C {
    do {
        try await check(cache)
    } catch {
        try? await cache.close()
        throw error
    }
    return cache
}
