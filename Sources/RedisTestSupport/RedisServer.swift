import CommonSupport
import RedisClient
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A real `redis-server` process on a free loopback port, for tests. Each test starts its own, so
/// tests run in parallel without sharing state.
///
/// ```swift
/// try await withRedisServer(.init(password: "secret")) { server in
///     // connect to server.host:server.port (or server.url) …
///     try await server.pause()   // SIGSTOP: the server stops answering
///     try await server.resume()  // SIGCONT
/// }
/// ```
///
/// `redis-server` must be on `PATH` (or in `REDIS_SERVER`); when it is missing, ``start(_:)`` throws,
/// so tests fail rather than silently pass. Persistence is off (`--save "" --appendonly no`).
public final class RedisServer: Sendable {
    /// Options for the server.
    public struct Options: Sendable {
        /// An ACL user: `user <name> on ><password> <rules>`.
        public struct User: Sendable {
            /// User name.
            public var name: String
            /// Password.
            public var password: String
            /// ACL rules, e.g. `["~*", "&*", "+@all"]`.
            public var rules: [String]

            /// A user with the given rules (all keys, channels and commands by default).
            public init(name: String, password: String, rules: [String] = ["~*", "&*", "+@all"]) {
                self.name = name
                self.password = password
                self.rules = rules
            }
        }

        /// `requirepass`: the password of the `default` user.
        public var password: String?
        /// Extra ACL users.
        public var users: [User]
        /// Serve TLS only (plain port disabled), with a throwaway CA and certificate made by `openssl`
        /// for ``certificateNames``; see ``RedisServer/caCertificatePath``.
        public var tls: Bool
        /// With ``tls``: the subject alternative names of the server's certificate, as `openssl` spells them.
        /// Default: `DNS:localhost` and `IP:127.0.0.1`.
        public var certificateNames: [String]
        /// `protected-mode` (off by default, since tests connect without a password).
        public var protectedMode: Bool
        /// `enable-debug-command yes`, so tests may run `DEBUG PROTOCOL`, `DEBUG SLEEP`, …
        public var enableDebugCommand: Bool
        /// Further command-line arguments, e.g. `["--databases", "4"]`.
        public var extraArguments: [String]
        /// The `redis-server` binary; `nil` looks for it in `REDIS_SERVER`, then on `PATH`.
        public var executablePath: String?
        /// The port to listen on; `nil` picks a free loopback port.
        public var port: Int?
        /// With ``tls``: a directory holding a CA (`ca.crt`, `ca.key`, as ``RedisServer/makeCertificateAuthority(in:)``
        /// writes them) that signs the server's certificate instead of a throwaway CA of its own, so that servers
        /// which must trust each other (the nodes of a cluster) and their clients share one CA.
        public var certificateAuthority: URL?

        /// Options; the defaults give a plain, password-less server with `DEBUG` enabled.
        public init(
            password: String? = nil,
            users: [User] = [],
            tls: Bool = false,
            certificateNames: [String] = ["DNS:localhost", "IP:127.0.0.1"],
            protectedMode: Bool = false,
            enableDebugCommand: Bool = true,
            extraArguments: [String] = [],
            executablePath: String? = nil,
            port: Int? = nil,
            certificateAuthority: URL? = nil
        ) {
            self.password = password
            self.users = users
            self.tls = tls
            self.certificateNames = certificateNames
            self.protectedMode = protectedMode
            self.enableDebugCommand = enableDebugCommand
            self.extraArguments = extraArguments
            self.executablePath = executablePath
            self.port = port
            self.certificateAuthority = certificateAuthority
        }
    }

    /// Why the server could not be started or controlled.
    public struct Error: Swift.Error, CustomStringConvertible {
        /// What happened and what to do.
        public var description: String
    }

    /// Always `127.0.0.1`.
    public let host = "127.0.0.1"
    /// The port the server listens on (the TLS port when ``Options/tls`` is set).
    public let port: Int
    /// The options it was started with.
    public let options: Options
    /// PEM file of the throwaway CA that signed the server's certificate (`nil` without TLS).
    public let caCertificatePath: String?
    /// The temporary directory holding the log, certificates and working files; removed by ``stop()``.
    public let directory: URL

    private let process: Locked<Process?>

    /// `redis://host:port` or `rediss://host:port`, with the ``Options/password`` when set.
    public var url: String {
        let auth = self.options.password.map { ":\($0)@" } ?? ""
        return "\(self.options.tls ? "rediss" : "redis")://\(auth)\(self.host):\(self.port)"
    }

    /// The server's process id, or `nil` once stopped.
    public var pid: Int32? { self.process.withLock { $0.map(\.processIdentifier) } }

    private init(port: Int, options: Options, caCertificatePath: String?, directory: URL, process: Process) {
        self.port = port
        self.options = options
        self.caCertificatePath = caCertificatePath
        self.directory = directory
        self.process = Locked(process)
    }

