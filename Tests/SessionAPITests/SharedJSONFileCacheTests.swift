import Foundation
import SessionAPI
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The JSON stores' cache against a file that looks unchanged: a new version with the cached version's size and
/// mtime (forged here; on ext4 it also happens by chance within one mtime tick) on its inode if it can get it.
@Suite struct SharedJSONFileCacheTests {
    enum Step: String, CaseIterable {
        case read, write
    }

    /// `.db_UserSession.json` with one session; the same length for any IDs of the same lengths.
    static func sessionsFile(sessionID: String, userID: String) -> [UInt8] {
        let recordID = UUID().uuidString.lowercased()
        let record = """
            {"created_at":"2026-01-01T00:00:00","id":"\(recordID)","session_id":"\(sessionID)",\
            "updated_at":"2026-01-01T00:00:00","user_id":"\(userID)"}
            """
        return Array(#"{"\#(recordID)":\#(record)}"#.utf8)
    }

    /// Writes `bytes` to a new file `name`, returning its open descriptor and its `fstat`.
    static func create(_ name: String, _ bytes: [UInt8]) throws -> (descriptor: Int32, info: Glibc.stat) {
        let descriptor = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        try #require(descriptor >= 0, "cannot create \(name): \(String(cString: strerror(errno)))")
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        var info = Glibc.stat()
        try #require(written == bytes.count && fstat(descriptor, &info) == 0)
        return (descriptor, info)
    }

    /// Replaces `path` with `bytes` as any writer does (temp file, rename).
    static func replace(_ path: String, with bytes: [UInt8]) throws {
        let temporary = path + ".new"
        close(try Self.create(temporary, bytes).descriptor)
        try #require(rename(temporary, path) == 0)
    }

    /// Replaces `path` with `bytes`, given the mtime of `original` and, if it can have it, `original`'s (freed)
    /// inode: up to 32 temp files are made, the misses kept open so that each try gets another inode.
    /// Returns whether the new version got `original`'s inode.
    static func replaceLookingUnchanged(_ path: String, with bytes: [UInt8], like original: Glibc.stat) throws -> Bool {
        var misses: [(descriptor: Int32, name: String)] = []
        defer {
            for miss in misses {
                close(miss.descriptor)
                unlink(miss.name)
            }
        }
        var chosen: (descriptor: Int32, name: String)?
        for attempt in 0..<32 {
            let name = path + ".forged-\(attempt)"
            let (descriptor, info) = try Self.create(name, bytes)
            if info.st_dev == original.st_dev, info.st_ino == original.st_ino {
                chosen = (descriptor, name)
                break
            }
            misses.append((descriptor, name))
        }
        let reused = chosen != nil
        let (descriptor, name) = try #require(chosen ?? misses.popLast())
        defer { close(descriptor) }
        var times = [original.st_atim, original.st_mtim]
        try #require(futimens(descriptor, &times) == 0)
        try #require(rename(name, path) == 0)
        return reused
    }

    /// Another process logs a session out and another in: the file a store cached is replaced twice, the second
    /// time by a version of the same size and mtime. The store must see the new version: on a read (not the
    /// logged-out session) and on a write (based on the new version, not the cached one: no lost update).
    @Test(arguments: Step.allCases)
    func aVersionThatLooksLikeTheCachedOneIsStillSeen(step: Step) async throws {
        try await withDataDirectory { directory in
            let path = directory + "/" + JSONFileSessionStore.fileName
            let (loggedOut, loggedIn) = (SessionID.generate(), SessionID.generate())
            let userID = UUID().uuidString.lowercased()
            let first = Self.sessionsFile(sessionID: loggedOut, userID: userID)
            let third = Self.sessionsFile(sessionID: loggedIn, userID: userID)
            try #require(first.count == third.count)
            try Self.replace(path, with: first)
            var original = Glibc.stat()
            try #require(stat(path, &original) == 0)

            let store = try await JSONFileSessionStore(directory: directory, expiry: SessionExpiry(duration: 0))
            #expect(try await store.userID(sessionID: loggedOut) == userID)
            try Self.replace(path, with: Array("{}".utf8))
            let reused = try Self.replaceLookingUnchanged(path, with: third, like: original)
            #expect(!reused, "the new version got the inode of the version the store has cached")

            switch step {
            case .read:
                #expect(try await store.userID(sessionID: loggedOut) == nil)
                #expect(try await store.userID(sessionID: loggedIn) == userID)
            case .write:
                let added = try await store.startSession(userID: userID)
                let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
                #expect(text.contains(loggedIn), "lost update: \(text)")
                #expect(text.contains(added))
                #expect(!text.contains(loggedOut), "a logged-out session came back: \(text)")
            }
        }
    }
}
