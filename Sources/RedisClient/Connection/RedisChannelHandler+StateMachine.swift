import DequeModule
import NIOCore

extension RedisChannelHandler {
    /// Decides what the channel handler does on each event, and holds the FIFO of commands awaiting replies.
    ///
    /// It makes no NIO calls: each event returns an action that the handler carries out. It is generic over the channel
    /// context and the reply promise so tests can drive it with plain values.
    struct StateMachine<Context, Promise> {
        /// A command (or a pipeline of commands sent together) waiting for its replies.
        struct PendingCommand {
            /// Completed with the reply; for a pipeline, with an array of all its replies.
            var promise: Promise
            /// When the reply must have arrived; after that the connection is reset.
            var deadline: NIODeadline
            /// How many replies this entry waits for: 1 for a single command, N for a pipeline of N commands.
            var expectedReplies: Int
            /// The replies received so far for a pipeline (completed with `.array` of them, even for one command);
            /// `nil` for a single command (completed with its reply as is).
            var pipelineReplies: [RESPValue]?
        }

        /// The state of a connected channel.
        struct ConnectedState {
            var context: Context
            var pending: Deque<PendingCommand>
            /// Whether a flush is already scheduled for this event-loop pass.
            var flushScheduled: Bool
            /// The deadline the timeout timer is armed for, if it is armed.
            var timerDeadline: NIODeadline?
        }

        enum State {
            /// The handler exists but the channel is not active yet.
            case initialized
            /// The channel is active; commands may be written.
            case connected(ConnectedState)
            /// The channel was closed; new commands fail with this error.
            case closed(RedisClientError)
            /// Only while an event mutates `ConnectedState` in place (avoids copying the deque).
            case modifying
        }

        /// A promise to fail, with its error.
        typealias Failure = (promise: Promise, error: RedisClientError)

        private(set) var state: State = .initialized

        init() {}

        // MARK: Events

        /// The channel became active.
        mutating func channelActive(context: Context) {
            switch self.state {
            case .initialized:
                self.state = .connected(.init(context: context, pending: [], flushScheduled: false, timerDeadline: nil))
            case .connected, .closed:
                break
            case .modifying:
                preconditionFailure("invalid state: \(self.state)")
            }
        }

        enum SendAction {
            /// The bytes stay in the outbound buffer. Schedule one flush when `scheduleFlush` is set; arm the timeout timer
            /// for `armTimer` when it is set (cancelling any earlier timer).
            case write(scheduleFlush: Bool, armTimer: NIODeadline?)
            /// Do not send: roll back the encoded bytes and fail the promise.
            case fail(Promise, RedisClientError)
        }

        /// A command was encoded and wants to be sent; or a pipeline of `pipelineCount` commands, whose promise gets
        /// `.array` of their replies.
        mutating func commandEncoded(promise: Promise, pipelineCount: Int? = nil, deadline: NIODeadline) -> SendAction {
            switch self.state {
            case .initialized:
                return .fail(promise, RedisClientError(.notConnected, message: "the connection to Redis is not established yet"))
            case .closed(let error):
                return .fail(promise, Self.notSentError(closedBecause: error))
            case .connected(var connected):
                self.state = .modifying
                connected.pending.append(
                    .init(promise: promise, deadline: deadline, expectedReplies: pipelineCount ?? 1, pipelineReplies: pipelineCount.map { _ in [] })
                )
                let scheduleFlush = !connected.flushScheduled
                connected.flushScheduled = true
                var armTimer: NIODeadline?
                if connected.timerDeadline.map({ deadline < $0 }) ?? true {
                    connected.timerDeadline = deadline
                    armTimer = deadline
                }
                self.state = .connected(connected)
                return .write(scheduleFlush: scheduleFlush, armTimer: armTimer)
            case .modifying:
                preconditionFailure("invalid state: \(self.state)")
            }
        }

        enum FlushAction {
            /// Write the outbound buffer and flush the channel.
            case flush(Context)
            case none
        }

        /// The flush scheduled by ``commandEncoded(promise:pipelineCount:deadline:)`` runs.
        mutating func flushTriggered() -> FlushAction {
            switch self.state {
            case .connected(var connected):
                guard connected.flushScheduled else { return .none }
                connected.flushScheduled = false
                let context = connected.context
                self.state = .connected(connected)
                return .flush(context)
            case .initialized, .closed:
                return .none
            case .modifying:
                preconditionFailure("invalid state: \(self.state)")
            }
        }

