/// Which node serves which hash slot: a value built from `CLUSTER SHARDS` (or `CLUSTER SLOTS`) and patched by
/// `MOVED` redirections. Pure data, so routing is tested without servers.
public struct ClusterSlotMap: Sendable, Hashable {
    /// One primary with its replicas, and the slot ranges it serves.
    public struct Shard: Sendable, Hashable {
        /// The primary's address.
        public var primary: ClusterNodeAddress
        /// Its replicas' addresses (healthy ones first).
        public var replicas: [ClusterNodeAddress]

        /// A shard.
        public init(primary: ClusterNodeAddress, replicas: [ClusterNodeAddress] = []) {
            self.primary = primary
            self.replicas = replicas
        }
    }

    /// Every shard that owns at least one slot (or that a redirection named).
    public private(set) var shards: [Shard]
    /// `owners[slot]` is an index into ``shards``, or `unassigned`.
    private var owners: [UInt16]
    private static let unassigned = UInt16.max

    /// An empty map: no slot is served.
    public init() {
        self.shards = []
        self.owners = Array(repeating: Self.unassigned, count: ClusterHashSlot.count)
    }

    /// A map from shards and the slot ranges each serves (ranges are inclusive, as Redis reports them).
    public init(_ assignments: [(shard: Shard, slots: [ClosedRange<Int>])]) {
        self.init()
        for (shard, ranges) in assignments {
            for range in ranges { self.assign(range, to: shard) }
        }
    }

    /// The primary serving `slot`, or `nil` when no node serves it (yet).
    public func primary(forSlot slot: Int) -> ClusterNodeAddress? {
        self.shard(forSlot: slot)?.primary
    }

    /// The shard serving `slot`.
    public func shard(forSlot slot: Int) -> Shard? {
        guard (0..<ClusterHashSlot.count).contains(slot) else { return nil }
        let owner = owners[slot]
        return owner == Self.unassigned ? nil : shards[Int(owner)]
    }

    /// Every primary that serves at least one slot, in a stable order.
    public var primaries: [ClusterNodeAddress] {
        var seen = Set<ClusterNodeAddress>()
        var result: [ClusterNodeAddress] = []
        for owner in Set(owners) where owner != Self.unassigned {
            let primary = shards[Int(owner)].primary
            if seen.insert(primary).inserted { result.append(primary) }
        }
        return result.sorted { ($0.host, $0.port) < ($1.host, $1.port) }
    }

    /// Whether every slot has a primary.
    public var coversAllSlots: Bool { !owners.contains(Self.unassigned) }

    /// Assigns the slots to a shard (the one with the same primary if it is known).
    public mutating func assign(_ slots: ClosedRange<Int>, to shard: Shard) {
        let index: Int
        if let existing = shards.firstIndex(where: { $0.primary == shard.primary }) {
            if !shard.replicas.isEmpty { shards[existing].replicas = shard.replicas }
            index = existing
        } else {
            shards.append(shard)
            index = shards.count - 1
        }
        let clamped = max(slots.lowerBound, 0)...min(slots.upperBound, ClusterHashSlot.count - 1)
        for slot in clamped { owners[slot] = UInt16(index) }
    }

    /// The map after `MOVED slot address`: the slot now belongs to that primary.
    public mutating func move(slot: Int, to primary: ClusterNodeAddress) {
        self.assign(slot...slot, to: Shard(primary: primary))
    }
}

extension ClusterSlotMap {
    /// Parses a `CLUSTER SHARDS` reply (Redis 7): for each shard, its `slots` (start/end pairs) and `nodes` (maps
    /// with `ip`/`endpoint`/`hostname`, `port` or `tls-port`, `role`, `health`). `tls` picks `tls-port`.
    package init(shardsReply reply: RESPValue, tls: Bool) throws {
        guard let shards = reply.array else { throw Self.malformed(reply, command: "CLUSTER SHARDS") }
        self.init()
        for shardValue in shards {
            let fields = Self.fields(shardValue)
            guard let slotValues = fields["slots"]?.array, let nodes = fields["nodes"]?.array else {
                throw Self.malformed(shardValue, command: "CLUSTER SHARDS")
            }
            let bounds = slotValues.compactMap(\.int)
            guard bounds.count == slotValues.count, bounds.count % 2 == 0 else {
                throw Self.malformed(shardValue, command: "CLUSTER SHARDS")
            }
            var primary: ClusterNodeAddress?
            var replicas: [(address: ClusterNodeAddress, healthy: Bool)] = []
            for nodeValue in nodes {
                let node = Self.fields(nodeValue)
                let host = [node["endpoint"], node["ip"], node["hostname"]].lazy.compactMap { $0?.string }
                    .first { !$0.isEmpty && $0 != "?" }
                let port = (tls ? node["tls-port"]?.int : nil) ?? node["port"]?.int ?? node["tls-port"]?.int
                guard let host, let port, port > 0 else { continue }
                let address = ClusterNodeAddress(host: host, port: port)
                let healthy = node["health"]?.string.map { $0 == "online" } ?? true
                switch node["role"]?.string {
                case "master", "primary":
                    if primary == nil || healthy { primary = address }
                default:
                    replicas.append((address, healthy))
                }
            }
            guard let primary else { continue }  // a shard whose primary is unknown or gone: its slots stay unassigned
            guard !bounds.isEmpty else { continue }
            let shard = Shard(
                primary: primary,
                replicas: replicas.filter(\.healthy).map(\.address) + replicas.filter { !$0.healthy }.map(\.address)
            )
            for pair in stride(from: 0, to: bounds.count, by: 2) where bounds[pair] <= bounds[pair + 1] {
                self.assign(bounds[pair]...bounds[pair + 1], to: shard)
            }
        }
    }

    /// Parses a `CLUSTER SLOTS` reply (older servers): `[start, end, [host, port, id, …], replicas…]` per range.
    package init(slotsReply reply: RESPValue) throws {
        guard let ranges = reply.array else { throw Self.malformed(reply, command: "CLUSTER SLOTS") }
        self.init()
        for rangeValue in ranges {
            guard let parts = rangeValue.array, parts.count >= 3, let start = parts[0].int, let end = parts[1].int,
                start <= end
            else { throw Self.malformed(rangeValue, command: "CLUSTER SLOTS") }
            let nodes = parts.dropFirst(2).compactMap { value -> ClusterNodeAddress? in
                guard let node = value.array, node.count >= 2, let host = node[0].string, !host.isEmpty, host != "?",
                    let port = node[1].int, port > 0
                else { return nil }
                return ClusterNodeAddress(host: host, port: port)
            }
            guard let primary = nodes.first else { continue }
            self.assign(start...end, to: Shard(primary: primary, replicas: Array(nodes.dropFirst())))
        }
    }

    /// The fields of a RESP3 map or a RESP2 flat `[name, value, …]` array.
    private static func fields(_ value: RESPValue) -> [String: RESPValue] {
        let flat = value.array ?? []
        var fields: [String: RESPValue] = [:]
        for index in stride(from: 0, to: flat.count - 1, by: 2) {
            if let name = flat[index].string { fields[name] = flat[index + 1] }
        }
        return fields
    }

    private static func malformed(_ value: RESPValue, command: String) -> RedisError {
        RedisError.unexpectedReply(value, expected: "a \(command) reply")
    }
}
