import NIOCore
import Testing

@testable import RedisClient

@Suite("RedisConnectionStateMachine")
struct RedisConnectionStateMachineTests {
    typealias Machine = RedisConnectionStateMachine<String>

    func entry(_ id: UInt64, _ name: String, deadline: NIODeadline? = nil, batch: Int? = nil) -> Machine.Entry {
        Machine.Entry(id: id, deadline: deadline, timeout: .seconds(1), request: name, batchSize: batch)
    }

    @Test("replies complete requests in order; batches complete after their last reply")
    func ordering() {
        var machine = Machine()
        guard case .write = machine.send(entry(1, "a")), case .write = machine.send(entry(2, "b", batch: 2)) else {
            Issue.record("writes expected")
            return
        }
        guard case .succeed("a", .integer(1)) = machine.receivedReply(.integer(1)) else { Issue.record("a"); return }
        guard case .none = machine.receivedReply(.integer(2)) else { Issue.record("b partial"); return }
        guard case .succeedBatch("b", let replies) = machine.receivedReply(.integer(3)) else { Issue.record("b"); return }
        #expect(replies == [.integer(2), .integer(3)])
        #expect(machine.inFlightCount == 0)
    }

    @Test("the earliest deadline schedules the timer; expiry fails the expired with timeout and the rest with closed")
    func timeouts() {
        var machine = Machine()
        let now = NIODeadline.uptimeNanoseconds(1_000_000_000)
        guard case .write(scheduleTimer: let first?) = machine.send(entry(1, "a", deadline: now + .seconds(5))) else {
            Issue.record("timer expected")
            return
        }
        #expect(first == now + .seconds(5))
        guard case .write(scheduleTimer: nil) = machine.send(entry(2, "b", deadline: now + .seconds(9))) else {
            Issue.record("no new timer for a later deadline")
            return
        }
        guard case .write(scheduleTimer: now + .seconds(1)) = machine.send(entry(3, "c", deadline: now + .seconds(1))) else {
            Issue.record("earlier deadline reschedules")
            return
        }
        // Fired early (nothing expired yet): reschedule at the earliest.
        guard case .schedule(now + .seconds(1)) = machine.timerFired(now: now) else { Issue.record("reschedule"); return }
        guard case .closeAndFail(let expired, let others, let otherError) = machine.timerFired(now: now + .seconds(2)) else {
            Issue.record("close expected")
            return
        }
        #expect(expired.map(\.0) == ["c"])
        #expect(expired.first?.1.code == .timeout)
        #expect(others == ["a", "b"])
        #expect(otherError.code == .connectionClosed)
        #expect(machine.isClosed)
        guard case .fail("d", let error) = machine.send(entry(4, "d")) else { Issue.record("fail after close"); return }
        #expect(error.code == .connectionClosed)
    }

    @Test("cancelling a request in flight closes and fails everything; cancelling a finished one does nothing")
    func cancellation() {
        var machine = Machine()
        _ = machine.send(entry(1, "a"))
        _ = machine.send(entry(2, "b"))
        _ = machine.receivedReply(.null)
        guard case .none = machine.cancel(id: 1) else { Issue.record("finished request"); return }
        guard case .closeAndFail(cancelled: "b", others: [], _) = machine.cancel(id: 2) else { Issue.record("cancel"); return }
        #expect(machine.isClosed)
    }

    @Test("an unsolicited reply and the channel closing fail everything")
    func closing() {
        var machine = Machine()
        guard case .closeAndFail([], let error) = machine.receivedReply(.null) else { Issue.record("unsolicited"); return }
        #expect(error.code == .protocolError)
        var other = Machine()
        _ = other.send(entry(1, "a"))
        guard case .closeAndFail(["a"], let closed) = other.channelInactive() else { Issue.record("inactive"); return }
        #expect(closed.code == .connectionClosed)
        guard case .none = other.channelInactive() else { Issue.record("only once"); return }
    }
}

@Suite("RedisPoolStateMachine")
struct RedisPoolStateMachineTests {
    final class Conn {}
    typealias Machine = RedisPoolStateMachine<Conn, String>

    let t0 = ContinuousClock.now

    func machine(max: Int = 2, minIdle: Int = 0, maxIdle: Int = 2, lifetime: Duration? = nil) -> Machine {
        Machine(limits: .init(maxConnections: max, minIdleConnections: minIdle, maxIdleConnections: maxIdle, maxConnectionLifetime: lifetime))
    }

    @Test("waiters beyond the pool size queue; a returned connection goes to the first waiter")
    func queueing() {
        var m = machine(max: 1)
        guard case .wait(connect: true, _) = m.lease(waiterID: 1, waiter: "w1", now: t0) else { Issue.record("connect"); return }
        guard case .wait(connect: false, _) = m.lease(waiterID: 2, waiter: "w2", now: t0) else { Issue.record("queue"); return }
        let c = Conn()
        guard case .lease(let leased, to: "w1") = m.connectionEstablished(c, now: t0), leased === c else { Issue.record("w1"); return }
        guard case .lease(_, to: "w2") = m.release(c, isUsable: true, now: t0) else { Issue.record("w2"); return }
        guard case .park = m.release(c, isUsable: true, now: t0) else { Issue.record("park"); return }
        #expect(m.idleCount == 1)
        guard case .lease(let again, let expired) = m.lease(waiterID: 3, waiter: "w3", now: t0), again === c, expired.isEmpty else {
            Issue.record("reuse")
            return
        }
    }

