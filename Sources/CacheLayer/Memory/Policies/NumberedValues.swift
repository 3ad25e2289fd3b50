/// Values numbered densely from 0, whose numbers are reused once released (the most recently released first): the
/// window simulations number their slots and their sampled keys this way.
struct NumberedValues<Value> {
    private(set) var values: [Value] = []
    private var free: [Int32] = []

    /// The value numbered `number`.
    subscript(number: Int32) -> Value { values[Int(number)] }

    /// Numbers `value` with a released number if there is one, else a new one (`isNew`).
    mutating func add(_ value: Value) -> (number: Int32, isNew: Bool) {
        if let number = free.popLast() {
            values[Int(number)] = value
            return (number, false)
        }
        values.append(value)
        return (Int32(values.count - 1), true)
    }

    /// Makes `number` free for reuse; its value stays until the number is given out again.
    mutating func release(_ number: Int32) {
        free.append(number)
    }
}

extension NumberedValues: Sendable where Value: Sendable {}
