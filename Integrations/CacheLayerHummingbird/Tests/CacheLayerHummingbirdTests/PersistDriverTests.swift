import CacheLayer
import CacheLayerHummingbird
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// Hummingbird's own persist tests (Tests/HummingbirdTests/PersistTests.swift, 2.28), run against
/// ``CachePersistDriver`` over each backend, plus what the adapter adds.
@Suite("CachePersistDriver")
struct PersistDriverTests {
    func createRouter(backend: Backend) async throws -> (Router<BasicRequestContext>, CachePersistDriver) {
        let router = Router()
        let persist = CachePersistDriver(cache: try await backend.makeCache())

        router.put("/persist/:tag") { request, context -> HTTPResponse.Status in
            let buffer = try await request.body.collect(upTo: .max)
            let tag = try context.parameters.require("tag")
            try await persist.set(key: tag, value: String(buffer: buffer))
            return .ok
        }
        router.put("/persist/:tag/:time") { request, context -> HTTPResponse.Status in
            guard let time = context.parameters.get("time", as: Int.self) else { throw HTTPError(.badRequest) }
            let buffer = try await request.body.collect(upTo: .max)
            let tag = try context.parameters.require("tag")
            try await persist.set(key: tag, value: String(buffer: buffer), expires: .seconds(time))
            return .ok
        }
        router.get("/persist/:tag") { _, context -> String? in
            guard let tag = context.parameters.get("tag", as: String.self) else { throw HTTPError(.badRequest) }
            return try await persist.get(key: tag, as: String.self)
        }
        router.get("/persist/:tag/ttl") { _, context -> String? in
            guard let tag = context.parameters.get("tag", as: String.self) else { throw HTTPError(.badRequest) }
            return try await persist.getWithTTL(key: tag, as: String.self)?.ttl.map { String($0.components.seconds) }
        }
        router.delete("/persist/:tag") { _, context -> HTTPResponse.Status in
            guard let tag = context.parameters.get("tag", as: String.self) else { throw HTTPError(.badRequest) }
            try await persist.remove(key: tag)
            return .noContent
        }
        return (router, persist)
    }

