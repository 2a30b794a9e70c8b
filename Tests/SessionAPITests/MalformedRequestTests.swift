import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Requests NIO's HTTP parser refuses, sent as raw bytes to a real server: JSON errors, never an empty
/// answer, a 500 or a crash; and the server keeps serving.
@Suite struct MalformedRequestTests {
    /// Sends `bytes` and returns everything the server answers until it closes (at most 5 s).
    static func exchange(_ bytes: [UInt8], port: Int) throws -> String {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ServerProcessError("socket failed") }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw ServerProcessError("connect failed") }
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count <= 0 { break }  // the server may close before reading everything
            sent += count
        }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            answer += chunk[0..<count]
        }
        return String(decoding: answer, as: UTF8.self)
    }

    @Test func unparsableRequestsGetJSONErrors() async throws {
        let directory = try CrossProcessTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try await ServerProcess(environment: ["DATA_DIR": directory.path, "AUTH_TYPE": "session_auth"])
        defer { server.terminate() }

        let hugeCookie =
            Array("GET /api/v1/users/me HTTP/1.1\r\nHost: x\r\nCookie: _my_session_id=".utf8)
            + [UInt8](repeating: UInt8(ascii: "a"), count: 100_000) + Array("\r\n\r\n".utf8)
        let tooLarge = try Self.exchange(hugeCookie, port: server.port)
        #expect(tooLarge.hasPrefix("HTTP/1.1 431"))
        #expect(tooLarge.hasSuffix(#"{"error":"Request Header Fields Too Large"}"#))

        for garbage in ["GARBAGE\r\n\r\n", "GET /api/v1/status HTTP/1.1\r\nHost: x\r\nX-Bad: \u{1}\u{2}\r\n\r\n"] {
            let answer = try Self.exchange(Array(garbage.utf8), port: server.port)
            #expect(answer.hasPrefix("HTTP/1.1 400"))
            #expect(answer.hasSuffix(#"{"error":"Bad Request"}"#))
        }

        // A long but acceptable cookie is just a session that does not exist.
        let longCookie =
            Array("GET /api/v1/users/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: _my_session_id=".utf8)
            + [UInt8](repeating: UInt8(ascii: "a"), count: 60_000) + Array("\r\n\r\n".utf8)
        let forbidden = try Self.exchange(longCookie, port: server.port)
        #expect(forbidden.hasPrefix("HTTP/1.1 403"))
        #expect(forbidden.hasSuffix(#"{"error":"Forbidden"}"#))

        let status = try await server.withClient { try await $0.get("/api/v1/status") }
        #expect(status.status == .ok)
    }
}