    deinit {
        self.process.withLock { process in
            if let process, process.isRunning {
                _ = posixKill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
        try? FileManager.default.removeItem(at: self.directory)
    }

    /// Starts a server on a free loopback port and waits until it accepts connections.
    /// Retries with another port when the chosen one was taken in the meantime.
    public static func start(_ options: Options = .init()) async throws -> RedisServer {
        let executable = try options.executablePath ?? Self.findRedisServer()
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("redis-test-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var caPath: String?
        if options.tls {
            caPath = try Self.makeCertificates(in: directory, names: options.certificateNames, authority: options.certificateAuthority)
        }
        var lastError: (any Swift.Error)?
        for _ in 0..<(options.port == nil ? 10 : 1) {
            let port = try options.port ?? Self.freePort()
            do {
                let process = try await Self.launch(
                    executable: executable,
                    port: port,
                    options: options,
                    directory: directory
                )
                return RedisServer(
                    port: port,
                    options: options,
                    caCertificatePath: caPath,
                    directory: directory,
                    process: process
                )
            } catch let error as PortInUse {
                lastError = error
                continue
            }
        }
        throw Error(description: "could not find a free port for redis-server after 10 attempts: \(String(describing: lastError))")
    }

    /// Stops the server with SIGTERM, waits for it to exit and removes its files. Safe to call twice.
    public func stop() async {
        await self.terminate(signal: SIGTERM)
        try? FileManager.default.removeItem(at: self.directory)
    }

    /// Kills the server with SIGKILL (a crash, as far as clients can tell) and waits for it to exit.
    public func kill() async {
        await self.terminate(signal: SIGKILL)
    }

    /// Suspends the server with SIGSTOP: connections stay open but nothing is answered.
    public func pause() throws {
        try self.signal(SIGSTOP)
    }

    /// Resumes a paused server with SIGCONT.
    public func resume() throws {
        try self.signal(SIGCONT)
    }

    /// Stops the server (SIGTERM, or SIGKILL when `kill` is set) and starts it again on the same port,
    /// with the same options. Data is lost (persistence is off). Returns once it accepts connections again.
    public func restart(kill: Bool = false) async throws {
        await self.terminate(signal: kill ? SIGKILL : SIGTERM)
        let executable = try self.options.executablePath ?? Self.findRedisServer()
        var attempt = 0
        while true {
            do {
                let process = try await Self.launch(
                    executable: executable,
                    port: self.port,
                    options: self.options,
                    directory: self.directory
                )
                self.process.withLock { $0 = process }
                return
            } catch let error as PortInUse {
                // The old socket may linger for a moment.
                attempt += 1
                if attempt > 50 { throw Error(description: "port \(self.port) stayed busy after restart: \(error)") }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    private func signal(_ signal: Int32) throws {
        guard let pid = self.pid else { throw Error(description: "redis-server is not running; start it first") }
        guard posixKill(pid, signal) == 0 else { throw Error(description: "kill(\(pid), \(signal)) failed: errno \(errno)") }
    }

    private func terminate(signal: Int32) async {
        guard let process = self.process.withLock({ p -> Process? in
            defer { p = nil }
            return p
        }) else { return }
        if process.isRunning {
            posixKill(process.processIdentifier, SIGCONT)  // a paused server cannot handle SIGTERM
            posixKill(process.processIdentifier, signal)
        }
        var waited = 0
        while process.isRunning {
            try? await Task.sleep(for: .milliseconds(10))
            waited += 1
            // Foundation's Process starts the child with the spawning thread's signal mask, and the test runner's
            // threads block SIGTERM, so redis-server may never see it: escalate to SIGKILL after 200 ms, not 5 s.
            if waited == 20 { posixKill(process.processIdentifier, SIGKILL) }
        }
    }

    // MARK: launching

    private struct PortInUse: Swift.Error {
        var log: String
    }

    private static func findRedisServer() throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["REDIS_SERVER"] { return explicit }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") + ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
            let candidate = "\(dir)/redis-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw Error(
            description: "redis-server was not found on PATH; the Redis tests need a real server. "
                + "Install it (`apt-get install redis-server`, `brew install redis`) or set REDIS_SERVER to its path"
        )
    }

    private static func launch(
        executable: String,
        port: Int,
        options: Options,
        directory: URL
    ) async throws -> Process {
        let logPath = directory.appendingPathComponent("redis-\(port).log").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        var arguments = [
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", directory.path,
            "--logfile", logPath,
            "--protected-mode", options.protectedMode ? "yes" : "no",
        ]
        if options.tls {
            let d = directory.path
            arguments += [
                "--port", "0",
                "--tls-port", String(port),
                "--tls-cert-file", "\(d)/server.crt",
                "--tls-key-file", "\(d)/server.key",
                "--tls-ca-cert-file", "\(d)/ca.crt",
                "--tls-auth-clients", "no",
            ]
        } else {
            arguments += ["--port", String(port)]
        }
        if let password = options.password { arguments += ["--requirepass", password] }
        for user in options.users {
            arguments += ["--user", user.name, "on", ">\(user.password)"] + user.rules
        }
        if options.enableDebugCommand { arguments += ["--enable-debug-command", "yes"] }
        arguments += options.extraArguments

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()

        let started = ContinuousClock.now
        while true {
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if log.contains("Ready to accept connections") { return process }
            if !process.isRunning {
                if log.contains("Address already in use") { throw PortInUse(log: log) }
                throw Error(description: "redis-server exited during start-up (status \(process.terminationStatus)); log:\n\(log)")
            }
            if ContinuousClock.now - started > .seconds(10) {
                posixKill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                throw Error(description: "redis-server did not become ready within 10 s; log:\n\(log)")
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// A loopback port that was free a moment ago (for a second port of a server, such as a cluster bus port).
    public static func freeLoopbackPort() throws -> Int { try freePort() }

    /// A port that was free a moment ago: bind port 0 on loopback, read the port, close.
    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Error(description: "socket() failed: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw Error(description: "bind() failed: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw Error(description: "getsockname() failed: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Makes a throwaway CA and a server certificate for `names` with `openssl`; returns the CA path.
    /// Writes a throwaway CA (`ca.crt`, `ca.key`, valid two days) into `directory`, for
    /// ``Options/certificateAuthority``.
    public static func makeCertificateAuthority(in directory: URL) throws {
        let d = directory.path
        try Self.run("openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "\(d)/ca.key", "-out", "\(d)/ca.crt", "-days", "2", "-subj", "/CN=RedisTestSupport CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
    }

    /// The server's key and certificate in `directory`, signed by `authority`'s CA or by a new one made there;
    /// returns the path of the CA certificate the server trusts (`directory/ca.crt`).
    private static func makeCertificates(in directory: URL, names: [String], authority: URL?) throws -> String {
        let d = directory.path
        if let authority {
            try FileManager.default.copyItem(at: authority.appendingPathComponent("ca.crt"), to: directory.appendingPathComponent("ca.crt"))
        } else {
            try Self.makeCertificateAuthority(in: directory)
        }
        let caKey = (authority ?? directory).appendingPathComponent("ca.key").path
        try Self.run("openssl", [
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "\(d)/server.key", "-out", "\(d)/server.csr", "-subj", "/CN=localhost",
        ])
        // clientAuth too: a cluster node presents its certificate when it connects to the others' bus ports.
        let extensions = """
            subjectAltName=\(names.joined(separator: ","))
            basicConstraints=CA:FALSE
            keyUsage=critical,digitalSignature,keyEncipherment
            extendedKeyUsage=serverAuth,clientAuth
            """
        try extensions.write(toFile: "\(d)/server.ext", atomically: true, encoding: .utf8)
        try Self.run("openssl", [
            "x509", "-req", "-in", "\(d)/server.csr", "-CA", "\(d)/ca.crt", "-CAkey", caKey,
            "-CAcreateserial", "-CAserial", "\(d)/ca.srl", "-out", "\(d)/server.crt", "-days", "2", "-sha256", "-extfile", "\(d)/server.ext",
        ])
        return "\(d)/ca.crt"
    }

    private static func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        let errors = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        let output = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Error(
                description: "\(tool) \(arguments.joined(separator: " ")) failed (\(process.terminationStatus)): "
                    + String(decoding: output, as: UTF8.self) + "; is openssl installed?"
            )
        }
    }
}

@discardableResult
private func posixKill(_ pid: pid_t, _ signal: Int32) -> Int32 {
    #if canImport(Glibc)
    Glibc.kill(pid, signal)
    #elseif canImport(Musl)
    Musl.kill(pid, signal)
    #else
    Darwin.kill(pid, signal)
    #endif
}

/// Starts a ``RedisServer``, runs `body` with it and stops it afterwards, also when `body` throws.
public func withRedisServer<T>(
    _ options: RedisServer.Options = .init(),
    _ body: (RedisServer) async throws -> T
) async throws -> T {
    try await stopping(RedisServer.start(options), stop: { await $0.stop() }, body)
}

/// Runs `body` with `fixture`, then stops it, also when `body` throws.
func stopping<Fixture, T>(
    _ fixture: Fixture,
    stop: (Fixture) async -> Void,
    _ body: (Fixture) async throws -> T
) async throws -> T {
    do {
        let result = try await body(fixture)
        await stop(fixture)
        return result
    } catch {
        await stop(fixture)
        throw error
    }
}

extension RedisServer {
    /// One plain server for the whole test process, started on first use and killed when the process exits: for
    /// suites that only need *a* Redis, each test in a namespace of its own. Tests that kill, pause, restart or
    /// flush a server start their own with ``start(_:)`` instead.
    public static func shared() async throws -> RedisServer {
        try await sharedServer.value
    }
}

private let sharedServer = Task<RedisServer, any Error> {
    let server = try await RedisServer.start()
    ProcessExitCleanup.register(server)
    return server
}
