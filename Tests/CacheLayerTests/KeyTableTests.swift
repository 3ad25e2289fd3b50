@testable import CacheLayer
import CommonSupport
import Testing

/// A table over string keys kept in a slot array, as a shard uses it.
private struct KeyedTable {
    var table = KeyTable()
    var keys: [String?] = []
    var freeSlots: [Int] = []
    let hash: (String) -> UInt64

    func slot(of key: String) -> Int? {
        table.slot(hash: hash(key)) { keys[$0] == key }
    }

    mutating func insert(_ key: String) -> Int {
        let slot = freeSlots.popLast() ?? keys.count
        if slot == keys.count { keys.append(nil) }
        keys[slot] = key
        table.insert(hash: hash(key), slot: slot)
        return slot
    }

    mutating func remove(_ key: String) -> Bool {
        guard let slot = slot(of: key) else { return false }
        let removed = table.remove(hash: hash(key), slot: slot)
        keys[slot] = nil
        freeSlots.append(slot)
        return removed
    }
}

@Suite("KeyTable")
struct KeyTableTests {
    @Test func findsWhatWasInsertedAndNothingElse() {
        var table = KeyedTable(hash: { UInt64(UInt(bitPattern: $0.hashValue)) })
        let a = table.insert("a")
        let b = table.insert("b")
        #expect(table.slot(of: "a") == a)
        #expect(table.slot(of: "b") == b)
        #expect(table.slot(of: "c") == nil)
        #expect(table.table.count == 2)
        let removed = table.remove("a")
        #expect(removed)
        #expect(table.slot(of: "a") == nil)
        #expect(table.slot(of: "b") == b)
        let removedAgain = table.remove("a")
        #expect(!removedAgain)
        #expect(table.table.count == 1)
    }

    @Test func anEmptyTableFindsNothingAndRemovesNothing() {
        var table = KeyTable()
        #expect(table.slot(hash: 42) { _ in true } == nil)
        let removed = table.remove(hash: 42, slot: 0)
        #expect(!removed)
        #expect(table.capacity == 0)
    }

    /// Keys with one hash share one probe run: each is told apart by its key, and removing any of them (the
    /// first, a middle one, the last) keeps the others reachable.
    @Test(arguments: [0, 3, 7])
    func collidingKeysStayReachableAfterARemoval(removed: Int) {
        var table = KeyedTable(hash: { _ in 0xDEAD_BEEF_0000_0005 })
        let keys = (0..<8).map { "key\($0)" }
        var slots: [String: Int] = [:]
        for key in keys { slots[key] = table.insert(key) }
        let found = table.remove(keys[removed])
        #expect(found)
        for (index, key) in keys.enumerated() {
            #expect(table.slot(of: key) == (index == removed ? nil : slots[key]))
        }
    }

    /// Runs that wrap around the end of the bucket array: hashes whose home is the last bucket.
    @Test func runsWrapAroundTheEnd() {
        var table = KeyedTable(hash: { UInt64($0.utf8.count) * 16 - 1 })
        let keys = ["a", "bb", "ccc", "dddd"].flatMap { [$0, $0.uppercased()] }
        for key in keys { _ = table.insert(key) }
        #expect(table.table.capacity == KeyTable.minimumCapacity)
        for key in keys { #expect(table.slot(of: key) != nil) }
        let removedA = table.remove("a")
        let removedBB = table.remove("BB")
        #expect(removedA && removedBB)
        for key in keys where key != "a" && key != "BB" { #expect(table.slot(of: key) != nil) }
    }

    @Test func growsPastThreeQuartersFull() {
        var table = KeyTable()
        for slot in 0..<12 { table.insert(hash: UInt64(slot) &* 0x9E37_79B9_7F4A_7C15, slot: slot) }
        #expect(table.capacity == 16)
        table.insert(hash: 12 &* 0x9E37_79B9_7F4A_7C15, slot: 12)
        #expect(table.capacity == 32)
        for slot in 0...12 {
            #expect(table.slot(hash: UInt64(slot) &* 0x9E37_79B9_7F4A_7C15) { $0 == slot } == slot)
        }
    }

    /// A table that grew to 100,000 entries and was emptied again is back to its smallest size.
    @Test func anEmptiedTableGivesItsMemoryBack() {
        var table = KeyTable()
        let hashes = (0..<100_000).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 }
        for (slot, hash) in hashes.enumerated() { table.insert(hash: hash, slot: slot) }
        #expect(table.capacity == 1 << 18)
        var removals = 0
        for (slot, hash) in hashes.enumerated() where table.remove(hash: hash, slot: slot) { removals += 1 }
        #expect(removals == hashes.count)
        #expect(table.count == 0)
        #expect(table.capacity == KeyTable.minimumCapacity)
    }

    /// Random inserts, removals and lookups against a `Dictionary`, with hashes drawn from a small range so that
    /// many keys share hashes and probe runs, through growth and shrinking.
    @Test(arguments: [1 as UInt64, 2, 3])
    func agreesWithADictionary(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        var table = KeyedTable(hash: { key in
            // Few distinct hashes (so keys collide), spread over all 64 bits.
            UInt64(key.utf8.reduce(0) { ($0 &* 31 &+ Int($1)) } % 97) &* 0x9E37_79B9_7F4A_7C15
        })
        var expected: [String: Int] = [:]
        var peak = 0
        var shrinks = 0
        for step in 0..<60_000 {
            // Phases of mostly inserts and mostly removals, so the table grows and shrinks repeatedly.
            let (insertShare, removeShare) = (step / 10_000) % 2 == 0 ? (70, 10) : (3, 77)
            let key = "k\(random.next(upperBound: 2_000 as UInt64))"
            let roll = Int(random.next(upperBound: 100 as UInt64))
            let capacity = table.table.capacity
            if roll < insertShare {
                if expected[key] == nil { expected[key] = table.insert(key) }
            } else if roll < insertShare + removeShare {
                let removed = table.remove(key)
                #expect(removed == (expected.removeValue(forKey: key) != nil))
            } else {
                #expect(table.slot(of: key) == expected[key])
            }
            if table.table.capacity < capacity { shrinks += 1 }
            peak = max(peak, expected.count)
            #expect(table.table.count == expected.count)
        }
        for (key, slot) in expected { #expect(table.slot(of: key) == slot) }
        // Load stays between 1/8 and 3/4 once the table is past its smallest size.
        #expect(table.table.count * 4 <= table.table.capacity * 3)
        #expect(table.table.capacity == KeyTable.minimumCapacity || table.table.count * 8 >= table.table.capacity)
        #expect(peak > 1_000)
        #expect(shrinks >= 3)
    }
}
