/// What a subscriber connection is listening to and which `SUBSCRIBE` / `UNSUBSCRIBE` calls still wait for their
/// confirmations; free of I/O so it can be tested without a socket. `Waiter` is the caller's continuation; tests use
/// plain values.
///
/// The server confirms each channel of `SUBSCRIBE a b` with its own `subscribe` message (a push in RESP3, an array in
/// RESP2), in order, possibly between messages already published on channels subscribed before. A request is done
/// when every one of its channels is confirmed. States: `open` → `closed` (every waiter failed, new requests fail at
/// once).
package struct RedisSubscriptionStateMachine<Waiter> {
    package enum RequestKind: Sendable, Equatable {
        case subscribe
        case unsubscribe
    }

    private struct Pending {
        var kind: RequestKind
        var remaining: Set<String>
        var waiter: Waiter
    }

    private var pending: [(id: UInt64, request: Pending)] = []
    private var closedError: RedisError?
    /// The channels the server confirmed and not yet confirmed as left.
    package private(set) var channels: Set<String> = []

    package init() {}

    package var isClosed: Bool { self.closedError != nil }

    package enum RequestAction {
        /// Write the command; the waiter is resumed when every channel is confirmed.
        case send
        /// Fail the waiter at once; write nothing.
        case fail(Waiter, RedisError)
    }

    /// A caller asks to subscribe to (or leave) `channels`, which must not be empty.
    package mutating func request(_ kind: RequestKind, channels: Set<String>, id: UInt64, waiter: Waiter) -> RequestAction {
        if let closedError { return .fail(waiter, closedError) }
        self.pending.append((id, Pending(kind: kind, remaining: channels, waiter: waiter)))
        return .send
    }

    package enum ReceiveAction {
        /// Nothing to do (a confirmation some request still waits on the rest of, or an unknown push).
        case none
        /// Hand the message to the reader.
        case deliver(RedisPubSubMessage)
        /// These requests are fully confirmed.
        case resume([Waiter])
        /// The server refused this request (an error reply, such as `-NOPERM`).
        case fail(Waiter, RedisError)
    }

    /// A push (or, in RESP2, a pub/sub array) arrived.
    package mutating func received(_ value: RESPValue) -> ReceiveAction {
        guard !self.isClosed, let elements = value.array, elements.count >= 2, let kind = elements[0].string else {
            return .none
        }
        if kind == RedisChannelHandler.subscribeErrorKind {
            // The server refused the oldest request still waiting (replies come in order).
            guard !self.pending.isEmpty else { return .none }
            let error = RedisError.server(elements[1].string ?? "ERR")
            return .fail(self.pending.removeFirst().request.waiter, error)
        }
        guard elements.count >= 3 else { return .none }
        switch kind {
        case "message":
            guard let channel = elements[1].string, let payload = elements[2].buffer else { return .none }
            return .deliver(RedisPubSubMessage(channel: channel, payload: payload))
        case "subscribe":
            guard let channel = elements[1].string else { return .none }
            self.channels.insert(channel)
            return self.confirmed(.subscribe, channel)
        case "unsubscribe":
            // `unsubscribe (nil) 0` answers a request for channels this connection did not listen to.
            guard let channel = elements[1].string else { return .none }
            self.channels.remove(channel)
            return self.confirmed(.unsubscribe, channel)
        default:
            return .none
        }
    }

    /// Ticks `channel` off the oldest request of `kind` still waiting for it.
    private mutating func confirmed(_ kind: RequestKind, _ channel: String) -> ReceiveAction {
        guard let index = self.pending.firstIndex(where: { $0.request.kind == kind && $0.request.remaining.contains(channel) }) else {
            return .none
        }
        self.pending[index].request.remaining.remove(channel)
        guard self.pending[index].request.remaining.isEmpty else { return .none }
        return .resume([self.pending.remove(at: index).request.waiter])
    }

    /// The caller stopped waiting (timeout, cancellation); returns its waiter if it still waited.
    package mutating func cancel(id: UInt64) -> Waiter? {
        guard let index = self.pending.firstIndex(where: { $0.id == id }) else { return nil }
        return self.pending.remove(at: index).request.waiter
    }

    /// The connection closed: every waiter fails with `error`; later requests fail at once.
    package mutating func close(error: RedisError) -> [Waiter] {
        guard self.closedError == nil else { return [] }
        self.closedError = error
        self.channels = []
        defer { self.pending = [] }
        return self.pending.map(\.request.waiter)
    }
}
