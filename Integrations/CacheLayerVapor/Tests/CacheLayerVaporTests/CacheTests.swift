import CacheLayer
import CacheLayerVapor
import Foundation
import NIOCore
import Synchronization
import Testing
import Vapor
import VaporTesting

/// Vapor's own cache tests (Tests/VaporTests/AsyncCacheTests.swift and CacheTests.swift, 4.122), run against
/// ``CacheLayerVaporCache`` over each backend, plus the semantics the adapter maps explicitly.
@Suite("CacheLayerVaporCache")
struct CacheTests {
    /// Runs `test` on an application whose `app.cache` is `backend`'s cache; shuts the application down afterwards.
    func withCacheApp<T>(_ backend: Backend, _ test: (Application, any CacheLayer.Cache) async throws -> T) async throws -> T {
        let cache = try await backend.makeCache()
        return try await withApp(configure: { app in
            app.caches.use(.cacheLayer(cache))
        }) { app in
            try await test(app, cache)
        }
    }

    // MARK: Vapor's AsyncCacheTests.testInMemoryCache

    @Test(arguments: Backend.allCases)
    func asyncGetSetExpireDelete(backend: Backend) async throws {
        try await withCacheApp(backend) { app, _ in
            let value1 = try await app.cache.get("foo", as: String.self)
            #expect(value1 == nil)
            try await app.cache.set("foo", to: "bar")
            let value2: String? = try await app.cache.get("foo")
            #expect(value2 == "bar")

            // Expiration
            try await app.cache.set("foo2", to: "bar2", expiresIn: .seconds(1))
            let value3: String? = try await app.cache.get("foo2")
            #expect(value3 == "bar2")
            try await Task.sleep(for: .milliseconds(1500))
            let value4 = try await app.cache.get("foo2", as: String.self)
            #expect(value4 == nil)

            // Reset value
            try await app.cache.set("foo3", to: "bar3")
            let value5: String? = try await app.cache.get("foo3")
            #expect(value5 == "bar3")
            try await app.cache.delete("foo3")
            let value6 = try await app.cache.get("foo3", as: String.self)
            #expect(value6 == nil)
        }
    }

    // MARK: Vapor's CacheTests.testInMemoryCache (the future-based API)

    @Test(arguments: Backend.allCases)
    func futureGetSetExpireDelete(backend: Backend) async throws {
        try await withCacheApp(backend) { app, _ in
            let cache = app.cache
            #expect(try await cache.get("foo", as: String.self).get() == nil)
            try await cache.set("foo", to: "bar").get()
            #expect(try await cache.get("foo", as: String.self).get() == "bar")

            try await cache.set("foo2", to: "bar2", expiresIn: .seconds(1)).get()
            #expect(try await cache.get("foo2", as: String.self).get() == "bar2")
            try await Task.sleep(for: .milliseconds(1500))
            #expect(try await cache.get("foo2", as: String.self).get() == nil)

            try await cache.set("foo3", to: "bar3").get()
            #expect(try await cache.get("foo3", as: String.self).get() == "bar3")
            try await cache.delete("foo3").get()
            #expect(try await cache.get("foo3", as: String.self).get() == nil)
        }
    }

    // MARK: Vapor's testCustomCache: the provider makes app.cache and req.cache ours

    @Test(arguments: Backend.allCases)
    func providerMakesAppCacheAndRequestCacheOurs(backend: Backend) async throws {
        try await withCacheApp(backend) { app, cache in
            #expect(app.cache is CacheLayerVaporCache)
            try await app.cache.set("1", to: "2")
            // Stored through the library, as bytes the codec wrote.
            #expect(try await cache.getBytes("1") == Array(#""2""#.utf8))

            app.get("cached") { req async throws -> String in
                #expect(req.cache is CacheLayerVaporCache)
                return try await req.cache.get("1", as: String.self) ?? "missing"
            }
            try await app.testing().test(.GET, "cached") { response in
                #expect(response.status == .ok)
                #expect(response.body.string == "2")
            }
        }
    }

    // MARK: Semantics the adapter maps explicitly

    @Test(arguments: Backend.allCases)
    func settingNilDeletes(backend: Backend) async throws {
        try await withCacheApp(backend) { app, cache in
            try await app.cache.set("k", to: "v")
            try await app.cache.set("k", to: String?.none)
            #expect(try await app.cache.get("k", as: String.self) == nil)
            #expect(try await cache.exists("k") == false)
            try await app.cache.set("k", to: "v")
            try await app.cache.set("k", to: String?.none, expiresIn: .minutes(5))
            #expect(try await cache.exists("k") == false)
        }
    }

