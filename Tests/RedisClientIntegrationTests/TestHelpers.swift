import NIOCore
import RedisClient
import RedisTestSupport

extension RedisServer {
    /// A connection configuration for this server (plain TCP, no credentials unless given).
    func configuration(
        password: String? = nil,
        username: String? = nil,
        database: Int = 0,
        commandTimeout: Duration? = .seconds(10)
    ) -> RedisConnectionConfiguration {
        RedisConnectionConfiguration(
            host: self.host,
            port: self.port,
            username: username,
            password: password ?? self.options.password,
            database: database,
            commandTimeout: commandTimeout
        )
    }

    /// Opens a connection, runs `body`, closes the connection.
    func withConnection<T>(
        _ configuration: RedisConnectionConfiguration? = nil,
        _ body: (RedisConnection) async throws -> T
    ) async throws -> T {
        let connection = try await RedisConnection.connect(configuration: configuration ?? self.configuration())
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }

    /// The number of clients connected to the server, not counting the connection asking.
    func connectedClients() async throws -> Int {
        try await self.withConnection { connection in
            let list = try await connection.send(["CLIENT", "LIST"]).string ?? ""
            return list.split(separator: "\n").count - 1
        }
    }
}

/// Runs `body` with the pool while its `run()` runs, then shuts the pool down and waits for `run()` to return.
func withRunningPool<T: Sendable>(
    _ pool: RedisConnectionPool,
    _ body: (RedisConnectionPool) async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await pool.run() }
        do {
            let result = try await body(pool)
            pool.shutdown()
            try await group.waitForAll()
            return result
        } catch {
            pool.shutdown()
            try await group.waitForAll()
            throw error
        }
    }
}

/// Expects `body` to throw a `RedisError` and returns it.
func expectRedisError(_ body: () async throws -> Void) async -> RedisError? {
    do {
        try await body()
        return nil
    } catch let error as RedisError {
        return error
    } catch {
        return RedisError(code: .unexpectedReply, message: "not a RedisError: \(error)")
    }
}
