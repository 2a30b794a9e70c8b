import AtomicFile
import Foundation
import Testing

/// `PinnedFile`: while a version of a file is held open, no later version gets its (device, inode).
@Suite struct PinnedFileTests {
    /// Renames per test: a few hundred milliseconds of fsyncs.
    static let cycles = 200
    static let contents = Data(repeating: UInt8(ascii: "x"), count: 100)

    /// Whether `path` is on ext4, from `/proc/self/mounts` (the longest mount point above it).
    static func isExt4(_ path: String) -> Bool {
        guard let mounts = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return false }
        let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        var best: (mountPoint: String, type: String) = ("", "")
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 2 else { continue }
            let mountPoint = String(fields[1])
            let inside = mountPoint == "/" || real == mountPoint || real.hasPrefix(mountPoint + "/")
            if inside, mountPoint.count >= best.mountPoint.count { best = (mountPoint, String(fields[2])) }
        }
        return best.type == "ext4"
    }

    @Test func noNewVersionGetsTheInodeOfAHeldVersion() async throws {
        try await withDataDirectory { directory in
            let path = directory + "/file.json"
            // The last two versions held: a cache that is current, and one that is a version behind.
            var held: [PinnedFile] = []
            for _ in 0..<Self.cycles {
                let version = try FileIO.writeAtomically(Self.contents, to: path)
                for old in held {
                    #expect(version.identity != old.identity)
                    #expect(version.identity.device != old.identity.device || version.identity.inode != old.identity.inode)
                }
                held.append(version)
                if held.count > 2 { held.removeFirst() }
            }
        }
    }

    /// The premise of the pin, and what gives the stale-cache tests their teeth: without it, ext4 gives the inode
    /// freed by one rename to the next file it creates, so version n+2 has the inode of version n.
    @Test func withoutAPinExt4ReusesAnInodeAtOnce() async throws {
        try await withDataDirectory { directory in
            let path = directory + "/file.json"
            var recent: [FileIdentity] = []
            var reused = 0
            for _ in 0..<Self.cycles {
                // Only the identity is kept: the version's descriptor is closed here.
                let identity = try FileIO.writeAtomically(Self.contents, to: path).identity
                if recent.contains(where: { $0.device == identity.device && $0.inode == identity.inode }) { reused += 1 }
                recent.append(identity)
                if recent.count > 2 { recent.removeFirst() }
            }
            if Self.isExt4(directory) {
                #expect(reused > 0, "no inode reused in \(Self.cycles) renames on ext4")
            }
        }
    }
}
