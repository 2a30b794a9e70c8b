import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What tells one version of a file from another: a rename gives a new inode, a rewrite a new size or mtime.
///
/// A (device, inode) pair names one file only while that file exists: compare against an identity whose file
/// is held open (`PinnedFile`), or a freed and reused inode can make a new version look like an old one.
package struct FileIdentity: Equatable, Sendable {
    package let device: UInt64
    package let inode: UInt64
    let size: Int64
    let modifiedSeconds: Int
    let modifiedNanoseconds: Int

    init(_ info: Glibc.stat) {
        self.device = UInt64(info.st_dev)
        self.inode = UInt64(info.st_ino)
        self.size = Int64(info.st_size)
        self.modifiedSeconds = Int(info.st_mtim.tv_sec)
        self.modifiedNanoseconds = Int(info.st_mtim.tv_nsec)
    }
}

/// A failed file operation; `description` names the file and the system's reason.
package struct FileIOError: Error, CustomStringConvertible {
    package let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// Blocking POSIX file operations for the JSON stores. Call them on a thread pool only.
/// (A module of its own: it must not see NIO's C module, which claims `struct stat` for itself.)
package enum FileIO {
    /// The identity of the file at `path`, `nil` when there is none.
    package static func identity(of path: String) throws -> FileIdentity? {
        var info = Glibc.stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw FileIOError("cannot stat \(path): \(errorText())")
        }
        return FileIdentity(info)
    }

    /// The whole file and the version that was read, held open; an absent file reads as `{}` (and `nil`).
    package static func readWholeFile(_ path: String) throws -> (bytes: [UInt8], file: PinnedFile?) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { return (Array("{}".utf8), nil) }
            throw FileIOError("cannot open \(path): \(errorText())")
        }
        var info = Glibc.stat()
        guard fstat(descriptor, &info) == 0 else {
            let error = FileIOError("cannot stat \(path): \(errorText())")
            close(descriptor)
            throw error
        }
        // From here on `file` owns the descriptor (and closes it if this throws).
        let file = PinnedFile(descriptor: descriptor, info: info)
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeMutableBytes { buffer in
                read(descriptor, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
            }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw FileIOError("cannot read \(path): \(errorText())") }
            offset += count
        }
        return (bytes, file)
    }

    /// Writes `data` to a temp file beside `path`, fsyncs it, renames it over `path` and fsyncs the
    /// directory: a crash leaves the old file or the new one, never a torn one. Returns the new version,
    /// held open by the descriptor it was written through (its identity taken before the rename).
    package static func writeAtomically(_ data: Data, to path: String) throws -> PinnedFile {
        let directory = (path as NSString).deletingLastPathComponent
        let directoryPath = directory.isEmpty ? "." : directory
        let name = (path as NSString).lastPathComponent
        let temporary = directoryPath + "/.\(name).tmp-\(getpid())-\(UInt32.random(in: .min ... .max))"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw FileIOError("cannot create \(temporary): \(errorText())") }
        var renamed = false
        defer { if !renamed { unlink(temporary) } }
        let file: PinnedFile
        do {
            try data.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let count = write(descriptor, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
                    if count < 0, errno == EINTR { continue }
                    guard count > 0 else { throw FileIOError("cannot write \(temporary): \(errorText())") }
                    offset += count
                }
            }
            guard fsync(descriptor) == 0 else { throw FileIOError("cannot fsync \(temporary): \(errorText())") }
            var info = Glibc.stat()
            guard fstat(descriptor, &info) == 0 else { throw FileIOError("cannot stat \(temporary): \(errorText())") }
            file = PinnedFile(descriptor: descriptor, info: info)
        } catch {
            close(descriptor)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            throw FileIOError("cannot rename \(temporary) to \(path): \(errorText())")
        }
        renamed = true
        let directoryDescriptor = open(directoryPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
        return file
    }

    /// Deletes temp files that `writeAtomically` left beside `path` when its process died mid-write
    /// (their names carry the writer's PID; a live writer's files are left alone).
    package static func removeStaleTemporaryFiles(besides path: String) {
        let directory = (path as NSString).deletingLastPathComponent
        let directoryPath = directory.isEmpty ? "." : directory
        let prefix = ".\((path as NSString).lastPathComponent).tmp-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directoryPath) else { return }
        for name in names where name.hasPrefix(prefix) {
            guard let pid = name.dropFirst(prefix.count).split(separator: "-").first.flatMap({ Int32($0) }) else { continue }
            if kill(pid, 0) != 0, errno == ESRCH {
                unlink(directoryPath + "/" + name)
            }
        }
    }

    /// Runs `body` holding an exclusive `flock` on `path` (a lock file that is never deleted: deleting
    /// it would let two writers lock two different files; the kernel drops the lock if the process dies).
    /// Waits up to `timeoutMilliseconds` for the lock, then throws `FileIOError`.
    package static func withExclusiveLock<T>(path: String, timeoutMilliseconds: Int, _ body: () throws -> T) throws -> T {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw FileIOError("cannot open lock file \(path): \(errorText())")
        }
        // Closing the descriptor releases the lock.
        defer { close(descriptor) }
        // flock has no timed form: poll (this runs on a thread-pool thread and the lock is normally held for
        // milliseconds), so a stuck process cannot hang this one. The pause stays short: a process that just
        // released the lock takes it again as soon as its next write arrives, so a waiter that sleeps long
        // would rarely find it free.
        let deadline = ContinuousClock.now + .milliseconds(timeoutMilliseconds)
        var pause: UInt32 = 50
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            let error = errno
            guard error == EWOULDBLOCK || error == EINTR else {
                throw FileIOError("cannot lock \(path): \(String(cString: strerror(error)))")
            }
            guard ContinuousClock.now < deadline else {
                throw FileIOError("timed out waiting for the lock on \(path)")
            }
            usleep(pause)
            pause = min(pause * 2, 250)
        }
        return try body()
    }

    private static func errorText() -> String {
        String(cString: strerror(errno))
    }
}
