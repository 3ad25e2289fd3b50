import NIOCore
import NIOSSL

/// How to reach and log in to a Redis server.
///
/// ```swift
/// var config = RedisConnectionConfiguration(host: "127.0.0.1", port: 6379)
/// config.password = "secret"
/// config.database = 2
/// config.commandTimeout = .milliseconds(500)
/// config.tls = try .verifying(caCertificatePath: "/etc/redis/ca.pem")
/// // or: try RedisConnectionConfiguration(url: "rediss://user:secret@cache.internal:6380/2")
/// ```
public struct RedisConnectionConfiguration: Sendable {
    /// The RESP version to speak.
    public enum ProtocolVersion: Int, Sendable {
        /// RESP2: `AUTH`, `CLIENT SETNAME`, `SELECT` one by one; no push messages.
        case resp2 = 2
        /// RESP3 via `HELLO 3`, falling back to RESP2 when the server refuses `HELLO`.
        case resp3 = 3
    }

    /// TLS settings: a prepared `NIOSSLContext` and the name to verify the server certificate against.
    public struct TLS: Sendable {
        /// The context shared by every connection made with this configuration.
        public let context: NIOSSLContext
        /// The name sent with SNI and checked against the certificate; defaults to the host.
        public var serverName: String?

        /// TLS from a full swift-nio-ssl configuration.
        public init(configuration: TLSConfiguration, serverName: String? = nil) throws {
            do {
                self.context = try NIOSSLContext(configuration: configuration)
            } catch {
                throw RedisError(
                    code: .tls,
                    message: "could not create the TLS context: \(error); check the certificate files and TLS options",
                    underlying: error
                )
            }
            self.serverName = serverName
        }

        /// Verifies the server's certificate and host name against the system trust store, or only against
        /// the PEM certificate(s) at `caCertificatePath` when given (for a private CA).
        public static func verifying(caCertificatePath: String? = nil, serverName: String? = nil) throws -> TLS {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .fullVerification
            if let caCertificatePath {
                configuration.trustRoots = .file(caCertificatePath)
            }
            return try TLS(configuration: configuration, serverName: serverName)
        }
    }

    /// Host name or IP address.
    public var host: String
    /// TCP port.
    public var port: Int
    /// ACL user name; `nil` logs in as `default` when a password is set.
    public var username: String?
    /// Password (`requirepass` or the ACL user's); `nil` sends no credentials.
    public var password: String?
    /// Database number selected after login.
    public var database: Int
    /// Name set with `CLIENT SETNAME`, shown by `CLIENT LIST`.
    public var clientName: String?
    /// TLS, or `nil` for plain TCP.
    public var tls: TLS?
    /// RESP version to negotiate.
    public var protocolVersion: ProtocolVersion
    /// Limit for establishing the TCP connection and for the login handshake.
    public var connectTimeout: Duration
    /// Default limit for each command's reply; `nil` waits forever. A command that exceeds it closes the connection.
    public var commandTimeout: Duration?
    /// Largest bulk string a reply may announce. Default: 64 MiB, far above what a cache value needs (Redis's own
    /// limit, `proto-max-bulk-len`, is 512 MB). A larger reply closes the connection with a protocol error.
    public var maxBulkLength: Int
    /// Most elements an aggregate (array, set, map, push) in a reply may announce; a map's keys and values both
    /// count. Default: 1,048,576, enough for an `MGET` of a million keys. A larger reply closes the connection with
    /// a protocol error.
    public var maxAggregateCount: Int
    /// Deepest nesting of aggregates a reply may have.
    public var maxNestingDepth: Int
    /// How many unread RESP3 push messages ``RedisConnection/pushMessages`` holds; one more closes the
    /// connection instead of dropping a message. Default: 1024.
    public var pushBufferCapacity: Int
    /// Sends `READONLY` after login: a connection to a Redis Cluster replica that serves reads of its primary's slots.
    package var readOnly: Bool = false

    /// A configuration for `host:port` with defaults: no credentials, database 0, RESP3, 5 s connect timeout,
    /// 30 s command timeout.
    public init(
        host: String = "127.0.0.1",
        port: Int = 6379,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        clientName: String? = nil,
        tls: TLS? = nil,
        protocolVersion: ProtocolVersion = .resp3,
        connectTimeout: Duration = .seconds(5),
        commandTimeout: Duration? = .seconds(30)
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.clientName = clientName
        self.tls = tls
        self.protocolVersion = protocolVersion
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.maxBulkLength = RESPDecoder.defaultMaxBulkLength
        self.maxAggregateCount = RESPDecoder.defaultMaxAggregateCount
        self.maxNestingDepth = RESPDecoder.defaultMaxDepth
        self.pushBufferCapacity = 1024
    }

    /// A configuration from a URL: `redis://[[user]:password@]host[:port][/db][?options]` or `rediss://…` for TLS
    /// (verified against the system trust store unless `tls` is given); see ``RedisURL`` for the grammar.
    public init(url: String, tls: TLS? = nil) throws {
        try self.init(url: RedisURL(url), tls: tls)
    }

    /// A configuration from a parsed ``RedisURL``.
    public init(url: RedisURL, tls: TLS? = nil) throws {
        self.init(host: url.host, port: url.port, username: url.username, password: url.password, database: url.database)
        if let connectTimeout = url.connectTimeout { self.connectTimeout = connectTimeout }
        if let commandTimeout = url.commandTimeout { self.commandTimeout = commandTimeout }
        if url.tls {
            self.tls = try tls ?? .verifying()
        } else {
            self.tls = tls
        }
    }
}

extension RedisConnectionConfiguration: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The settings, with the password shown as `***`.
    public var description: String {
        var text = "RedisConnectionConfiguration(host: \(self.host), port: \(self.port)"
        if let username { text += ", username: \(username)" }
        if self.password != nil { text += ", password: ***" }
        text += ", database: \(self.database)"
        if let clientName { text += ", clientName: \(clientName)" }
        text += ", tls: \(self.tls.map { "on, serverName: \($0.serverName ?? "(host)")" } ?? "off")"
        text += ", protocol: RESP\(self.protocolVersion.rawValue), connectTimeout: \(self.connectTimeout)"
        text += ", commandTimeout: \(self.commandTimeout.map { "\($0)" } ?? "none"))"
        return text
    }

    /// The same as ``description``: the password is never shown.
    public var debugDescription: String { self.description }

    /// What `dump` and debuggers show: every setting, the password as `***`.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "host": self.host,
                "port": self.port,
                "username": self.username as Any,
                "password": self.password.map { _ in "***" } as Any,
                "database": self.database,
                "clientName": self.clientName as Any,
                "tls": self.tls.map { "on, serverName: \($0.serverName ?? "(host)")" } ?? "off",
                "protocolVersion": self.protocolVersion,
                "connectTimeout": self.connectTimeout,
                "commandTimeout": self.commandTimeout as Any,
                "maxBulkLength": self.maxBulkLength,
                "maxAggregateCount": self.maxAggregateCount,
                "maxNestingDepth": self.maxNestingDepth,
            ],
            displayStyle: .struct
        )
    }
}
