/// Redis Cluster's key → hash slot function: CRC16 (XMODEM) of the key, or of its `{hash tag}`, modulo 16384.
///
/// The hash tag is the text between the first `{` and the first `}` after it, when that text is not empty:
/// `{user1000}.following` and `{user1000}.followers` share a slot; `foo{}{bar}` hashes the whole key;
/// `foo{{bar}}zap` hashes `{bar`.
public enum ClusterHashSlot {
    /// The number of hash slots.
    public static let count = 16384

    /// The slot of a key given as bytes.
    public static func slot(of key: some Collection<UInt8>) -> Int {
        if let open = key.firstIndex(of: UInt8(ascii: "{")) {
            let afterOpen = key.index(after: open)
            if let close = key[afterOpen...].firstIndex(of: UInt8(ascii: "}")), close != afterOpen {
                return Int(crc16(key[afterOpen..<close])) & (count - 1)
            }
        }
        return Int(crc16(key)) & (count - 1)
    }

    /// The slot of a key given as text (its UTF-8 bytes).
    public static func slot(of key: String) -> Int {
        slot(of: key.utf8)
    }

    /// CRC16-XMODEM (polynomial 0x1021, initial value 0), as Redis Cluster uses it.
    public static func crc16(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }
}
