import DequeModule
import NIOCore

/// The life cycle and request queue of one connection, free of I/O so it can be tested without a socket.
///
/// Requests are answered strictly in order, so the queue's head is always the request the next reply
/// belongs to. Each event returns the action the channel handler must carry out. `Request` is the
/// handler's completion (a continuation); tests use plain values.
///
/// States: `active` (requests may be sent) → `closed` (every request failed, new ones fail at once).
/// A timeout, a cancellation, a protocol error or the channel going away moves to `closed` and fails
/// every request in flight: after one of those the reply stream can no longer be matched to requests.
package struct RedisConnectionStateMachine<Request> {
    package struct Entry {
        package var id: UInt64
        package var deadline: NIODeadline?
        package var timeout: Duration?
        package var request: Request
        /// `nil` for a single command; the replies gathered so far for a batch of `expected` commands.
        package var batch: (expected: Int, replies: [RESPValue])?

        package init(id: UInt64, deadline: NIODeadline?, timeout: Duration?, request: Request, batchSize: Int?) {
            self.id = id
            self.deadline = deadline
            self.timeout = timeout
            self.request = request
            if let batchSize {
                self.batch = (batchSize, [])
                self.batch!.replies.reserveCapacity(batchSize)  // our own count, not the server's
            }
        }
    }

    private enum State {
        case active(Deque<Entry>)
        case closed(RedisError)
        /// Placeholder while the queue is taken out to be mutated in place (avoids a copy-on-write).
        case modifying
    }

    private var state: State = .active([])
    /// The deadline of the currently scheduled timeout timer, if any.
    private var timerDeadline: NIODeadline?

    package init() {}

    package var isClosed: Bool {
        if case .closed = self.state { return true }
        return false
    }

    /// The error the connection was closed with; `nil` while active.
    package var closedError: RedisError? {
        if case .closed(let error) = self.state { return error }
        return nil
    }

    package var inFlightCount: Int {
        if case .active(let queue) = self.state { return queue.count }
        return 0
    }

    // MARK: sending

    package enum SendAction {
        /// Write the bytes; schedule (replacing any current) timer at the deadline when one is given.
        case write(scheduleTimer: NIODeadline?)
        /// Fail the request at once with the error; write nothing.
        case fail(Request, RedisError)
    }

    package mutating func send(_ entry: Entry) -> SendAction {
        switch self.state {
        case .modifying:
            preconditionFailure("state machine re-entered while modifying")
        case .closed(let error):
            return .fail(entry.request, error)
        case .active(var queue):
            self.state = .modifying
            queue.append(entry)
            self.state = .active(queue)
            if let deadline = entry.deadline, self.timerDeadline.map({ deadline < $0 }) ?? true {
                self.timerDeadline = deadline
                return .write(scheduleTimer: deadline)
            }
            return .write(scheduleTimer: nil)
        }
    }

    // MARK: receiving

    package enum ReceiveAction {
        /// More replies of a batch are still due.
        case none
        case succeed(Request, RESPValue)
        case succeedBatch(Request, [RESPValue])
        /// A reply arrived that nobody asked for: close, failing everything in flight.
        case closeAndFail([Request], RedisError)
        /// The connection is already closed; ignore the value.
        case ignore
    }

    package mutating func receivedReply(_ value: RESPValue) -> ReceiveAction {
        switch self.state {
        case .modifying:
            preconditionFailure("state machine re-entered while modifying")
        case .closed:
            return .ignore
        case .active(var queue):
            guard !queue.isEmpty else {
                let error = RedisError.protocolError(UnsolicitedReplyError(value: value))
                self.state = .closed(error)
                return .closeAndFail([], error)
            }
            self.state = .modifying
            defer { self.state = .active(queue) }
            if queue[queue.startIndex].batch == nil {
                let entry = queue.removeFirst()
                return .succeed(entry.request, value)
            }
            queue[queue.startIndex].batch!.replies.append(value)
            if queue[queue.startIndex].batch!.replies.count == queue[queue.startIndex].batch!.expected {
                let entry = queue.removeFirst()
                return .succeedBatch(entry.request, entry.batch!.replies)
            }
            return .none
        }
    }

    // MARK: timeouts and cancellation

    package enum TimerAction {
        case none
        case schedule(NIODeadline)
        /// Close the channel; fail `expired` with their errors and `others` with a connection-closed error.
        case closeAndFail(expired: [(Request, RedisError)], others: [Request], otherError: RedisError)
    }

    package mutating func timerFired(now: NIODeadline) -> TimerAction {
        self.timerDeadline = nil
        guard case .active(let queue) = self.state else { return .none }
        var earliest: NIODeadline?
        var anyExpired = false
        for entry in queue {
            guard let deadline = entry.deadline else { continue }
            if deadline <= now { anyExpired = true }
            if earliest.map({ deadline < $0 }) ?? true { earliest = deadline }
        }
        guard anyExpired else {
            if let earliest {
                self.timerDeadline = earliest
                return .schedule(earliest)
            }
            return .none
        }
        var expired: [(Request, RedisError)] = []
        var others: [Request] = []
        for entry in queue {
            if let deadline = entry.deadline, deadline <= now {
                expired.append((entry.request, .timeout(entry.timeout ?? .zero)))
            } else {
                others.append(entry.request)
            }
        }
        let otherError = RedisError.connectionClosed("another command on the connection timed out")
        self.state = .closed(otherError)
        return .closeAndFail(expired: expired, others: others, otherError: otherError)
    }

    package enum CancelAction {
        case none
        case closeAndFail(cancelled: Request, others: [Request], otherError: RedisError)
    }

    package mutating func cancel(id: UInt64) -> CancelAction {
        guard case .active(let queue) = self.state, let index = queue.firstIndex(where: { $0.id == id }) else {
            return .none
        }
        var others: [Request] = []
        for (i, entry) in zip(queue.indices, queue) where i != index { others.append(entry.request) }
        let otherError = RedisError.connectionClosed("another command on the connection was cancelled")
        self.state = .closed(otherError)
        return .closeAndFail(cancelled: queue[index].request, others: others, otherError: otherError)
    }

    // MARK: closing

    package enum CloseAction {
        case none
        /// Close the channel (if still open) and fail these requests with the error.
        case closeAndFail([Request], RedisError)
    }

    /// A decoding error, an I/O error, or the user closing: everything in flight fails with `error`.
    package mutating func close(error: RedisError) -> CloseAction {
        guard case .active(let queue) = self.state else { return .none }
        self.state = .closed(error)
        return .closeAndFail(queue.map(\.request), error)
    }

    /// The channel went away.
    package mutating func channelInactive() -> CloseAction {
        self.close(error: .connectionClosed("the server or the network closed the connection"))
    }
}

/// A reply arrived while no command was waiting for one.
package struct UnsolicitedReplyError: Error, CustomStringConvertible {
    package var value: RESPValue
    package var description: String { "unsolicited reply \(value)" }
}
