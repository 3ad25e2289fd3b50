import CommonSupport
import CacheLayer
import Testing

@Suite("CountMinSketch")
struct CountMinSketchTests {
    private func hash(_ key: Int) -> UInt64 { SplitMix64.mix(UInt64(key)) }

    @Test func countsOccurrencesUpToFifteen() {
        var sketch = CountMinSketch()
        sketch.ensureCapacity(512)
        for _ in 0..<5 { sketch.increment(hash(1)) }
        #expect(sketch.frequency(hash(1)) == 5)
        #expect(sketch.frequency(hash(2)) == 0)
        for _ in 0..<30 { sketch.increment(hash(3)) }
        #expect(sketch.frequency(hash(3)) == 15)
    }

    @Test func unsizedSketchCountsNothing() {
        var sketch = CountMinSketch()
        sketch.increment(hash(1))
        #expect(!sketch.isInitialized)
        #expect(sketch.frequency(hash(1)) == 0)
    }

    @Test func estimatesStayCloseUnderLoad() {
        // 500 keys in a sketch sized for 512: the minimum of four counters rarely collides everywhere.
        var sketch = CountMinSketch(samplesPerEntry: 1000)
        sketch.ensureCapacity(512)
        for key in 0..<500 {
            for _ in 0..<(key % 8) { sketch.increment(hash(key)) }
        }
        var exact = 0
        for key in 0..<500 {
            let estimate = sketch.frequency(hash(key))
            #expect(estimate >= key % 8, "a count-min sketch never underestimates")
            if estimate == key % 8 { exact += 1 }
        }
        #expect(exact >= 490)
    }

    @Test func resetHalvesEveryCounter() {
        var sketch = CountMinSketch()
        sketch.ensureCapacity(512)
        for _ in 0..<8 { sketch.increment(hash(1)) }
        for _ in 0..<3 { sketch.increment(hash(2)) }
        sketch.reset()
        #expect(sketch.frequency(hash(1)) == 4)
        #expect(sketch.frequency(hash(2)) == 1)
    }

    @Test func agesAfterTenIncrementsPerEntry() {
        var sketch = CountMinSketch()
        sketch.ensureCapacity(64)
        #expect(sketch.sampleSize == 640)
        for _ in 0..<12 { sketch.increment(hash(0)) }
        // Other keys fill the sample; key 0's count must have been halved once the sample completed.
        var key = 1
        var sawReset = false
        var previousSize = sketch.size
        while !sawReset {
            sketch.increment(hash(key))
            key = key % 200 + 1
            sawReset = sketch.size < previousSize
            previousSize = sketch.size
        }
        #expect(sketch.frequency(hash(0)) <= 7)
        #expect(sketch.frequency(hash(0)) >= 6)
        #expect(sketch.size < sketch.sampleSize / 2 + 1)
    }
}
