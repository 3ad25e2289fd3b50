import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import Synchronization

#if DEBUG
/// The continuation a caller waits on for its reply. Checked in debug builds (ThreadSanitizer runs them) so a
/// double resume traps and the sanitizer sees the hand-off of a reply from the event loop to the caller.
package typealias RedisReplyContinuation<Reply> = CheckedContinuation<Reply, any Error>

/// Makes the hand-off of every reply, and of every pooled connection given to a waiting caller, visible to
/// ThreadSanitizer, in debug builds only (where it runs).
///
/// The concurrency runtime tells the sanitizer that a resume happens before the task continues, except when the
/// continuation was resumed before the task awaited it: that fast path takes no sanitizer acquire. A reply that
/// arrives before its caller suspended then looks raced (its buffer was written on the event loop, read by the
/// caller), and so does a connection made on another thread and handed to a caller still on its way to suspend,
/// although both hand-offs are synchronized. The resuming side passes this lock before it resumes, and the caller
/// after it wakes: the sanitizer sees the edge that exists anyway. Release builds take no lock.
package enum ContinuationHandOff {
    private static let lock = NIOLock()

    /// Called by the event loop just before it resumes a caller, and by the caller just after it resumed.
    @inline(__always)
    package static func mark() {
        lock.withLock {}
    }
}
#else
/// The continuation a caller waits on for its reply. Unsafe in release builds: a checked continuation allocates
/// a canary per command. Each is resumed exactly once because the state machine hands every request out exactly
/// once (reply, timeout, cancellation or close), which its tests (run in debug, with checked continuations) cover.
package typealias RedisReplyContinuation<Reply> = UnsafeContinuation<Reply, any Error>
#endif

/// How a request's caller is told the outcome.
package enum RedisReplyPromise {
    case single(RedisReplyContinuation<RESPValue>)
    case batch(RedisReplyContinuation<[RESPValue]>)

    func fail(_ error: RedisError) {
        #if DEBUG
        ContinuationHandOff.mark()
        #endif
        switch self {
        case .single(let c): c.resume(throwing: error)
        case .batch(let c): c.resume(throwing: error)
        }
    }
}

/// A caller's cancellation, shared between the caller's task and the event loop.
///
/// The caller's cancellation handler may run before the request reaches the event loop (it is handed over with
/// `EventLoop.execute`): it sets this flag first, so the handler fails the request when it arrives instead of
/// sending it, and then asks the handler to cancel the request, which finds it if it arrived first.
package final class RedisRequestCancellation: Sendable {
    private let cancelled = Atomic<Bool>(false)

    package init() {}

    package var isCancelled: Bool { self.cancelled.load(ordering: .acquiring) }

    package func cancel() { self.cancelled.store(true, ordering: .releasing) }
}

/// Whether a connection may still be used, readable from any thread. Set when the handler closes the channel
/// for a timeout, a cancellation or a protocol error (the reply stream is out of step) and when the channel goes
/// away: a TLS channel stays active for a while after a close (waiting for the peer's close_notify), so the
/// channel's `isActive` alone would let a pool lease a poisoned connection again.
package final class RedisConnectionHealth: Sendable {
    private let poisoned = Atomic<Bool>(false)

    package init() {}

    package var isPoisoned: Bool { self.poisoned.load(ordering: .acquiring) }

    package func poison() { self.poisoned.store(true, ordering: .releasing) }
}

