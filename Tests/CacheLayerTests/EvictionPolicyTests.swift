@testable import CacheLayer
import Testing

@Suite("LRUPolicy")
struct LRUPolicyTests {
    @Test func evictsFromTheLeastRecentlyUsedEnd() {
        var policy = LRUPolicy(capacity: 3)
        var victims: [Int] = []
        for slot in 0..<3 {
            policy.recordInsertion(PolicyEntry(slot: slot, keyHash: 0, weight: 1), victims: &victims)
        }
        #expect(victims.isEmpty)
        policy.recordHit(0, keyHash: 0)
        policy.recordInsertion(PolicyEntry(slot: 3, keyHash: 0, weight: 2), victims: &victims)
        #expect(victims == [1, 2])
        #expect(policy.weightedSize == 3)
    }

    @Test func removalAndUpdateKeepTheWeightExact() {
        var policy = LRUPolicy(capacity: 100)
        var victims: [Int] = []
        policy.recordInsertion(PolicyEntry(slot: 0, keyHash: 0, weight: 10), victims: &victims)
        policy.recordInsertion(PolicyEntry(slot: 5, keyHash: 0, weight: 20), victims: &victims)
        policy.recordUpdate(PolicyEntry(slot: 0, keyHash: 0, weight: 30), victims: &victims)
        #expect(policy.weightedSize == 50)
        policy.recordRemoval(5)
        policy.recordRemoval(5)
        #expect(policy.weightedSize == 30)
        policy.removeAll()
        #expect(policy.weightedSize == 0)
        policy.recordInsertion(PolicyEntry(slot: 5, keyHash: 0, weight: 101), victims: &victims)
        #expect(victims == [5])
    }
}

@Suite("ExpiryOrderPolicy")
struct ExpiryOrderPolicyTests {
    @Test func evictsSoonestExpiryThenOldestInsertion() {
        var policy = ExpiryOrderPolicy(capacity: 4)
        var victims: [Int] = []
        policy.recordInsertion(PolicyEntry(slot: 0, keyHash: 0, weight: 1), victims: &victims)
        policy.recordInsertion(PolicyEntry(slot: 1, keyHash: 0, weight: 1, expiresAt: 50), victims: &victims)
        policy.recordInsertion(PolicyEntry(slot: 2, keyHash: 0, weight: 1), victims: &victims)
        policy.recordInsertion(PolicyEntry(slot: 3, keyHash: 0, weight: 1, expiresAt: 20), victims: &victims)
        policy.recordInsertion(PolicyEntry(slot: 4, keyHash: 0, weight: 3), victims: &victims)
        #expect(victims == [3, 1, 0])
        #expect(policy.weightedSize == 4)
    }

    @Test func staleRecordsAreSkippedAndCompacted() {
        var policy = ExpiryOrderPolicy(capacity: 1_000)
        var victims: [Int] = []
        for round in 0..<100 {
            for slot in 0..<10 {
                policy.recordUpdate(PolicyEntry(slot: slot, keyHash: 0, weight: 1, expiresAt: UInt64(1_000 - round)), victims: &victims)
            }
        }
        policy.recordRemoval(9)
        #expect(policy.weightedSize == 9)
        policy.recordInsertion(PolicyEntry(slot: 20, keyHash: 0, weight: 995), victims: &victims)
        // The latest expiry times are all 901; the oldest insertions among them (slots 0, 1, ...) go first.
        #expect(victims == [0, 1, 2, 3])
        #expect(policy.weightedSize == 1_000)
    }
}
