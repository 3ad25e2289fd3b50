@testable import CacheLayer
import Logging
import RedisClient
import RedisTestSupport
import Synchronization
import Testing

/// A log handler that keeps every record, to check what the library logs.
final class CapturingLogHandler: LogHandler, Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var text: String
    }

    private let storage = Mutex<[Record]>([])
    private let state = Mutex<(level: Logger.Level, metadata: Logger.Metadata)>((.trace, [:]))

    init() {}

    var records: [Record] { storage.withLock { $0 } }

    func log(event: LogEvent) {
        let metadata = self.metadata.merging(event.metadata ?? [:]) { $1 }
        let text = "\(event.message) \(metadata.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")) \(event.source) \(event.file)"
        storage.withLock { $0.append(Record(level: event.level, text: text)) }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { state.withLock { $0.metadata[key] } }
        set { state.withLock { $0.metadata[key] = newValue } }
    }

    var metadata: Logger.Metadata {
        get { state.withLock { $0.metadata } }
        set { state.withLock { $0.metadata = newValue } }
    }

    var logLevel: Logger.Level {
        get { state.withLock { $0.level } }
        set { state.withLock { $0.level = newValue } }
    }
}

/// Passwords never reach logs (at any level); cache keys only at debug and trace.
@Suite("Secrets in logs (real redis-server)")
struct SecretLoggingTests {
    static let password = "Sup3r-Secret-pw"
    static let key = "customer-4711-private-key"

    @Test("a fallback cache through an outage logs no password at trace level and keys only at debug or below")
    func outageLogsNoSecrets() async throws {
        try await withRedisServer(.init(password: Self.password)) { server in
            let handler = CapturingLogHandler()
            var logger = Logger(label: "secrets", factory: { _ in handler })
            logger.logLevel = .trace
            var configuration = server.cacheConfiguration(fallback: true, timeout: .milliseconds(300))
            configuration.connectTimeout = .milliseconds(500)
            configuration.fallbackFailureThreshold = 1
            let cache = try #require(try await makeCache(configuration, logger: logger) as? FallbackCache)
            try await cache.set(Self.key, to: "v", ttl: .seconds(60))
            _ = try await cache.getOrSet(Self.key + "-loaded", ttl: .seconds(60)) { "loaded" }
            try server.pause()
            // Fails over to memory: the breaker opens, writes are remembered, then replayed after the resume.
            _ = try await cache.get(Self.key, as: String.self)
            try await cache.set(Self.key, to: "w", ttl: .seconds(60))
            try server.resume()
            try await FallbackCacheTests.eventually("Redis is used again") { cache.isBackendHealthy && cache.pendingKeyCount == 0 }
            // A wrong password, too.
            var wrong = configuration
            wrong.redisPassword = Self.password + "-wrong"
            wrong.enableFallback = false
            await #expect(throws: CacheError.self) { _ = try await makeCache(wrong, logger: logger) }
            try await cache.close()

            let records = handler.records
            #expect(!records.isEmpty)
            for record in records {
                #expect(!record.text.contains(Self.password), "password logged at \(record.level): \(record.text)")
                if record.level > .debug {
                    #expect(!record.text.contains(Self.key), "key logged at \(record.level): \(record.text)")
                }
            }
        }
    }

    @Test("a cache configuration's description, debug description and dump do not show the password")
    func cacheConfigurationIsRedacted() throws {
        let configuration = try CacheConfiguration(redisURL: "redis://user:\(Self.password)@cache.internal:6379/2")
        var dumped = ""
        dump(configuration, to: &dumped)
        for text in ["\(configuration)", String(reflecting: configuration), dumped] {
            #expect(!text.contains(Self.password), "\(text)")
        }
    }
}
