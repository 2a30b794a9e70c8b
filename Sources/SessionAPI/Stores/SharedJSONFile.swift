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
/// - Readers `stat` the file before answering and reload it when its identity (device, inode, size, mtime)
///   moved, so a change made by another process is seen by the next request. Rename is atomic, so readers
///   need no lock.
/// - The cache pins the version it came from: it keeps that version's descriptor open (the one it was read
///   through, or the temp file a write renamed into place), so its inode cannot be freed and its number given
///   to a later version. Every file that replaces the cached one therefore has another (device, inode), and an
///   identity that matches is the cached version itself, unchanged (versions are never written in place): no
///   stale read and, under the lock, no write based on a stale version, whatever the size and mtime say.
/// - Every file operation runs on `threadPool`, never on the caller's executor or an event loop.
package final class SharedJSONFile<Record: SharedJSONFileRecord>: Sendable {
    package let path: String
    private let lockPath: String
    private let threadPool: NIOThreadPool
    /// How long a writer waits for another process's lock before giving up with `.unavailable`.
    private let lockTimeoutMilliseconds: Int
    /// The last version read or written, with that version of the file held open.
    private let cache: Mutex<Snapshot>
    /// The changes waiting for the next group commit, and whether a thread is committing.
    private let queue = Mutex(WriteQueue())
    /// Events about the file, so that a read can trust the cache without a `stat`; `nil` without inotify.
    private let watcher: DirectoryWatcher?

    private struct Snapshot: Sendable {
        var records: [String: Record]
        /// What readers derived from these records (indexes, orders); a new version starts with none.
        var derived = DerivedValues()
        /// The version the records came from, held open; `nil` when there was no file.
        var file: PinnedFile?
        /// The watcher's generation when the records were known to be the file's; `nil`: not known.
        var generation: UInt64?
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
    package init(path: String, threadPool: NIOThreadPool = .singleton, lockTimeoutMilliseconds: Int = 5000) async throws {
        self.path = path
        self.lockPath = path + ".lock"
        self.threadPool = threadPool
        self.lockTimeoutMilliseconds = lockTimeoutMilliseconds
        self.cache = Mutex(Snapshot(records: [:], file: nil, generation: nil))
        self.watcher = DirectoryWatcher(watching: path)
        try await threadPool.runIfActive { [self] in
            FileIO.removeStaleTemporaryFiles(besides: self.path)
            _ = try Self.unavailableOnFailure { try self.currentRecords() }
        }
    }

    /// Runs `body` on the current records (re-read first if another process changed the file).
    ///
    /// The common case does no file I/O and no thread hop, even on an event loop: the directory watcher has seen
    /// no event about the file since the cache was validated (a non-blocking `read` of the inotify queue). After
    /// an event (another process's write, or this one's), the file's identity is checked on the thread pool and
    /// the file re-read only if it is another version. Without inotify, the identity is `stat`ed here when not on
    /// an event loop, and on the thread pool otherwise.
    package func read<T: Sendable>(_ body: @escaping @Sendable ([String: Record]) throws -> T) async throws -> T {
        try await self.readDerived { records, _ in try body(records) }
    }

    /// `read(_:)`, with the values derived from this version of the records so far (`DerivedValues`): an index
    /// built once serves every read until the file changes.
    package func readDerived<T: Sendable>(_ body: @escaping @Sendable ([String: Record], DerivedValues) throws -> T) async throws -> T {
        if let watcher = self.watcher {
            let generation = watcher.generation()
            // The records and their derived values only: the pinned file stays with the cache.
            if let (records, derived) = self.cache.withLock({ $0.generation == generation ? ($0.records, $0.derived) : nil }) {
                return try body(records, derived)
            }
        } else if MultiThreadedEventLoopGroup.currentEventLoop == nil,
            let snapshot = try Self.unavailableOnFailure({ try self.cachedSnapshotIfCurrent() })
        {
            return try body(snapshot.records, snapshot.derived)
        }
        return try await self.threadPool.runIfActive { [self] in
            let snapshot = try Self.unavailableOnFailure { try self.currentSnapshot() }
            return try body(snapshot.records, snapshot.derived)
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
                        // The cached records when the file is the version they came from (it cannot change
                        // while this process holds the lock), else the file as it is now.
                        var records = try self.currentRecords()
                        // Nothing else writes the file while the lock is held; the rename's own event will move
                        // the generation past this tag, and the next read revalidates (the pin then matches).
                        let generation = self.watcher?.generation()
                        var changed = false
                        for pending in group {
                            let (didChange, answer) = pending.apply(&records)
                            changed = changed || didChange
                            answers.append(answer)
                        }
                        if changed {
                            let file = try FileIO.writeAtomically(try Self.encode(records, path: self.path), to: self.path)
                            self.replaceCache(with: Snapshot(records: records, file: file, generation: generation))
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
        try await self.threadPool.runIfActive { [self] in _ = try Self.unavailableOnFailure { try self.currentRecords() } }
    }

    // MARK: - File I/O (thread pool only)

    /// The cached records if the file on disk is still the version they came from, else `nil`.
    ///
    /// The pin is never copied out of the lock, so the last reference to a version (whose `close` may free the
    /// inode) is dropped only in `replaceCache`, on the thread pool. Stat first, compare second: a match means
    /// the cached version was at the path at some moment between the two (if its pin was opened before the
    /// `stat`, both inodes were alive at once, so they are one; if after, it was opened or renamed in since),
    /// so the answer is never older than a change completed before this call.
    ///
    /// The watcher's generation is taken before the `stat`: an event after it moves the generation past the tag.
    private func cachedSnapshotIfCurrent() throws -> Snapshot? {
        let generation = self.watcher?.generation()
        let onDisk = try FileIO.identity(of: self.path)
        return self.cache.withLock { cache in
            guard cache.file?.identity == onDisk else { return nil }
            cache.generation = generation
            return cache
        }
    }

    /// The cached records, reloaded first when the file on disk is not the version they came from.
    private func currentRecords() throws -> [String: Record] {
        try self.currentSnapshot().records
    }

    private func currentSnapshot() throws -> Snapshot {
        if let snapshot = try self.cachedSnapshotIfCurrent() { return snapshot }
        let generation = self.watcher?.generation()
        let (data, file) = try FileIO.readWholeFile(self.path)
        guard let file else {
            // The file was removed (or never existed): an empty store.
            let empty = Snapshot(records: [:], file: nil, generation: generation)
            self.replaceCache(with: empty)
            return empty
        }
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
        let snapshot = Snapshot(records: normalized, file: file, generation: generation)
        self.replaceCache(with: snapshot)
        return snapshot
    }

    /// Moves the cache to `fresh`; the version it held is closed after the lock is released.
    private func replaceCache(with fresh: Snapshot) {
        let replaced = self.cache.withLock { cache in
            let old = cache
            cache = fresh
            return old
        }
        withExtendedLifetime(replaced) {}
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

/// Values computed from one version of a `SharedJSONFile`'s records (an index by email, an order), each once:
/// the file's next version, read or written, starts with none, so they are never stale.
package final class DerivedValues: Sendable {
    private let values = Mutex<[String: any Sendable]>([:])

    package init() {}

    /// The value named `name`, computed by `compute` the first time (outside the lock: two first readers may
    /// both compute it, from the same records, to the same value).
    package func value<Value: Sendable>(_ name: String, _ compute: () -> Value) -> Value {
        if let value = self.values.withLock({ $0[name] }) as? Value { return value }
        let value = compute()
        self.values.withLock { $0[name] = value }
        return value
    }
}
