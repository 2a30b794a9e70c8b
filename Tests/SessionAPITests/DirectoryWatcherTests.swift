import AtomicFile
import Foundation
import Testing

/// The inotify watch behind the JSON stores' cache: its generation moves on every change to the watched name,
/// never on other files of the directory, and reading it never blocks.
@Suite struct DirectoryWatcherTests {
    static func directory() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("watcher-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    @Test func changesToTheFileMoveTheGeneration() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/.db_User.json"
        let watcher = try #require(DirectoryWatcher(watching: path))
        var generation = watcher.generation()
        #expect(watcher.generation() == generation, "no event, no move")

        // Created (the atomic writer: a temp file renamed over the name).
        _ = try FileIO.writeAtomically(Data("{}".utf8), to: path)
        #expect(watcher.generation() != generation)
        generation = watcher.generation()
        #expect(watcher.generation() == generation)

        // Replaced again, written in place, touched, deleted: each moves it.
        _ = try FileIO.writeAtomically(Data("{\"a\":1}".utf8), to: path)
        #expect(watcher.generation() != generation)
        generation = watcher.generation()
        try Data("{\"b\":2}".utf8).write(to: URL(fileURLWithPath: path))
        #expect(watcher.generation() != generation)
        generation = watcher.generation()
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1)], ofItemAtPath: path)
        #expect(watcher.generation() != generation)
        generation = watcher.generation()
        try FileManager.default.removeItem(atPath: path)
        #expect(watcher.generation() != generation)
    }

    @Test func otherFilesOfTheDirectoryDoNot() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let watcher = try #require(DirectoryWatcher(watching: directory + "/.db_User.json"))
        let generation = watcher.generation()
        _ = try FileIO.writeAtomically(Data("{}".utf8), to: directory + "/.db_UserSession.json")
        try Data("x".utf8).write(to: URL(fileURLWithPath: directory + "/.db_User.json.lock"))
        try Data("x".utf8).write(to: URL(fileURLWithPath: directory + "/other"))
        #expect(watcher.generation() == generation)
    }

    /// The directory gone: the watch can no longer be trusted, so every check is a change.
    @Test func aWatchThatBrokeReportsChangesForever() throws {
        let directory = try Self.directory()
        let watcher = try #require(DirectoryWatcher(watching: directory + "/.db_User.json"))
        let generation = watcher.generation()
        try FileManager.default.removeItem(atPath: directory)
        let first = watcher.generation()
        #expect(first != generation)
        #expect(watcher.generation() != first)
    }

    @Test func manyEventsAtOnce() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/.db_User.json"
        let watcher = try #require(DirectoryWatcher(watching: path))
        let generation = watcher.generation()
        for index in 0..<500 { _ = try FileIO.writeAtomically(Data("{\"n\":\(index)}".utf8), to: directory + "/noise-\(index % 7)") }
        _ = try FileIO.writeAtomically(Data("{}".utf8), to: path)
        #expect(watcher.generation() != generation)
    }
}