    @Test(arguments: Backend.allCases)
    func nilExpiryMeansNoExpiryNotTheDefaultTTL(backend: Backend) async throws {
        try await withCacheApp(backend) { app, cache in
            try await app.cache.set("plain", to: "v")
            #expect(try await cache.ttl("plain") == .noExpiry)
            try await app.cache.set("explicit", to: "v", expiresIn: nil)
            #expect(try await cache.ttl("explicit") == .noExpiry)
        }
    }

    @Test(arguments: Backend.allCases)
    func expirationTimesAreMappedToTheirSeconds(backend: Backend) async throws {
        try await withCacheApp(backend) { app, cache in
            let cases: [(CacheExpirationTime, Int)] = [(.seconds(90), 90), (.minutes(2), 120), (.hours(3), 10_800), (.days(2), 172_800)]
            for (index, (time, seconds)) in cases.enumerated() {
                try await app.cache.set("k\(index)", to: index, expiresIn: time)
                let ttl = try #require(try await cache.ttl("k\(index)"))
                #expect(ttl <= .seconds(seconds) && ttl > .seconds(seconds - 5), "\(time)")
            }
            // Zero seconds: expired at once, so nothing is kept.
            try await app.cache.set("zero", to: "v")
            try await app.cache.set("zero", to: "w", expiresIn: .seconds(0))
            #expect(try await app.cache.get("zero", as: String.self) == nil)
        }
    }

    @Test(arguments: Backend.allCases)
    func aValueOfAnotherTypeReadsAsNil(backend: Backend) async throws {
        struct Profile: Codable, Equatable {
            var name: String
        }
        try await withCacheApp(backend) { app, _ in
            try await app.cache.set("profile", to: Profile(name: "Ada"))
            #expect(try await app.cache.get("profile", as: Int.self) == nil)
            #expect(try await app.cache.get("profile", as: Profile.self) == Profile(name: "Ada"))
        }
    }

    @Test(arguments: Backend.allCases)
    func otherErrorsFailTheFuture(backend: Backend) async throws {
        try await withCacheApp(backend) { app, cache in
            try await cache.close()
            let error = await #expect(throws: CacheError.self) { try await app.cache.get("k", as: String.self) }
            #expect(error?.code == .closed)
            await #expect(throws: CacheError.self) { try await app.cache.set("k", to: "v") }
        }
    }

    @Test(arguments: Backend.allCases)
    func theCacheIsClosedOnShutdown(backend: Backend) async throws {
        let cache = try await backend.makeCache()
        let app = try await Application.make(.testing)
        app.caches.use(.cacheLayer(cache))
        try await app.asyncBoot()
        try await app.cache.set("k", to: "v")
        try await app.asyncShutdown()
        let error = await #expect(throws: CacheError.self) { try await cache.get("k", as: String.self) }
        #expect(error?.code == .closed)
    }

    @Test func providerFromAConfigurationCreatesTheCache() async throws {
        var configuration = CacheConfiguration.development
        configuration.defaultTTL = .seconds(5)
        let app = try await Application.make(.testing)
        app.caches.use(.cacheLayer(configuration))
        try await app.asyncBoot()
        try await app.cache.set("k", to: "v")
        #expect(try await app.cache.get("k", as: String.self) == "v")
        let cache = try await app.caches.cacheLayer()
        #expect(cache is MemoryCache)
        try await app.asyncShutdown()
        let error = await #expect(throws: CacheError.self) { try await cache.get("k", as: String.self) }
        #expect(error?.code == .closed)
    }

    @Test func aConfigurationThatCannotWorkFailsTheBoot() async throws {
        var configuration = CacheConfiguration.development
        configuration.maxMemorySize = -1
        let app = try await Application.make(.testing)
        app.caches.use(.cacheLayer(configuration))
        let error = await #expect(throws: CacheError.self) { try await app.asyncBoot() }
        #expect(error?.code == .invalidConfiguration)
        try await app.asyncShutdown()
    }

    // MARK: A route using getOrSet

    @Test(arguments: Backend.allCases)
    func routeUsingGetOrSet(backend: Backend) async throws {
        let loads = LoadCounter()
        try await withCacheApp(backend) { app, _ in
            app.get("users", ":id") { req async throws -> String in
                let id = try req.parameters.require("id", as: Int.self)
                return try await req.application.caches.cacheLayer().getOrSet("user:\(id)", ttl: .seconds(60)) {
                    loads.increment()
                    return "user \(id)"
                }
            }
            for _ in 0..<3 {
                try await app.testing().test(.GET, "users/7") { response in
                    #expect(response.status == .ok)
                    #expect(response.body.string == "user 7")
                }
            }
        }
        #expect(loads.value == 1)
    }
}
