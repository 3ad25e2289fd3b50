/// Figures Redis reports about itself (`INFO`), from ``RedisCache/serverInfo()``.
///
/// They describe the whole server (or, for ``keys``, the selected database), not only this cache's keys.
public struct RedisServerInfo: Sendable, Hashable, Codable {
    /// The server's version, e.g. `7.2.4`.
    public var version: String = ""
    /// Bytes allocated by Redis (`used_memory`).
    public var usedMemory: Int = 0
    /// The memory limit (`maxmemory`); 0 when there is none.
    public var maxMemory: Int = 0
    /// Keys evicted because of `maxmemory` since the server started (`evicted_keys`).
    public var evictedKeys: Int = 0
    /// Keys removed because their TTL ran out since the server started (`expired_keys`).
    public var expiredKeys: Int = 0
    /// Successful key lookups since the server started (`keyspace_hits`), for every client.
    public var keyspaceHits: Int = 0
    /// Failed key lookups since the server started (`keyspace_misses`), for every client.
    public var keyspaceMisses: Int = 0
    /// Keys in the selected database, every namespace included (`dbN:keys=`).
    public var keys: Int = 0

    /// An empty report (every figure 0, no version), to fill in; ``RedisCache/serverInfo()`` makes real ones.
    public init() {}

    /// Parses the text of `INFO`; `database` selects the `dbN` line for ``keys``.
    init(infoText: String, database: Int) {
        self.init()
        let dbPrefix = "db\(database):"
        for line in infoText.split(whereSeparator: \.isNewline) {
            if line.hasPrefix(dbPrefix) {
                // db0:keys=12,expires=3,avg_ttl=0
                for field in line.dropFirst(dbPrefix.count).split(separator: ",") where field.hasPrefix("keys=") {
                    keys = Int(field.dropFirst("keys=".count)) ?? 0
                }
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon]
            let value = line[line.index(after: colon)...]
            switch name {
            case "redis_version": version = String(value)
            case "used_memory": usedMemory = Int(value) ?? 0
            case "maxmemory": maxMemory = Int(value) ?? 0
            case "evicted_keys": evictedKeys = Int(value) ?? 0
            case "expired_keys": expiredKeys = Int(value) ?? 0
            case "keyspace_hits": keyspaceHits = Int(value) ?? 0
            case "keyspace_misses": keyspaceMisses = Int(value) ?? 0
            default: break
            }
        }
    }
}
