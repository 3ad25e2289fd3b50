import CommonSupport
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#else
import Darwin
#endif

/// Servers that live as long as the test process (``RedisServer/shared()``, ``RedisCluster/shared()``): a test process
/// ends without running the deinitialisers of globals, so when it exits they are killed (SIGKILL, which cannot hang)
/// and their directories removed.
enum ProcessExitCleanup {
    private static let servers = Locked<[(pid: Int32, directory: String)]>([])
    /// Installs the `atexit` handler the first time it is read.
    private static let installed: Bool = {
        atexit { ProcessExitCleanup.run() }
        return true
    }()

    /// Kills `server` and removes its files when the process exits.
    static func register(_ server: RedisServer) {
        _ = installed
        servers.withLock { $0.append((server.pid ?? 0, server.directory.path)) }
    }

    private static func run() {
        for server in servers.withLock({ $0 }) {
            if server.pid > 0 { _ = kill(server.pid, SIGKILL) }
            try? FileManager.default.removeItem(atPath: server.directory)
        }
    }
}
