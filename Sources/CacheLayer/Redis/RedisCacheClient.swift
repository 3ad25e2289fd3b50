import NIOCore
import RedisClient

/// What a ``RedisCache`` sends its commands through: the pool of one server, or a cluster client that routes each
/// key to the primary serving its hash slot. Both speak the same commands; the few operations that differ (scanning
/// every node, tag invalidation) ask ``isCluster``.
enum RedisCacheClient: Sendable {
    case node(RedisConnectionPool)
    case cluster(RedisClusterClient)

    var isCluster: Bool {
        if case .cluster = self { return true }
        return false
    }

    @inline(__always)
    func execute(_ command: RedisCommand) async throws -> RESPValue {
        switch self {
        case .node(let pool): return try await pool.execute(command)
        case .cluster(let cluster): return try await cluster.execute(command)
        }
    }

    func pipeline(_ commands: [RedisCommand]) async throws -> [Result<RESPValue, RedisError>] {
        switch self {
        case .node(let pool): return try await pool.pipeline(commands)
        case .cluster(let cluster): return try await cluster.pipeline(commands)
        }
    }

    func run() async {
        switch self {
        case .node(let pool): await pool.run()
        case .cluster(let cluster): await cluster.run()
        }
    }

    func shutdown() {
        switch self {
        case .node(let pool): pool.shutdown()
        case .cluster(let cluster): cluster.shutdown()
        }
    }

    /// How connections are made: the server's, or the template every cluster node's connection is made from.
    var connectionConfiguration: RedisConnectionConfiguration {
        switch self {
        case .node(let pool): return pool.connectionConfiguration
        case .cluster(let cluster): return cluster.configuration.connection
        }
    }

    /// Calls `body` with each page of keys matching `pattern`: `SCAN` on the server, or on every primary of a cluster.
    func scan(match pattern: String, count: Int, _ body: ([ByteBuffer]) async throws -> Void) async throws {
        switch self {
        case .node(let pool): try await pool.scan(match: pattern, count: count, body)
        case .cluster(let cluster): try await cluster.scan(match: pattern, count: count, body)
        }
    }
}
