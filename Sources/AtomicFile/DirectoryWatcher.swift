import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Tells without blocking whether a file may have changed: an inotify watch on the file's directory, whose
/// events about that name (renamed over, created, written, deleted, moved away) move a generation counter.
///
/// A cache tagged with the generation it was validated at is current while the generation has not moved: no
/// `stat(2)` (which can block on a slow disk) is needed on the hot path, so the check may run on an event loop.
/// inotify events are queued by the very system call that makes the change (the writer's `rename` returns
/// after its event is queued), so a check that starts after a change completed sees it. A queue overflow moves
/// every counter once; the directory going away moves it at every check from then on (the cache always revalidates).
/// Local file systems only (inotify does not see another host's writes over NFS; neither does `flock` hold there).
///
/// Every watcher of a process shares one inotify instance (`Inotify.shared`): instances are a scarce per-user
/// resource (`fs.inotify.max_user_instances`, 128 by default), watches are not.
package final class DirectoryWatcher: Sendable {
    private let inotify: Inotify
    private let watch: Int32
    private let name: [UInt8]

    /// Watches the directory of `path` for changes to `path`'s name; `nil` when inotify cannot be used.
    package init?(watching path: String) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let name = Array((slash.map { String(path[path.index(after: $0)...]) } ?? path).utf8)
        guard let inotify = Inotify.shared, let watch = inotify.addWatch(directory: directory, name: name) else { return nil }
        self.inotify = inotify
        self.watch = watch
        self.name = name
    }

    deinit {
        self.inotify.removeWatch(self.watch, name: self.name)
    }

    /// The current generation, after taking in every event queued so far (non-blocking `read`s only).
    package func generation() -> UInt64 {
        self.inotify.generation(watch: self.watch, name: self.name)
    }
}

/// One inotify instance and the generations of the names watched through it.
final class Inotify: Sendable {
    /// The process's instance, made on first use; `nil` when inotify cannot be used (no instance left, no inotify).
    static let shared: Inotify? = Inotify()

    private struct Key: Hashable {
        let watch: Int32
        let name: [UInt8]
    }

    private struct State: ~Copyable {
        var generations: [Key: UInt64] = [:]
        /// How many watchers use each watch descriptor (the kernel gives one directory one descriptor).
        var users: [Int32: Int] = [:]
        /// Watches whose events can no longer be trusted (the directory gone); `-1`: all of them (the queue unreadable).
        var broken: Set<Int32> = []
        var buffer = [UInt8](repeating: 0, count: 8192)
    }

    private let descriptor: Int32
    private let state = Mutex(State())
    private static let mask = UInt32(
        IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF
    )

    private init?() {
        let descriptor = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard descriptor >= 0 else { return nil }
        self.descriptor = descriptor
    }

    func addWatch(directory: String, name: [UInt8]) -> Int32? {
        self.state.withLock { state in
            let watch = inotify_add_watch(self.descriptor, directory, Self.mask)
            guard watch >= 0 else { return nil }
            state.users[watch, default: 0] += 1
            state.generations[Key(watch: watch, name: name), default: 0] += 0
            return watch
        }
    }

    func removeWatch(_ watch: Int32, name: [UInt8]) {
        self.state.withLock { state in
            let left = (state.users[watch] ?? 1) - 1
            if left > 0 {
                state.users[watch] = left
                return
            }
            state.users[watch] = nil
            state.generations = state.generations.filter { $0.key.watch != watch }
            state.broken.remove(watch)
            inotify_rm_watch(self.descriptor, watch)
        }
    }

    func generation(watch: Int32, name: [UInt8]) -> UInt64 {
        self.state.withLock { state in
            self.drain(&state)
            let key = Key(watch: watch, name: name)
            if state.broken.contains(watch) || state.broken.contains(-1) {
                state.generations[key, default: 0] &+= 1
            }
            return state.generations[key] ?? 0
        }
    }

    /// Reads every queued event (non-blocking) and moves the generations they concern.
    private func drain(_ state: inout State) {
        let header = MemoryLayout<inotify_event>.size
        while true {
            let count = state.buffer.withUnsafeMutableBytes { read(self.descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            if count < 0, errno != EAGAIN { state.broken.insert(-1) }
            guard count > 0 else { return }
            var offset = 0
            while offset + header <= count {
                let (watch, mask, length) = state.buffer.withUnsafeBytes { bytes in
                    (
                        bytes.load(fromByteOffset: offset, as: Int32.self),
                        bytes.load(fromByteOffset: offset + 4, as: UInt32.self),
                        Int(bytes.load(fromByteOffset: offset + 12, as: UInt32.self))
                    )
                }
                if mask & UInt32(IN_Q_OVERFLOW) != 0 {
                    // Events were lost: every cache revalidates once; later changes queue events again.
                    for key in state.generations.keys { state.generations[key]? &+= 1 }
                } else if mask & UInt32(IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT) != 0 {
                    state.broken.insert(watch)
                } else if length > 0, offset + header + length <= count {
                    // The name is NUL-padded to `length` bytes.
                    let name = Array(state.buffer[(offset + header)..<(offset + header + length)].prefix { $0 != 0 })
                    let key = Key(watch: watch, name: name)
                    if let generation = state.generations[key] { state.generations[key] = generation &+ 1 }
                }
                offset += header + length
            }
        }
    }
}
