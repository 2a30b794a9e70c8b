import DequeModule
import NIOCore

extension RedisChannelHandler {
    /// Decides what the channel handler does on each event, and holds the FIFO of commands awaiting replies.
    ///
    /// It makes no NIO calls: each event returns an action that the handler carries out. It is generic over the channel
    /// context and the reply promise so tests can drive it with plain values.
    ///
    /// The pending queue and the flush/timer bookkeeping are stored next to the state rather than inside its
    /// `connected` case, so the per-command events mutate them in place (no copy of the enum payload per command).
    /// They are only non-empty while the state is `connected`.
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

        enum State {
            /// The handler exists but the channel is not active yet.
            case initialized
            /// The channel is active; commands may be written.
            case connected(Context)
            /// The channel was closed; new commands fail with this error.
            case closed(RedisClientError)
        }

        /// A promise to fail, with its error.
        typealias Failure = (promise: Promise, error: RedisClientError)

        private(set) var state: State = .initialized
        /// Commands written and waiting for replies, oldest first. Empty unless `connected`.
        private var pending: Deque<PendingCommand> = []
        /// Whether a flush is already scheduled for this event-loop pass.
        private var flushScheduled = false
        /// The deadline the timeout timer is armed for, if it is armed.
        private var timerDeadline: NIODeadline?
        /// A subscriber connection: `message` and `pmessage` arrays are pushes, not replies.
        private let acceptsPushes: Bool

        /// - Parameter acceptsPushes: `true` for a connection that will `SUBSCRIBE`: in RESP2, a published message
        ///   arrives as an array `["message", channel, payload]` (or `["pmessage", pattern, channel, payload]`) that no
        ///   command waits for.
        init(acceptsPushes: Bool = false) {
            self.acceptsPushes = acceptsPushes
        }

        // MARK: Events

        /// The channel became active.
        mutating func channelActive(context: Context) {
            if case .initialized = self.state {
                self.state = .connected(context)
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
            case .connected:
                self.pending.append(
                    PendingCommand(
                        promise: promise,
                        deadline: deadline,
                        expectedReplies: pipelineCount ?? 1,
                        pipelineReplies: pipelineCount.map { _ in [] }
                    )
                )
                let scheduleFlush = !self.flushScheduled
                self.flushScheduled = true
                var armTimer: NIODeadline?
                if self.timerDeadline.map({ deadline < $0 }) ?? true {
                    self.timerDeadline = deadline
                    armTimer = deadline
                }
                return .write(scheduleFlush: scheduleFlush, armTimer: armTimer)
            }
        }

        enum FlushAction {
            /// Write the outbound buffer and flush the channel.
            case flush(Context)
            case none
        }

        /// The flush scheduled by ``commandEncoded(promise:pipelineCount:deadline:)`` runs.
        mutating func flushTriggered() -> FlushAction {
            guard case .connected(let context) = self.state, self.flushScheduled else {
                return .none
            }
            self.flushScheduled = false
            return .flush(context)
        }

        enum ReplyAction {
            /// Complete the promise with the reply.
            case succeed(Promise, RESPValue)
            /// A pub/sub message on a subscriber connection: hand it to the push handler.
            case push(RESPValue)
            /// The reply belongs to a pipeline that still waits for more replies, or the channel is closed.
            case none
            /// Fail every promise and close the channel.
            case failAllAndClose(Context, [Failure])
        }

        /// One complete reply was decoded.
        mutating func replyReceived(_ value: RESPValue) -> ReplyAction {
            guard case .connected(let context) = self.state else {
                return .none
            }
            if self.acceptsPushes, case .array(let elements) = value, let kind = elements.first?.string, kind == "message" || kind == "pmessage" {
                return .push(value)
            }
            guard !self.pending.isEmpty else {
                self.close(because: RedisClientError(.unexpectedReply, message: "Redis sent a reply that no command was waiting for"))
                return .failAllAndClose(context, [])
            }
            guard self.pending[self.pending.startIndex].pipelineReplies != nil else {
                return .succeed(self.pending.removeFirst().promise, value)
            }
            // A pipeline: collect in place; complete when its last reply is in.
            self.pending[self.pending.startIndex].pipelineReplies?.append(value)
            let head = self.pending[self.pending.startIndex]
            guard let replies = head.pipelineReplies, replies.count == head.expectedReplies else {
                return .none
            }
            self.pending.removeFirst()
            return .succeed(head.promise, .array(replies))
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
            guard case .connected(let context) = self.state else {
                return .none
            }
            guard let earliest = self.pending.lazy.map(\.deadline).min() else {
                self.timerDeadline = nil
                return .none
            }
            guard earliest <= now else {
                self.timerDeadline = earliest
                return .armTimer(earliest)
            }
            let timeout = RedisClientError(.timeout, message: "Redis did not reply within the command timeout; the connection was reset")
            let reset = RedisClientError(
                .connectionClosed,
                message: "the connection was reset because an earlier command timed out; this command may or may not have run"
            )
            let failures = self.pending.map { command -> Failure in
                (command.promise, command.deadline <= now ? timeout : reset)
            }
            self.close(because: timeout)
            return .failAllAndClose(context, failures)
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
            case .connected(let context):
                let failures = self.pending.map { ($0.promise, error) }
                self.close(because: error)
                return .failAllAndClose(context, failures)
            case .initialized:
                self.close(because: error)
                return .none
            case .closed:
                return .none
            }
        }

        /// The channel became inactive. Returns the promises to fail.
        mutating func channelInactive() -> [Failure] {
            switch self.state {
            case .connected:
                let error = RedisClientError(.connectionClosed, message: "the connection to Redis closed before the reply arrived")
                let failures = self.pending.map { ($0.promise, error) }
                self.close(because: error)
                return failures
            case .initialized:
                self.close(because: RedisClientError(.connectionClosed, message: "the connection to Redis closed"))
                return []
            case .closed:
                return []
            }
        }

        // MARK: Helpers

        /// The number of commands (pipelines count once) waiting for replies.
        var pendingCount: Int {
            self.pending.count
        }

        /// Moves to `closed`, dropping the pending queue (the caller fails its promises).
        private mutating func close(because error: RedisClientError) {
            self.state = .closed(error)
            self.pending = []
            self.flushScheduled = false
            self.timerDeadline = nil
        }

        private static func notSentError(closedBecause error: RedisClientError) -> RedisClientError {
            RedisClientError(
                .notConnected,
                message: "the connection to Redis is closed (\(error.message)); the command was not sent",
                underlyingError: error
            )
        }
    }
}
