import Foundation
import Testing

/// The rules of `architecture.json` hold in `Sources/SessionAPI`: no folder imports a module it must not,
/// or names a top-level type declared in a folder it must not depend on.
@Suite struct ArchitectureTests {
    struct Rules: Decodable {
        struct Folder: Decodable {
            let forbiddenImports: [String]
            let forbiddenFolders: [String]
        }
        let root: String
        let folders: [String: Folder]
    }

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func rules() throws -> Rules {
        try JSONDecoder().decode(Rules.self, from: Data(contentsOf: Self.repository.appendingPathComponent("architecture.json")))
    }

    /// The Swift files of a folder (recursively), each with its text less `//` comments.
    static func sources(_ folder: URL) throws -> [(name: String, text: String)] {
        let enumerator = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil)
        var files: [(String, String)] = []
        while let url = enumerator?.nextObject() as? URL {
            guard url.pathExtension == "swift" else { continue }
            let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            let code = lines.map { line in line.range(of: "//").map { String(line[..<$0.lowerBound]) } ?? String(line) }
            files.append((url.lastPathComponent, code.joined(separator: "\n")))
        }
        return files
    }

    /// The types declared at the top level of a folder's files.
    static func declaredTypes(in folder: URL) throws -> Set<String> {
        let declaration = #/^(?:package |public |internal )?(?:final )?(?:struct|enum|class|protocol|actor|typealias) ([A-Z][A-Za-z0-9]*)/#
        var names: Set<String> = []
        for file in try Self.sources(folder) {
            for line in file.text.split(separator: "\n") {
                if let match = line.firstMatch(of: declaration) { names.insert(String(match.1)) }
            }
        }
        return names
    }

    @Test func everyFolderKeepsItsRules() throws {
        let rules = try Self.rules()
        let root = Self.repository.appendingPathComponent(rules.root)
        for (folder, rule) in rules.folders {
            let sources = try Self.sources(root.appendingPathComponent(folder))
            #expect(!sources.isEmpty, "\(folder) has no sources")
            var forbiddenTypes: [String: String] = [:]
            for other in rule.forbiddenFolders {
                let types = try Self.declaredTypes(in: root.appendingPathComponent(other))
                #expect(!types.isEmpty, "\(other) declares no types: a stale rule?")
                for type in types { forbiddenTypes[type] = other }
            }
            for file in sources {
                for line in file.text.split(separator: "\n") where line.hasPrefix("import ") {
                    let module = line.dropFirst("import ".count).trimmingCharacters(in: .whitespaces)
                    #expect(!rule.forbiddenImports.contains(module), "\(folder)/\(file.name) imports \(module)")
                }
                let words = Set(file.text.split { !($0.isLetter || $0.isNumber || $0 == "_") }.map(String.init))
                for word in words {
                    if let owner = forbiddenTypes[word] {
                        Issue.record("\(folder)/\(file.name) uses \(word), declared in \(owner)/")
                    }
                }
            }
        }
    }
}
