@testable import CacheLayer
import Testing

@Suite("LRUPolicy")
struct LRUPolicyTests {
    @Test func evictsFromTheLeastRecentlyUsedEnd() {
        var policy = LRUPolicy(capacity: 3)
        var victims: [Int] = []
        for slot in 0..<3 {
            policy.recordInsertion(slot, keyHash: 0, weight: 1, expiresAt: .max, victims: &victims)
        }
        #expect(victims.isEmpty)
        policy.recordHit(0, keyHash: 0)
        policy.recordInsertion(3, keyHash: 0, weight: 2, expiresAt: .max, victims: &victims)
        #expect(victims == [1, 2])
        #expect(policy.weightedSize == 3)
    }

    @Test func removalAndUpdateKeepTheWeightExact() {
        var policy = LRUPolicy(capacity: 100)
        var victims: [Int] = []
        policy.recordInsertion(0, keyHash: 0, weight: 10, expiresAt: .max, victims: &victims)
        policy.recordInsertion(5, keyHash: 0, weight: 20, expiresAt: .max, victims: &victims)
        policy.recordUpdate(0, keyHash: 0, weight: 30, expiresAt: .max, victims: &victims)
        #expect(policy.weightedSize == 50)
        policy.recordRemoval(5)
        policy.recordRemoval(5)
        #expect(policy.weightedSize == 30)
        policy.removeAll()
        #expect(policy.weightedSize == 0)
        policy.recordInsertion(5, keyHash: 0, weight: 101, expiresAt: .max, victims: &victims)
        #expect(victims == [5])
    }
}

@Suite("ExpiryOrderPolicy")
struct ExpiryOrderPolicyTests {
    @Test func evictsSoonestExpiryThenOldestInsertion() {
        var policy = ExpiryOrderPolicy(capacity: 4)
        var victims: [Int] = []
        policy.recordInsertion(0, keyHash: 0, weight: 1, expiresAt: .max, victims: &victims)
        policy.recordInsertion(1, keyHash: 0, weight: 1, expiresAt: 50, victims: &victims)
        policy.recordInsertion(2, keyHash: 0, weight: 1, expiresAt: .max, victims: &victims)
        policy.recordInsertion(3, keyHash: 0, weight: 1, expiresAt: 20, victims: &victims)
        policy.recordInsertion(4, keyHash: 0, weight: 3, expiresAt: .max, victims: &victims)
        #expect(victims == [3, 1, 0])
        #expect(policy.weightedSize == 4)
    }

    @Test func staleRecordsAreSkippedAndCompacted() {
        var policy = ExpiryOrderPolicy(capacity: 1_000)
        var victims: [Int] = []
        for round in 0..<100 {
            for slot in 0..<10 {
                policy.recordUpdate(slot, keyHash: 0, weight: 1, expiresAt: UInt64(1_000 - round), victims: &victims)
            }
        }
        policy.recordRemoval(9)
        #expect(policy.weightedSize == 9)
        policy.recordInsertion(20, keyHash: 0, weight: 995, expiresAt: .max, victims: &victims)
        // The latest expiry times are all 901; the oldest insertions among them (slots 0, 1, ...) go first.
        #expect(victims == [0, 1, 2, 3])
        #expect(policy.weightedSize == 1_000)
    }
}
