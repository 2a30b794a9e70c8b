import NIOCore
import Testing

@testable import RedisClient

/// Drives the handler's state machine with a `String` context and `Int` promises: no channel, no socket.
@Suite struct RedisChannelHandlerStateMachineTests {
    typealias StateMachine = RedisChannelHandler.StateMachine<String, Int>

    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    private func connected() -> StateMachine {
        var stateMachine = StateMachine()
        stateMachine.channelActive(context: "ctx")
        return stateMachine
    }

    @Test func aSubscriberConnectionHandsMessagesToThePushHandlerAndRepliesToCommands() {
        var stateMachine = StateMachine(acceptsPushes: true)
        stateMachine.channelActive(context: "ctx")
        _ = stateMachine.commandEncoded(promise: 1, deadline: self.start + .seconds(1))
        let confirmation = RESPValue.array([.bulkString(Array("subscribe".utf8)), .bulkString(Array("+switch-master".utf8)), .integer(1)])
        guard case .succeed(1, confirmation) = stateMachine.replyReceived(confirmation) else {
            Issue.record("the subscription's confirmation is the SUBSCRIBE reply")
            return
        }
        let message = RESPValue.array([
            .bulkString(Array("message".utf8)), .bulkString(Array("+switch-master".utf8)), .bulkString(Array("m a 1 b 2".utf8)),
        ])
        guard case .push(message) = stateMachine.replyReceived(message) else {
            Issue.record("a message is a push, with no command waiting")
            return
        }
        #expect(stateMachine.pendingCount == 0)
        // A data connection treats the same array as a reply no command waited for.
        var data = self.connected()
        guard case .failAllAndClose = data.replyReceived(message) else {
            Issue.record("an unexpected array closes a data connection")
            return
        }
    }

    @Test func firstCommandSchedulesOneFlushAndArmsTheTimer() {
        var stateMachine = self.connected()
        let deadline = self.start + .seconds(1)
        guard case .write(scheduleFlush: true, armTimer: deadline) = stateMachine.commandEncoded(promise: 1, deadline: deadline) else {
            Issue.record("expected a write that schedules a flush and arms the timer")
            return
        }
        // Later commands in the same loop pass neither schedule another flush nor re-arm a later deadline.
        guard case .write(scheduleFlush: false, armTimer: nil) = stateMachine.commandEncoded(promise: 2, deadline: deadline + .milliseconds(1)) else {
            Issue.record("expected a write without flush or timer")
            return
        }
        guard case .flush("ctx") = stateMachine.flushTriggered() else {
            Issue.record("expected a flush")
            return
        }
        guard case .none = stateMachine.flushTriggered() else {
            Issue.record("a second flush in the same pass must be a no-op")
            return
        }
        // The next command after a flush schedules a new one.
        guard case .write(scheduleFlush: true, armTimer: nil) = stateMachine.commandEncoded(promise: 3, deadline: deadline + .milliseconds(2)) else {
            Issue.record("expected a write that schedules a flush")
            return
        }
        #expect(stateMachine.pendingCount == 3)
    }

    @Test func anEarlierDeadlineRearmsTheTimer() {
        var stateMachine = self.connected()
        _ = stateMachine.commandEncoded(promise: 1, deadline: self.start + .seconds(5))
        let earlier = self.start + .seconds(1)
        guard case .write(_, armTimer: earlier) = stateMachine.commandEncoded(promise: 2, deadline: earlier) else {
            Issue.record("expected the timer to be re-armed for the earlier deadline")
            return
        }
    }

    @Test func repliesCompleteCommandsInOrder() {
        var stateMachine = self.connected()
        for promise in 1...3 {
            _ = stateMachine.commandEncoded(promise: promise, deadline: self.start + .seconds(1))
        }
        for promise in 1...3 {
            guard case .succeed(promise, .integer(Int64(promise))) = stateMachine.replyReceived(.integer(Int64(promise))) else {
                Issue.record("reply \(promise) went to the wrong promise")
                return
            }
        }
        #expect(stateMachine.pendingCount == 0)
    }

    @Test func pipelineCollectsAllItsReplies() {
        var stateMachine = self.connected()
        _ = stateMachine.commandEncoded(promise: 1, pipelineCount: 3, deadline: self.start + .seconds(1))
        _ = stateMachine.commandEncoded(promise: 2, deadline: self.start + .seconds(1))
        guard case .none = stateMachine.replyReceived(.simpleString("OK")), case .none = stateMachine.replyReceived(.error("ERR x")) else {
            Issue.record("a partial pipeline must not complete")
            return
        }
        guard case .succeed(1, .array([.simpleString("OK"), .error("ERR x"), .null])) = stateMachine.replyReceived(.null) else {
            Issue.record("expected the pipeline's three replies")
            return
        }
        guard case .succeed(2, .integer(9)) = stateMachine.replyReceived(.integer(9)) else {
            Issue.record("expected the next command's reply")
            return
        }
    }

