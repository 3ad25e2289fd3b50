/// A cluster redirection from an error reply: `MOVED <slot> <host>:<port>` (the slot lives elsewhere for good) or
/// `ASK <slot> <host>:<port>` (the key is being migrated: ask the target once, after `ASKING`).
package struct ClusterRedirect: Sendable, Hashable {
    /// Which kind of redirection.
    package enum Kind: Sendable, Hashable {
        /// `MOVED`: update the slot map and retry on the new owner.
        case moved
        /// `ASK`: send `ASKING` and the command to the target, without updating the map.
        case ask
    }

    package var kind: Kind
    package var slot: Int
    package var address: ClusterNodeAddress

    package init(kind: Kind, slot: Int, address: ClusterNodeAddress) {
        self.kind = kind
        self.slot = slot
        self.address = address
    }

    /// Parses the text of an error reply; `nil` when it is not a well-formed `MOVED` or `ASK`.
    package init?(errorText text: some StringProtocol) {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, let slot = Int(parts[1]), (0..<ClusterHashSlot.count).contains(slot),
            let address = ClusterNodeAddress(parts[2])
        else { return nil }
        switch parts[0] {
        case "MOVED": self.kind = .moved
        case "ASK": self.kind = .ask
        default: return nil
        }
        self.slot = slot
        self.address = address
    }
}

/// A cluster node's address as the cluster announces it.
public struct ClusterNodeAddress: Sendable, Hashable, CustomStringConvertible {
    /// Host name or IP address.
    public var host: String
    /// Client port.
    public var port: Int

    /// An address.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` (an IPv6 host may be bracketed, or not: the port follows the last colon).
    public init?(_ text: some StringProtocol) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.host = host
        self.port = port
    }

    /// `host:port`.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
