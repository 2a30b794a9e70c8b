#if canImport(Glibc)
import Glibc
#endif

/// One version of a file, held open so that its inode number cannot be given to another file.
///
/// A rename over a file frees the old inode once nothing has it open, and ext4 hands a freed inode number
/// to the next file it creates: without a pin, a later version can have the same (device, inode) as an old one,
/// and with the same size and mtime tick it looks unchanged. While this descriptor is open the kernel keeps the
/// inode (unlinked or not), so no other file on the device has its number and `identity` names this version
/// alone. The descriptor is closed in `deinit`; that is a `close(2)` that may free the inode's blocks, so drop
/// the last reference off event loops.
package final class PinnedFile: Sendable {
    /// The identity of the pinned version, from `fstat(2)` on the descriptor.
    package let identity: FileIdentity
    private let descriptor: Int32

    /// Takes over `descriptor` (open on the version that `info` describes) and closes it in `deinit`.
    init(descriptor: Int32, info: Glibc.stat) {
        self.descriptor = descriptor
        self.identity = FileIdentity(info)
    }

    deinit {
        close(self.descriptor)
    }
}