    @Test func aPipelineOfOneCommandStillGetsAnArray() {
        var stateMachine = self.connected()
        _ = stateMachine.commandEncoded(promise: 1, pipelineCount: 1, deadline: self.start + .seconds(1))
        guard case .succeed(1, .array([.simpleString("PONG")])) = stateMachine.replyReceived(.simpleString("PONG")) else {
            Issue.record("expected an array of one reply")
            return
        }
    }

    @Test func aReplyNobodyWaitsForClosesTheConnection() {
        var stateMachine = self.connected()
        guard case .failAllAndClose("ctx", let failures) = stateMachine.replyReceived(.integer(1)) else {
            Issue.record("expected failAllAndClose")
            return
        }
        #expect(failures.isEmpty)
        guard case .fail(7, let error) = stateMachine.commandEncoded(promise: 7, deadline: self.start) else {
            Issue.record("a closed connection must reject commands")
            return
        }
        #expect(error.code == .notConnected)
    }

    @Test func timerBeforeTheDeadlineRearms() {
        var stateMachine = self.connected()
        _ = stateMachine.commandEncoded(promise: 1, deadline: self.start + .seconds(1))
        _ = stateMachine.commandEncoded(promise: 2, deadline: self.start + .seconds(2))
        _ = stateMachine.replyReceived(.null)
        guard case .armTimer(let next) = stateMachine.timerFired(now: self.start + .milliseconds(1500)) else {
            Issue.record("expected the timer to be re-armed")
            return
        }
        #expect(next == self.start + .seconds(2))
    }

    @Test func timerWithNothingPendingDisarms() {
        var stateMachine = self.connected()
        _ = stateMachine.commandEncoded(promise: 1, deadline: self.start + .seconds(1))
        _ = stateMachine.replyReceived(.null)
        guard case .none = stateMachine.timerFired(now: self.start + .seconds(1)) else {
            Issue.record("expected no action")
            return
        }
        // The next command arms the timer again.
        guard case .write(_, armTimer: .some) = stateMachine.commandEncoded(promise: 2, deadline: self.start + .seconds(3)) else {
            Issue.record("expected the timer to be armed")
            return
        }
    }

    @Test func anOverdueCommandTimesOutAndResetsTheConnection() {
        var stateMachine = self.connected()
        _ = stateMachine.commandEncoded(promise: 1, deadline: self.start + .seconds(1))
        _ = stateMachine.commandEncoded(promise: 2, deadline: self.start + .seconds(2))
        guard case .failAllAndClose("ctx", let failures) = stateMachine.timerFired(now: self.start + .seconds(1)) else {
            Issue.record("expected failAllAndClose")
            return
        }
        #expect(failures.map(\.promise) == [1, 2])
        #expect(failures.map(\.error.code) == [.timeout, .connectionClosed])
        // Late replies after the reset are ignored; new commands are rejected.
        guard case .none = stateMachine.replyReceived(.integer(1)) else {
            Issue.record("a reply after the reset must be ignored")
            return
        }
        guard case .fail(3, let error) = stateMachine.commandEncoded(promise: 3, deadline: self.start + .seconds(3)) else {
            Issue.record("expected the command to be rejected")
            return
        }
        #expect(error.code == .notConnected)
    }

    @Test func channelInactiveFailsEveryPendingCommand() {
        var stateMachine = self.connected()
        _ = stateMachine.commandEncoded(promise: 1, deadline: self.start + .seconds(1))
        _ = stateMachine.commandEncoded(promise: 2, pipelineCount: 2, deadline: self.start + .seconds(1))
        let failures = stateMachine.channelInactive()
        #expect(failures.map(\.promise) == [1, 2])
        #expect(failures.allSatisfy { $0.error.code == .connectionClosed })
        #expect(stateMachine.channelInactive().isEmpty)
        guard case .none = stateMachine.timerFired(now: self.start + .seconds(5)) else {
            Issue.record("a closed connection has no timer work")
            return
        }
    }

    @Test func closeRequestedFailsPendingWithTheGivenError() {
        var stateMachine = self.connected()
        _ = stateMachine.commandEncoded(promise: 1, deadline: self.start + .seconds(1))
        let reason = RedisClientError(.protocolError, message: "bad bytes")
        guard case .failAllAndClose("ctx", let failures) = stateMachine.closeRequested(because: reason) else {
            Issue.record("expected failAllAndClose")
            return
        }
        #expect(failures.map(\.promise) == [1])
        #expect(failures.first?.error.code == .protocolError)
        guard case .none = stateMachine.closeRequested(because: reason) else {
            Issue.record("closing twice must be a no-op")
            return
        }
        #expect(stateMachine.channelInactive().isEmpty)
    }

    @Test func commandsBeforeTheChannelIsActiveAreRejected() {
        var stateMachine = StateMachine()
        guard case .fail(1, let error) = stateMachine.commandEncoded(promise: 1, deadline: self.start) else {
            Issue.record("expected a rejection")
            return
        }
        #expect(error.code == .notConnected)
    }
}
