import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RedisClient
import RedisTestSupport
import Testing

/// The server certificate is checked against the name we meant to reach, and that name is sent with SNI.
@Suite("TLS host names (real redis-server)")
struct TLSHostnameTests {
    @Test("a certificate for localhost only is refused when connecting to 127.0.0.1, accepted with serverName localhost")
    func wrongHostnameIsRefused() async throws {
        try await withRedisServer(.init(tls: true, certificateNames: ["DNS:localhost"])) { server in
            var byAddress = server.configuration()
            byAddress.tls = try .verifying(caCertificatePath: server.caCertificatePath)
            let error = await expectRedisError { _ = try await RedisConnection.connect(configuration: byAddress) }
            #expect(error?.code == .tls, "\(String(describing: error))")

            var named = server.configuration()
            named.tls = try .verifying(caCertificatePath: server.caCertificatePath, serverName: "localhost")
            try await server.withConnection(named) { (connection: RedisConnection) async throws in #expect(try await connection.ping() == "PONG") }

            var otherName = server.configuration()
            otherName.tls = try .verifying(caCertificatePath: server.caCertificatePath, serverName: "cache.example.internal")
            let wrongName = await expectRedisError { _ = try await RedisConnection.connect(configuration: otherName) }
            #expect(wrongName?.code == .tls)
        }
    }

    @Test("the server name goes out with SNI: the configured one, else the host name; never an IP address")
    func sniIsSent() async throws {
        #expect(try await Self.clientHello(host: "127.0.0.1", serverName: "cache.example.internal").contains("cache.example.internal"))
        #expect(try await Self.clientHello(host: "localhost", serverName: nil).contains("localhost"))
        #expect(!(try await Self.clientHello(host: "127.0.0.1", serverName: nil).contains("127.0.0.1")))
    }

    /// The bytes of the first flight a TLS client sends to a plain TCP listener (its ClientHello), with bytes above ASCII as `?`.
    static func clientHello(host: String, serverName: String?) async throws -> String {
        let captured = NIOLockedValueBox<[UInt8]>([])
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(CaptureHandler(captured: captured))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        var configuration = RedisConnectionConfiguration(host: host, port: listener.localAddress!.port!, connectTimeout: .seconds(2))
        configuration.tls = try .verifying(serverName: serverName)
        _ = try? await RedisConnection.connect(configuration: configuration)  // fails: the listener speaks no TLS
        try await listener.close()
        return String(decoding: captured.withLockedValue { $0 }.map { $0 < 128 ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    }

    final class CaptureHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let captured: NIOLockedValueBox<[UInt8]>
        init(captured: NIOLockedValueBox<[UInt8]>) { self.captured = captured }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = Self.unwrapInboundIn(data)
            self.captured.withLockedValue { $0 += buffer.readableBytesView }
            context.close(promise: nil)
        }
    }
}