    @Test("the fast path leases an idle connection without queueing a waiter and closes expired ones")
    func leaseIdleFastPath() {
        var m = machine(max: 2, lifetime: .seconds(10))
        #expect(m.leaseIdle(now: t0).connection == nil && m.waiterCount == 0)
        _ = m.lease(waiterID: 1, waiter: "w1", now: t0)
        let old = Conn()
        _ = m.connectionEstablished(old, now: t0)
        _ = m.release(old, isUsable: true, now: t0)
        let first = m.leaseIdle(now: t0 + .seconds(1))
        #expect(first.connection === old && first.close.isEmpty && m.leasedCount == 1 && m.idleCount == 0)
        _ = m.release(old, isUsable: true, now: t0 + .seconds(1))
        let second = m.leaseIdle(now: t0 + .seconds(11))
        #expect(second.connection == nil && second.close.count == 1 && second.close.first === old)
        #expect(m.idleCount == 0 && m.leasedCount == 0 && m.waiterCount == 0)
    }

    @Test("the fast path takes a preferred idle connection (one on the caller's event loop) before the newest")
    func leaseIdlePrefersWhatThePredicateAccepts() {
        var m = machine(max: 3, maxIdle: 3, lifetime: .seconds(10))
        let connections = [Conn(), Conn(), Conn()]
        for (index, connection) in connections.enumerated() {
            _ = m.lease(waiterID: UInt64(index), waiter: "w\(index)", now: t0)
            _ = m.connectionEstablished(connection, now: t0)
        }
        for connection in connections { _ = m.release(connection, isUsable: true, now: t0) }
        // The oldest is preferred; then nothing is preferred any more, so the newest goes.
        let preferred = m.leaseIdle(now: t0, preferring: { $0 === connections[0] })
        #expect(preferred.connection === connections[0] && m.idleCount == 2 && m.leasedCount == 1)
        let fallback = m.leaseIdle(now: t0, preferring: { $0 === connections[0] })
        #expect(fallback.connection === connections[2] && m.idleCount == 1 && m.leasedCount == 2)
        // An expired connection is never taken for being preferred: it is closed by the usual path.
        _ = m.release(connections[0], isUsable: true, now: t0)
        let late = m.leaseIdle(now: t0 + .seconds(11), preferring: { $0 === connections[1] })
        #expect(late.connection == nil && late.close.count == 2)
    }

    @Test("a waiter that times out is removed and can be failed")
    func waiterTimeout() {
        var m = machine(max: 1)
        _ = m.lease(waiterID: 1, waiter: "w1", now: t0)
        #expect(m.removeWaiter(id: 1) == "w1")
        #expect(m.removeWaiter(id: 1) == nil)
    }

    @Test("dead or expired connections are closed and replaced for waiters")
    func replacement() {
        var m = machine(max: 1, lifetime: .seconds(10))
        _ = m.lease(waiterID: 1, waiter: "w1", now: t0)
        let c = Conn()
        _ = m.connectionEstablished(c, now: t0)
        _ = m.lease(waiterID: 2, waiter: "w2", now: t0)
        guard case .close(let closed?, connect: true) = m.release(c, isUsable: false, now: t0), closed === c else {
            Issue.record("dead → replace for w2")
            return
        }
        let d = Conn()
        guard case .lease(_, to: "w2") = m.connectionEstablished(d, now: t0) else { Issue.record("w2"); return }
        guard case .close(_, connect: false) = m.release(d, isUsable: true, now: t0 + .seconds(11)) else {
            Issue.record("expired")
            return
        }
        #expect(m.idleCount == 0 && m.leasedCount == 0)
    }

    @Test("maintenance keeps min idle warm and drops dead idle connections")
    func maintenance() {
        var m = machine(max: 3, minIdle: 2)
        var action = m.maintenance(now: t0, isDead: { _ in false })
        #expect(action.connect == 2)
        let a = Conn()
        let b = Conn()
        _ = m.connectionEstablished(a, now: t0)
        _ = m.connectionEstablished(b, now: t0)
        action = m.maintenance(now: t0, isDead: { $0 === a })
        #expect(action.close.count == 1 && action.close.first === a)
        #expect(action.connect == 1)
    }

    @Test("connect failure fails waiters; shutdown fails waiters, closes idle, and finishes when all are back")
    func failureAndShutdown() {
        var m = machine(max: 2)
        _ = m.lease(waiterID: 1, waiter: "w1", now: t0)
        guard case .failWaiters(["w1"]) = m.connectionFailed() else { Issue.record("fail w1"); return }
        _ = m.lease(waiterID: 2, waiter: "w2", now: t0)
        let c = Conn()
        _ = m.connectionEstablished(c, now: t0)  // leased to w2
        _ = m.lease(waiterID: 3, waiter: "w3", now: t0)  // starts a second connection
        let shutdown = m.shutdown()
        #expect(shutdown.failWaiters == ["w3"])
        #expect(!m.isShutDown)
        guard case .close(_, connect: false) = m.release(c, isUsable: true, now: t0) else { Issue.record("close"); return }
        #expect(!m.isShutDown)
        guard case .close = m.connectionEstablished(Conn(), now: t0) else { Issue.record("close new"); return }
        #expect(m.isShutDown)
        guard case .fail = m.lease(waiterID: 4, waiter: "w4", now: t0) else { Issue.record("closed pool"); return }
    }
}
