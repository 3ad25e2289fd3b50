import CommonSupport
import RedisClient
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `redis-server` child process the outage demo starts, kills and restarts (no persistence, loopback only).
final class RedisServerProcess: Sendable {
    let executable: String
    let port: Int
    private let process = Locked<Process?>(nil)

    init(executable: String?, port: Int?) throws {
        self.executable = try executable ?? Self.find()
        self.port = try port ?? Self.freePort()
    }

    var url: String { "redis://127.0.0.1:\(port)" }

    /// Starts the server and waits until it accepts TCP connections (at most 10 s).
    func start() async throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: executable)
        child.arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"]
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        process.withLock { $0 = child }
        let deadline = ContinuousClock.now + .seconds(10)
        while !Self.accepts(port: port) {
            guard child.isRunning else { throw DemoError("redis-server exited at start (port \(port) taken?)") }
            guard ContinuousClock.now < deadline else { throw DemoError("redis-server did not accept connections within 10 s") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// SIGKILL, as a crash looks to clients; waits until the process is gone.
    func kill() async {
        guard let child = process.withLock({ $0.take() }) else { return }
        sendKill(child.processIdentifier)
        while child.isRunning { try? await Task.sleep(for: .milliseconds(5)) }
    }

    /// Starts the server again on the same port (empty: no persistence); retries while the port is still held.
    func restart() async throws {
        await kill()
        var attempt = 0
        while true {
            do {
                return try await start()
            } catch {
                attempt += 1
                if attempt >= 20 { throw error }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    deinit {
        if let child = process.withLock({ $0.take() }), child.isRunning {
            sendKill(child.processIdentifier)
        }
    }

    private static func find() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") + ["/usr/bin", "/usr/local/bin", "/opt/homebrew/bin"] {
            let candidate = "\(directory)/redis-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw DemoError("redis-server is not on PATH; install it or pass --redis-server /path/to/redis-server")
    }

    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw DemoError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw DemoError("could not find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// A failure of the demo's own set-up, with what to do about it.
struct DemoError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// SIGKILL to `pid` (a free function: inside `RedisServerProcess`, `kill` names the method).
private func sendKill(_ pid: Int32) {
    _ = kill(pid, SIGKILL)
}