    @Test(arguments: Backend.allCases)
    func setGet(backend: Backend) async throws {
        let (router, persist) = try await createRouter(backend: backend)
        let app = Application(responder: router.buildResponder(), services: [persist])
        try await app.test(.router) { client in
            let tag = UUID().uuidString
            try await client.execute(uri: "/persist/\(tag)", method: .put, body: ByteBuffer(string: "Persist")) { _ in }
            try await client.execute(uri: "/persist/\(tag)", method: .get) { response in
                #expect(String(buffer: response.body) == "Persist")
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func createGet(backend: Backend) async throws {
        let (router, persist) = try await createRouter(backend: backend)
        router.put("/create/:tag") { request, context -> HTTPResponse.Status in
            let buffer = try await request.body.collect(upTo: .max)
            let tag = try context.parameters.require("tag")
            try await persist.create(key: tag, value: String(buffer: buffer))
            return .ok
        }
        let app = Application(responder: router.buildResponder(), services: [persist])
        try await app.test(.router) { client in
            let tag = UUID().uuidString
            try await client.execute(uri: "/create/\(tag)", method: .put, body: ByteBuffer(string: "Persist")) { _ in }
            try await client.execute(uri: "/persist/\(tag)", method: .get) { response in
                #expect(String(buffer: response.body) == "Persist")
            }
            // Created without an expiry: it never expires, so there is no TTL to report.
            try await client.execute(uri: "/persist/\(tag)/ttl", method: .get) { response in
                #expect(response.status == .noContent)
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func doubleCreateFails(backend: Backend) async throws {
        let (router, persist) = try await createRouter(backend: backend)
        router.put("/create/:tag") { request, context -> HTTPResponse.Status in
            let buffer = try await request.body.collect(upTo: .max)
            let tag = try context.parameters.require("tag")
            do {
                try await persist.create(key: tag, value: String(buffer: buffer))
            } catch let error as PersistError where error == .duplicate {
                throw HTTPError(.conflict)
            }
            return .ok
        }
        let app = Application(responder: router.buildResponder(), services: [persist])
        try await app.test(.router) { client in
            let tag = UUID().uuidString
            try await client.execute(uri: "/create/\(tag)", method: .put, body: ByteBuffer(string: "Persist")) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/create/\(tag)", method: .put, body: ByteBuffer(string: "Other")) { response in
                #expect(response.status == .conflict)
            }
            try await client.execute(uri: "/persist/\(tag)", method: .get) { response in
                #expect(String(buffer: response.body) == "Persist")
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func concurrentCreatesStoreExactlyOnce(backend: Backend) async throws {
        let persist = CachePersistDriver(cache: try await backend.makeCache())
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for writer in 0..<12 {
                group.addTask {
                    do {
                        try await persist.create(key: "session", value: writer, expires: .seconds(60))
                        return true
                    } catch let error as PersistError where error == .duplicate {
                        return false
                    }
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.filter { $0 }.count == 1)
        try await persist.shutdown()
    }

    @Test(arguments: Backend.allCases)
    func setTwice(backend: Backend) async throws {
        let (router, persist) = try await createRouter(backend: backend)
        let app = Application(responder: router.buildResponder(), services: [persist])
        try await app.test(.router) { client in
            let tag = UUID().uuidString
            try await client.execute(uri: "/persist/\(tag)", method: .put, body: ByteBuffer(string: "test1")) { _ in }
            try await client.execute(uri: "/persist/\(tag)", method: .put, body: ByteBuffer(string: "test2")) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/persist/\(tag)", method: .get) { response in
                #expect(String(buffer: response.body) == "test2")
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func expires(backend: Backend) async throws {
        let (router, persist) = try await createRouter(backend: backend)
        let app = Application(responder: router.buildResponder(), services: [persist])
        try await app.test(.router) { client in
            let tag1 = UUID().uuidString
            let tag2 = UUID().uuidString
            try await client.execute(uri: "/persist/\(tag1)/0", method: .put, body: ByteBuffer(string: "ThisIsTest1")) { _ in }
            try await client.execute(uri: "/persist/\(tag2)/10", method: .put, body: ByteBuffer(string: "ThisIsTest2")) { _ in }
            try await Task.sleep(for: .seconds(1))
            try await client.execute(uri: "/persist/\(tag1)", method: .get) { response in
                #expect(response.status == .noContent)
            }
            try await client.execute(uri: "/persist/\(tag2)", method: .get) { response in
                #expect(String(buffer: response.body) == "ThisIsTest2")
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func shortExpiryEndsTheValue(backend: Backend) async throws {
        let persist = CachePersistDriver(cache: try await backend.makeCache())
        try await persist.set(key: "k", value: "v", expires: .milliseconds(200))
        #expect(try await persist.get(key: "k", as: String.self) == "v")
        try await Task.sleep(for: .milliseconds(400))
        #expect(try await persist.get(key: "k", as: String.self) == nil)
        try await persist.shutdown()
    }

    @Test(arguments: Backend.allCases)
    func ttl(backend: Backend) async throws {
        let (router, persist) = try await createRouter(backend: backend)
        let app = Application(responder: router.buildResponder(), services: [persist])
        try await app.test(.router) { client in
            let tag1 = UUID().uuidString
            try await client.execute(uri: "/persist/\(tag1)/10", method: .put, body: ByteBuffer(string: "ThisIsTest2")) { _ in }
            try await client.execute(uri: "/persist/\(tag1)/ttl", method: .get) { response in
                let ttl = try #require(Int(String(buffer: response.body)))
                #expect(ttl <= 10 && ttl > 1)
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func setWithoutExpiryKeepsTheExistingTTL(backend: Backend) async throws {
        let persist = CachePersistDriver(cache: try await backend.makeCache())
        try await persist.set(key: "k", value: "first", expires: .seconds(60))
        try await persist.set(key: "k", value: "second")
        let entry = try #require(try await persist.getWithTTL(key: "k", as: String.self))
        #expect(entry.object == "second")
        let ttl = try #require(entry.ttl)
        #expect(ttl > .seconds(50) && ttl <= .seconds(60))
        // A new key set without expiry never expires.
        try await persist.set(key: "new", value: "v")
        #expect(try await persist.getWithTTL(key: "new", as: String.self)?.ttl == nil)
        #expect(try await persist.getWithTTL(key: "absent", as: String.self) == nil)
        try await persist.shutdown()
    }

    @Test(arguments: Backend.allCases)
    func codable(backend: Backend) async throws {
        struct TestCodable: Codable {
            let buffer: String
        }
        let (router, persist) = try await createRouter(backend: backend)
        router.put("/codable/:tag") { request, context -> HTTPResponse.Status in
            guard let tag = context.parameters.get("tag") else { throw HTTPError(.badRequest) }
            let buffer = try await request.body.collect(upTo: .max)
            try await persist.set(key: tag, value: TestCodable(buffer: String(buffer: buffer)))
            return .ok
        }
        router.get("/codable/:tag") { _, context -> String? in
            guard let tag = context.parameters.get("tag") else { throw HTTPError(.badRequest) }
            let value = try await persist.get(key: tag, as: TestCodable.self)
            return value?.buffer
        }
        let app = Application(responder: router.buildResponder(), services: [persist])
        try await app.test(.router) { client in
            let tag = UUID().uuidString
            try await client.execute(uri: "/codable/\(tag)", method: .put, body: ByteBuffer(string: "Persist")) { _ in }
            try await client.execute(uri: "/codable/\(tag)", method: .get) { response in
                #expect(String(buffer: response.body) == "Persist")
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func invalidGetAs(backend: Backend) async throws {
        struct TestCodable: Codable {
            let buffer: String
        }
        let (router, persist) = try await createRouter(backend: backend)
        router.put("/invalid") { _, _ -> HTTPResponse.Status in
            try await persist.set(key: "test", value: TestCodable(buffer: "hello"))
            return .ok
        }
        router.get("/invalid") { _, _ -> String? in
            do {
                return try await persist.get(key: "test", as: String.self)
            } catch let error as PersistError where error == .invalidConversion {
                throw HTTPError(.badRequest)
            }
        }
        router.get("/invalid/ttl") { _, _ -> String? in
            do {
                return try await persist.getWithTTL(key: "test", as: String.self)?.object
            } catch let error as PersistError where error == .invalidConversion {
                throw HTTPError(.badRequest)
            }
        }
        let app = Application(router: router, services: [persist])
        try await app.test(.router) { client in
            try await client.execute(uri: "/invalid", method: .put)
            try await client.execute(uri: "/invalid", method: .get) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: "/invalid/ttl", method: .get) { response in
                #expect(response.status == .badRequest)
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func remove(backend: Backend) async throws {
        let (router, persist) = try await createRouter(backend: backend)
        let app = Application(responder: router.buildResponder(), services: [persist])
        try await app.test(.router) { client in
            let tag = UUID().uuidString
            try await client.execute(uri: "/persist/\(tag)", method: .put, body: ByteBuffer(string: "ThisIsTest1")) { _ in }
            try await client.execute(uri: "/persist/\(tag)", method: .delete) { _ in }
            try await client.execute(uri: "/persist/\(tag)", method: .get) { response in
                #expect(response.status == .noContent)
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func expireAndAdd(backend: Backend) async throws {
        let (router, persist) = try await createRouter(backend: backend)
        let app = Application(responder: router.buildResponder(), services: [persist])
        try await app.test(.router) { client in
            let tag = UUID().uuidString
            try await client.execute(uri: "/persist/\(tag)/0", method: .put, body: ByteBuffer(string: "ThisIsTest1")) { _ in }
            try await Task.sleep(for: .seconds(1))
            try await client.execute(uri: "/persist/\(tag)", method: .get) { response in
                #expect(response.status == .noContent)
            }
            try await client.execute(uri: "/persist/\(tag)/10", method: .put, body: ByteBuffer(string: "ThisIsTest1")) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/persist/\(tag)", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "ThisIsTest1")
            }
        }
    }

    /// Hummingbird's `testTidy`: the driver runs as a service; a value that has not expired survives it. Then
    /// graceful shutdown closes the cache.
    @Test(arguments: Backend.allCases)
    func runsAsAServiceAndClosesTheCacheOnShutdown(backend: Backend) async throws {
        let (router, persist) = try await createRouter(backend: backend)
        let app = Application(responder: router.buildResponder(), services: [persist])
        try await app.test(.router) { client in
            let tag = UUID().uuidString
            try await client.execute(uri: "/persist/\(tag)/10", method: .put, body: ByteBuffer(string: "NotExpired")) { _ in }
            try await Task.sleep(for: .milliseconds(20))
            try await client.execute(uri: "/persist/\(tag)", method: .get) { response in
                #expect(String(buffer: response.body) == "NotExpired")
            }
        }
        let error = await #expect(throws: CacheError.self) { try await persist.get(key: "any", as: String.self) }
        #expect(error?.code == .closed)
    }

    /// A route that caches a slow lookup with `getOrSet`: the loader runs once, later requests are served by the cache.
    @Test(arguments: Backend.allCases)
    func routeUsingGetOrSet(backend: Backend) async throws {
        let cache = try await backend.makeCache()
        let loads = LoadCounter()
        let router = Router()
        router.get("/users/:id") { _, context -> String in
            let id = try context.parameters.require("id", as: Int.self)
            return try await cache.getOrSet("user:\(id)", ttl: .seconds(60)) {
                loads.increment()
                return "user \(id)"
            }
        }
        let app = Application(router: router, services: [CachePersistDriver(cache: cache)])
        try await app.test(.router) { client in
            for _ in 0..<3 {
                try await client.execute(uri: "/users/7", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(String(buffer: response.body) == "user 7")
                }
            }
        }
        #expect(loads.value == 1)
    }
}