/// Decodes replies, matches them in order to the requests in flight, enforces timeouts and routes
/// RESP3 push messages. All its methods run on the channel's event loop; `RedisConnection` reaches it
/// through a `NIOLoopBound`.
package final class RedisChannelHandler: ChannelInboundHandler {
    package typealias InboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    private var stateMachine = RedisConnectionStateMachine<RedisReplyPromise>()
    private var decoder: NIOSingleStepByteToMessageProcessor<RESPDecoder>
    private var context: ChannelHandlerContext?
    private var timer: Scheduled<Void>?
    private let eventLoop: any EventLoop
    private let pushContinuation: AsyncStream<RESPValue>.Continuation
    /// Set once a `SUBSCRIBE` was written: in RESP2 the server then sends pub/sub messages and confirmations as plain
    /// arrays, which must go to the push stream, not be matched to requests.
    private var isSubscriber = false
    /// Set once the connection must not be used any more.
    package let health: RedisConnectionHealth

    package init(
        eventLoop: any EventLoop,
        maxBulkLength: Int,
        maxNestingDepth: Int,
        maxAggregateCount: Int = RESPDecoder.defaultMaxAggregateCount,
        pushContinuation: AsyncStream<RESPValue>.Continuation,
        health: RedisConnectionHealth = RedisConnectionHealth()
    ) {
        self.eventLoop = eventLoop
        self.decoder = NIOSingleStepByteToMessageProcessor(
            RESPDecoder(maxBulkLength: maxBulkLength, maxAggregateCount: maxAggregateCount, maxDepth: maxNestingDepth),
            maximumBufferSize: nil
        )
        self.pushContinuation = pushContinuation
        self.health = health
    }

    package var inFlightCount: Int { self.stateMachine.inFlightCount }

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        self.health.poison()
        self.context = nil
        self.perform(self.stateMachine.channelInactive())
        self.pushContinuation.finish()
    }

    package func channelInactive(context: ChannelHandlerContext) {
        self.health.poison()
        self.perform(self.stateMachine.channelInactive())
        self.pushContinuation.finish()
        context.fireChannelInactive()
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let redisError: RedisError
        if let error = error as? RedisError {
            redisError = error
        } else if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            redisError = RedisError(
                code: .tls,
                message: "TLS failed: \(error); check the CA certificate, the server name and that the port speaks TLS",
                underlying: error
            )
        } else {
            redisError = .connectionClosed("I/O error: \(error)", underlying: error)
        }
        self.perform(self.stateMachine.close(error: redisError))
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = self.unwrapInboundIn(data)
        do {
            try self.decoder.process(buffer: buffer) { value in
                self.received(value)
            }
        } catch {
            self.perform(self.stateMachine.close(error: .protocolError(error)))
        }
    }

    private func received(_ value: RESPValue) {
        var value = value
        // RESP2 has no push type: a subscriber connection's messages and (un)subscribe confirmations arrive as arrays
        // whose first element names their kind. Only a connection that subscribed reads arrays that way (any reply to
        // a command could be such an array otherwise); its other replies (`PING`) still match their requests.
        if self.isSubscriber {
            if case .array(let elements) = value, Self.isPubSubArray(elements) {
                value = .push(elements)
            } else if self.stateMachine.inFlightCount == 0, value.isErrorReply {
                // A refused `SUBSCRIBE` (`-NOPERM` from an ACL) answers with an error, and no request waits for a
                // reply: hand it to the subscription, which fails the call that waits for confirmations.
                value = .push([.simpleString(ByteBuffer(string: Self.subscribeErrorKind)), value])
            }
        }
        // `>` exists only in RESP3, where pushes are always out of band: never a reply to a command.
        if case .push = value {
            // The stream keeps a bounded number of unread pushes. Dropping one silently would lose a client-side
            // caching invalidation (or a pub/sub message) without anyone knowing, so an overflow closes the
            // connection: its reader sees the stream end and knows it may have missed messages.
            if case .dropped = self.pushContinuation.yield(value) {
                self.perform(
                    self.stateMachine.close(
                        error: .connectionClosed("the reader of pushMessages fell behind and its buffer overflowed")
                    )
                )
                self.pushContinuation.finish()
            }
            return
        }
        switch self.stateMachine.receivedReply(value) {
        case .none, .ignore:
            break
        case .succeed(let promise, let value):
            #if DEBUG
            ContinuationHandOff.mark()
            #endif
            if case .single(let c) = promise { c.resume(returning: value) }
        case .succeedBatch(let promise, let values):
            #if DEBUG
            ContinuationHandOff.mark()
            #endif
            if case .batch(let c) = promise { c.resume(returning: values) }
        case .closeAndFail(let promises, let error):
            self.closeChannel()
            for promise in promises { promise.fail(error) }
        }
    }

    // MARK: called by RedisConnection, on the event loop

    package func send(
        _ bytes: ByteBuffer,
        id: UInt64,
        timeout: Duration?,
        batchSize: Int?,
        cancellation: RedisRequestCancellation? = nil,
        flushes: Bool = true,
        promise: RedisReplyPromise
    ) {
        if let cancellation, cancellation.isCancelled {
            // Cancelled on its way to the event loop: nothing was sent, so the connection stays in step.
            promise.fail(.cancelled)
            return
        }
        let deadline = timeout.map { NIODeadline.now() + TimeAmount($0) }
        let entry = RedisConnectionStateMachine<RedisReplyPromise>.Entry(
            id: id,
            deadline: deadline,
            timeout: timeout,
            request: promise,
            batchSize: batchSize
        )
        switch self.stateMachine.send(entry) {
        case .fail(let promise, let error):
            promise.fail(error)
        case .write(let timerDeadline):
            guard let context = self.context else {
                self.perform(self.stateMachine.channelInactive())
                return
            }
            if flushes {
                context.writeAndFlush(self.wrapOutboundOut(bytes), promise: nil)
            } else {
                context.write(self.wrapOutboundOut(bytes), promise: nil)
            }
            if let timerDeadline { self.scheduleTimer(timerDeadline) }
        }
    }

    /// Flushes what ``send(_:id:timeout:batchSize:cancellation:flushes:promise:)`` wrote without flushing.
    package func flush() {
        self.context?.flush()
    }

    /// Writes a command that gets no reply of its own (`SUBSCRIBE`, `UNSUBSCRIBE`: their confirmations are pushes)
    /// and switches the connection to subscriber mode; returns the error when the connection is closed.
    package func sendUnanswered(_ bytes: ByteBuffer) -> RedisError? {
        if let error = self.stateMachine.closedError { return error }
        guard let context = self.context else {
            self.perform(self.stateMachine.channelInactive())
            return self.stateMachine.closedError ?? .connectionClosed()
        }
        self.isSubscriber = true
        context.writeAndFlush(self.wrapOutboundOut(bytes), promise: nil)
        return nil
    }

    /// The kind of the push a refused subscription command's error reply is handed over as.
    package static let subscribeErrorKind = "subscribe-error"

    /// Whether a RESP2 array is a pub/sub message or confirmation: `message`, `subscribe`, `unsubscribe`, … first.
    static func isPubSubArray(_ elements: [RESPValue]) -> Bool {
        guard elements.count >= 3, case .bulkString(let kind) = elements[0] else { return false }
        switch String(buffer: kind) {
        case "message", "pmessage", "smessage", "subscribe", "unsubscribe", "psubscribe", "punsubscribe",
            "ssubscribe", "sunsubscribe":
            return true
        default:
            return false
        }
    }

    package func cancel(id: UInt64) {
        switch self.stateMachine.cancel(id: id) {
        case .none:
            break
        case .closeAndFail(let cancelled, let others, let otherError):
            self.closeChannel()
            cancelled.fail(.cancelled)
            for promise in others { promise.fail(otherError) }
        }
    }

    // MARK: helpers

    private func scheduleTimer(_ deadline: NIODeadline) {
        self.timer?.cancel()
        self.timer = self.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.timerFired()
        }
    }

    private func timerFired() {
        self.timer = nil
        switch self.stateMachine.timerFired(now: .now()) {
        case .none:
            break
        case .schedule(let deadline):
            self.scheduleTimer(deadline)
        case .closeAndFail(let expired, let others, let otherError):
            self.closeChannel()
            for (promise, error) in expired { promise.fail(error) }
            for promise in others { promise.fail(otherError) }
        }
    }

    private func perform(_ action: RedisConnectionStateMachine<RedisReplyPromise>.CloseAction) {
        switch action {
        case .none:
            break
        case .closeAndFail(let promises, let error):
            self.timer?.cancel()
            self.timer = nil
            self.closeChannel()
            for promise in promises { promise.fail(error) }
        }
    }

    private func closeChannel() {
        self.health.poison()
        self.timer?.cancel()
        self.timer = nil
        self.context?.close(promise: nil)
    }
}