        enum ReplyAction {
            /// Complete the promise with the reply.
            case succeed(Promise, RESPValue)
            /// The reply belongs to a pipeline that still waits for more replies, or the channel is closed.
            case none
            /// Fail every promise and close the channel.
            case failAllAndClose(Context, [Failure])
        }

        /// One complete reply was decoded.
        mutating func replyReceived(_ value: RESPValue) -> ReplyAction {
            switch self.state {
            case .connected(var connected):
                self.state = .modifying
                guard var head = connected.pending.popFirst() else {
                    let error = RedisClientError(.unexpectedReply, message: "Redis sent a reply that no command was waiting for")
                    self.state = .closed(error)
                    return .failAllAndClose(connected.context, [])
                }
                guard var replies = head.pipelineReplies else {
                    self.state = .connected(connected)
                    return .succeed(head.promise, value)
                }
                head.pipelineReplies = nil  // keeps `replies` uniquely referenced while appending
                replies.append(value)
                if replies.count == head.expectedReplies {
                    self.state = .connected(connected)
                    return .succeed(head.promise, .array(replies))
                }
                head.pipelineReplies = replies
                connected.pending.prepend(head)
                self.state = .connected(connected)
                return .none
            case .initialized, .closed:
                return .none
            case .modifying:
                preconditionFailure("invalid state: \(self.state)")
            }
        }

        enum TimerAction {
            /// Nothing is overdue and nothing is pending: leave the timer disarmed.
            case none
            /// Nothing is overdue yet: arm the timer again for this deadline.
            case armTimer(NIODeadline)
            /// A command is overdue: fail it with a timeout, fail the others (their reply order can no longer be trusted), close.
            case failAllAndClose(Context, [Failure])
        }

        /// The timeout timer fired at `now`.
        mutating func timerFired(now: NIODeadline) -> TimerAction {
            switch self.state {
            case .connected(var connected):
                self.state = .modifying
                guard let earliest = connected.pending.lazy.map(\.deadline).min() else {
                    connected.timerDeadline = nil
                    self.state = .connected(connected)
                    return .none
                }
                guard earliest <= now else {
                    connected.timerDeadline = earliest
                    self.state = .connected(connected)
                    return .armTimer(earliest)
                }
                let timeout = RedisClientError(.timeout, message: "Redis did not reply within the command timeout; the connection was reset")
                let reset = RedisClientError(
                    .connectionClosed,
                    message: "the connection was reset because an earlier command timed out; this command may or may not have run"
                )
                let failures = connected.pending.map { command -> Failure in
                    (command.promise, command.deadline <= now ? timeout : reset)
                }
                self.state = .closed(timeout)
                return .failAllAndClose(connected.context, failures)
            case .initialized, .closed:
                return .none
            case .modifying:
                preconditionFailure("invalid state: \(self.state)")
            }
        }

        enum CloseAction {
            case none
            /// Fail every promise and close the channel.
            case failAllAndClose(Context, [Failure])
        }

        /// The connection must close because of `error` (undecodable bytes, a channel error, or a close request).
        /// Pending commands fail with `error`.
        mutating func closeRequested(because error: RedisClientError) -> CloseAction {
            switch self.state {
            case .connected(let connected):
                self.state = .closed(error)
                return .failAllAndClose(connected.context, connected.pending.map { ($0.promise, error) })
            case .initialized:
                self.state = .closed(error)
                return .none
            case .closed:
                return .none
            case .modifying:
                preconditionFailure("invalid state: \(self.state)")
            }
        }

        /// The channel became inactive. Returns the promises to fail.
        mutating func channelInactive() -> [Failure] {
            switch self.state {
            case .connected(let connected):
                let error = RedisClientError(.connectionClosed, message: "the connection to Redis closed before the reply arrived")
                self.state = .closed(error)
                return connected.pending.map { ($0.promise, error) }
            case .initialized:
                self.state = .closed(RedisClientError(.connectionClosed, message: "the connection to Redis closed"))
                return []
            case .closed:
                return []
            case .modifying:
                preconditionFailure("invalid state: \(self.state)")
            }
        }

        // MARK: Helpers

        /// The number of commands (pipelines count once) waiting for replies.
        var pendingCount: Int {
            if case .connected(let connected) = self.state {
                return connected.pending.count
            }
            return 0
        }

        private static func notSentError(closedBecause error: RedisClientError) -> RedisClientError {
            RedisClientError(.notConnected, message: "the connection to Redis is closed (\(error.message)); the command was not sent")
        }
    }
}
