import AtomicFile
import Foundation
import NIOPosix
import Synchronization

/// A record kept in a `SharedJSONFile`: the file is an object of `id -> record`, as the original writes.
package protocol SharedJSONFileRecord: Decodable, Sendable {
    var id: String { get set }
    /// Appends the record as a JSON object, keys sorted.
    func writeJSON(into output: inout [UInt8]) throws
}

extension SharedJSONFileRecord where Self: Encodable {
    /// The record as the one configured encoder writes it.
    package func writeJSON(into output: inout [UInt8]) throws {
        output.append(contentsOf: try JSONText.encoder.encode(self))
    }
}

/// One JSON file (an object of `id -> record`) that several processes on one host share correctly.
///
/// - Writers take an exclusive `flock` on `<file>.lock`, re-read the file if another process changed it,
///   apply the change, write a temp file, `fsync` it, `rename` it over the file and `fsync` the directory.
///   A crash at any point leaves either the old or the new file, never a torn one.
/// - A process's writers commit in groups: the first one to arrive takes the lock and applies every change
///   queued meanwhile, in order, then writes the file once. A rewrite costs the whole file, so this keeps
///   writes from queueing behind each other (and a busy process from starving the others of the lock).
/// - Readers `stat` the file before answering and reload it when its identity (inode, size, mtime) moved,
///   so a change made by another process is seen by the next request. Rename is atomic, so readers
///   need no lock.
/// - Every file operation runs on `threadPool`, never on the caller's executor or an event loop.
package final class SharedJSONFile<Record: SharedJSONFileRecord>: Sendable {
    package let path: String
    private let lockPath: String
    private let threadPool: NIOThreadPool
    /// How long a writer waits for another process's lock before giving up with `.unavailable`.
    private let lockTimeoutMilliseconds: Int
    /// The last version read or written, with the identity of the file it came from.
    private let cache: Mutex<Snapshot>
    /// The changes waiting for the next group commit, and whether a thread is committing.
    private let queue = Mutex(WriteQueue())

    private struct Snapshot: Sendable {
        var records: [String: Record]
        var identity: FileIdentity?
    }

    private struct WriteQueue: Sendable {
        var pending: [PendingWrite] = []
        var committing = false
    }

    /// One caller's change, waiting to be applied by a group commit.
    private struct PendingWrite: Sendable {
        /// Applies the change to `records` (leaving them as they were if it throws); returns whether it
        /// changed anything and how to answer the caller once the group is on disk (or failed).
        let apply: @Sendable (inout [String: Record]) -> (changed: Bool, answer: @Sendable ((any Error)?) -> Void)
        /// Answers the caller when the change could not even be tried (no lock, no thread pool).
        let fail: @Sendable (any Error) -> Void
    }

    /// Opens (and reads) the file; a missing file is an empty store, created on the first write.
    /// - Throws: `StoreError.corruptData` when the file exists but is not a valid JSON object of records.
    package init(path: String, threadPool: NIOThreadPool = .singleton, lockTimeoutMilliseconds: Int = 2000) async throws {
        self.path = path
        self.lockPath = path + ".lock"
        self.threadPool = threadPool
        self.lockTimeoutMilliseconds = lockTimeoutMilliseconds
        self.cache = Mutex(Snapshot(records: [:], identity: nil))
        try await threadPool.runIfActive { [self] in
            FileIO.removeStaleTemporaryFiles(besides: self.path)
            _ = try Self.unavailableOnFailure { try self.currentSnapshot() }
        }
    }

    /// Runs `body` on the current records (re-read first if another process changed the file).
    ///
    /// The common case costs one `stat(2)` and no thread hop: when the caller is not on an event loop, the
    /// file's identity is checked right here (a metadata lookup in the kernel's inode cache; no data is read)
    /// and the cached records are used if it has not moved. Reading a changed file happens on the thread pool.
    package func read<T: Sendable>(_ body: @escaping @Sendable ([String: Record]) throws -> T) async throws -> T {
        if MultiThreadedEventLoopGroup.currentEventLoop == nil,
            let records = try Self.unavailableOnFailure({ try self.cachedRecordsIfCurrent() })
        {
            return try body(records)
        }
        return try await self.threadPool.runIfActive { [self] in
            try body(try Self.unavailableOnFailure { try self.currentSnapshot() }.records)
        }
    }

    /// Runs `body` on the current records under the cross-process lock and saves what it changed.
    ///
    /// `body` returns whether it changed anything (nothing is written otherwise) and a result; it may run on
    /// another caller's thread, in that caller's group commit. If `body` throws, its change is dropped (the
    /// others of its group stand) and the error is rethrown here. Returns once the change is on disk.
    package func write<T: Sendable>(_ body: @escaping @Sendable (inout [String: Record]) throws -> (changed: Bool, result: T)) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let pending = PendingWrite(
                apply: { records in
                    var changed = records
                    do {
                        let (didChange, result) = try body(&changed)
                        if didChange { records = changed }
                        return (didChange, { error in continuation.resume(with: error.map { .failure($0) } ?? .success(result)) })
                    } catch {
                        return (false, { _ in continuation.resume(throwing: error) })
                    }
                },
                fail: { continuation.resume(throwing: $0) }
            )
            let startsCommitting = self.queue.withLock { queue in
                queue.pending.append(pending)
                guard !queue.committing else { return false }
                queue.committing = true
                return true
            }
            if startsCommitting {
                self.threadPool.submit { [self] state in
                    guard case .active = state else {
                        self.failQueued(StoreError(.unavailable, "the file thread pool is not running"))
                        return
                    }
                    self.commitQueued()
                }
            }
        }
    }

    /// Group commits until the queue is empty (thread pool only).
    private func commitQueued() {
        while true {
            let group = self.queue.withLock { queue in
                let group = queue.pending
                queue.pending = []
                if group.isEmpty { queue.committing = false }
                return group
            }
            guard !group.isEmpty else { return }
            var answers: [@Sendable ((any Error)?) -> Void] = []
            do {
                try Self.unavailableOnFailure {
                    try FileIO.withExclusiveLock(path: self.lockPath, timeoutMilliseconds: self.lockTimeoutMilliseconds) {
                        var records = try self.currentSnapshot().records
                        var changed = false
                        for pending in group {
                            let (didChange, answer) = pending.apply(&records)
                            changed = changed || didChange
                            answers.append(answer)
                        }
                        if changed {
                            let identity = try FileIO.writeAtomically(try Self.encode(records, path: self.path), to: self.path)
                            self.cache.withLock { $0 = Snapshot(records: records, identity: identity) }
                        }
                    }
                }
                for answer in answers { answer(nil) }
            } catch {
                // Changes already applied are not on disk: their callers get the error too.
                for answer in answers { answer(error) }
                for pending in group.dropFirst(answers.count) { pending.fail(error) }
            }
        }
    }

    /// Fails every queued change (the thread pool is gone).
    private func failQueued(_ error: any Error) {
        let group = self.queue.withLock { queue in
            let group = queue.pending
            queue.pending = []
            queue.committing = false
            return group
        }
        for pending in group { pending.fail(error) }
    }

    /// File-system failures become `StoreError.unavailable` (the API answers 503); other errors pass.
    private static func unavailableOnFailure<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as FileIOError {
            throw StoreError(.unavailable, error.description)
        }
    }

    /// Throws when the file cannot be read (for `/readyz`).
    package func checkReadable() async throws {
        try await self.threadPool.runIfActive { [self] in _ = try Self.unavailableOnFailure { try self.currentSnapshot() } }
    }

    // MARK: - File I/O (thread pool only)

    /// The cached records if the file on disk is still the one they came from, else `nil`.
    private func cachedRecordsIfCurrent() throws -> [String: Record]? {
        let onDisk = try FileIO.identity(of: self.path)
        let cached = self.cache.withLock { $0 }
        return onDisk == cached.identity ? cached.records : nil
    }

    /// The cached snapshot, reloaded first when the file on disk is not the one it came from.
    private func currentSnapshot() throws -> Snapshot {
        let onDisk = try FileIO.identity(of: self.path)
        let cached = self.cache.withLock { $0 }
        if onDisk == cached.identity { return cached }
        guard onDisk != nil else {
            // The file was removed (or never existed): an empty store.
            let empty = Snapshot(records: [:], identity: nil)
            self.cache.withLock { $0 = empty }
            return empty
        }
        let (data, identity) = try FileIO.readWholeFile(self.path)
        let records: [String: Record]
        do {
            records = try JSONDecoder().decode([String: Record].self, from: Data(data))
        } catch {
            throw StoreError(.corruptData, "\(self.path) is not a valid JSON object of records: \(Self.describe(error))")
        }
        var normalized: [String: Record] = [:]
        normalized.reserveCapacity(records.count)
        for (key, var record) in records {
            if record.id.isEmpty { record.id = key }
            normalized[record.id] = record
        }
        let fresh = Snapshot(records: normalized, identity: identity)
        self.cache.withLock { $0 = fresh }
        return fresh
    }

    /// The file's text: `{"<id>":<record>,...}`, ids sorted, as a sorted-keys encoder writes it.
    private static func encode(_ records: [String: Record], path: String) throws -> Data {
        var output: [UInt8] = []
        output.reserveCapacity(64 + records.count * 256)
        output.append(UInt8(ascii: "{"))
        for (index, id) in records.keys.sorted().enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            JSONText.writeString(id, into: &output)
            output.append(UInt8(ascii: ":"))
            do {
                try records[id]?.writeJSON(into: &output)
            } catch {
                throw StoreError(.corruptData, "cannot encode \(path): \(error)")
            }
        }
        output.append(UInt8(ascii: "}"))
        return Data(output)
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let context), DecodingError.keyNotFound(_, let context),
            DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }
}
