import NIOCore
import RedisClient
import Testing

/// The code of the DocC articles in `Sources/RedisClient/Documentation.docc`, compiled so that it cannot drift
/// from the API (`DocumentationCatalogTests` in CacheLayerTests checks that every code block is here).
///
/// Examples that need a server are compiled inside functions no test calls; the rest run.
@Suite("RedisClient documentation examples")
struct RedisClientDocumentationExamplesTests {
    // MARK: RedisClient.md

    /// Compiled, not run: it needs a server at that address.
    static func landingPage() async throws {
        let pool = try RedisConnectionPool(url: "redis://127.0.0.1:6379/0")
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await pool.run() }
            try await pool.set("greeting", value: "hello", expiration: .after(.seconds(60)))
            let greeting = try await pool.getString("greeting")
            print(greeting ?? "(none)")   // hello
            pool.shutdown()
        }
    }

    /// Compiled, not run: it needs a Redis Cluster at that address.
    static func clusterLandingPage() async throws {
        let cluster = try RedisClusterClient(configuration: .init(url: "redis://10.0.0.1:6379"))
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await cluster.run() }
            try await cluster.set("user:1", value: "ada")
            let values = try await cluster.mget(["user:1", "user:2"])   // one MGET per slot, merged in order
            print(values.count)   // 2
            cluster.shutdown()
        }
    }

    // MARK: GettingStarted.md

    @Test func describeTheServer() throws {
        var configuration = RedisConnectionConfiguration(host: "127.0.0.1", port: 6379)
        configuration.database = 2
        configuration.clientName = "orders-worker"
        configuration.commandTimeout = .seconds(1)

        let fromURL = try RedisConnectionConfiguration(url: "redis://:secret@127.0.0.1:6379/2")
        // fromURL.password == "secret", fromURL.database == 2

        #expect(configuration.database == 2)
        #expect(configuration.protocolVersion == .resp3)
        #expect(configuration.connectTimeout == .seconds(5))
        #expect(RedisConnectionConfiguration().commandTimeout == .seconds(30))
        #expect(fromURL.username == nil)
        #expect(fromURL.password == "secret")
        #expect(fromURL.database == 2)
        #expect(fromURL.tls == nil)
    }

    /// Compiled, not run: it needs a server.
    static func runAPool(configuration: RedisConnectionConfiguration) async throws {
        let pool = RedisConnectionPool(
            connectionConfiguration: configuration,
            configuration: RedisConnectionPoolConfiguration(maxConnections: 8, minIdleConnections: 2, acquireTimeout: .seconds(1))
        )
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await pool.run() }

            try await pool.set("order:1", value: "paid", expiration: .after(.seconds(300)))
            let status = try await pool.getString("order:1")             // "paid"
            let counts = try await pool.send("INCRBY", "orders:paid", 1)  // any command
            let both = try await pool.mget(["order:1", "order:2"])         // the bytes of "paid", then nil
            print(status ?? "-", counts, both.count)

            pool.shutdown()   // run() returns once every connection is closed
        }

        let replies = try await pool.pipeline([
            RedisCommand("SET", "stock:42", 7),
            RedisCommand("DECR", "stock:42"),
            .get("stock:42"),
        ])
        for reply in replies {
            switch reply {
            case .success(let value): print(value)
            case .failure(let error): print("failed: \(error)")
            }
        }
    }

    /// Compiled, not run: it needs a server.
    static func publishAndSubscribe(configuration: RedisConnectionConfiguration, pool: RedisConnectionPool) async throws {
        let subscription = try await RedisSubscription.connect(configuration: configuration)
        try await subscription.subscribe(to: ["orders"])
        try await pool.publish("orders", message: "order:1 paid")
        for await message in subscription.messages {
            print(message.channel, message.text)   // orders order:1 paid
            break
        }
        await subscription.close()
    }

    @Test func poolDefaults() {
        let configuration = RedisConnectionPoolConfiguration(maxConnections: 8, minIdleConnections: 2, acquireTimeout: .seconds(1))
        #expect(configuration.maxIdleConnections == 8)
        #expect(configuration.maxRetries == 3)
        #expect(RedisCommand.get("k").isIdempotent)
        #expect(!RedisCommand("SET", "stock:42", 7).isIdempotent)
    }

    @Test func logInWithACLUsers() throws {
        let acl = try RedisConnectionConfiguration(url: "redis://orders:s3cret@127.0.0.1:6379/0")
        // acl.username == "orders", acl.password == "s3cret"

        #expect(acl.username == "orders")
        #expect(acl.password == "s3cret")
        #expect(acl.database == 0)
    }

    /// Compiled, not run: it needs a TLS server and a CA file.
    static func connectWithTLS() async throws {
        var secure = RedisConnectionConfiguration(host: "cache.internal", port: 6380)
        secure.tls = try .verifying(caCertificatePath: "/etc/redis/ca.pem")
        let connection = try await RedisConnection.connect(configuration: secure)
        let pong = try await connection.ping()
        print(pong)   // PONG
        await connection.close()
    }

    @Test func rissURLsUseTLS() throws {
        let configuration = try RedisConnectionConfiguration(url: "rediss://cache.internal:6380")
        #expect(configuration.tls != nil)
        #expect(configuration.port == 6380)
    }

    @Test func connectionFailuresAreSafeToRetry() {
        #expect(RedisError(code: .connectFailed, message: "").isConnectionFailure)
        #expect(!RedisError(code: .timeout, message: "").isConnectionFailure)
    }
}
