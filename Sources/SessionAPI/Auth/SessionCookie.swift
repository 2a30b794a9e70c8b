import Hummingbird

/// The session cookie: its name and attributes, reading it from a request and writing it on a response.
package struct SessionCookie: Sendable {
    /// The full name: `SESSION_NAME`, with `__Host-` in front when that setting is on.
    package let name: String
    /// `SESSION_COOKIE_SECURE`: the browser sends the cookie over HTTPS only (always on for `__Host-`).
    package let secure: Bool
    /// The session's lifetime in seconds, sent as `Max-Age` so the browser drops the cookie when the session
    /// ends; `nil` (sessions that never expire): a browser-session cookie, as the original's.
    package let maxAge: Int?

    package init(name: String, secure: Bool, maxAge: Int? = nil) {
        self.name = name
        self.secure = secure
        self.maxAge = maxAge
    }

    /// What a request carries under the cookie's name.
    package enum Value: Equatable, Sendable {
        case absent
        /// One value (sent once, or several times alike), well-formed or not.
        case one(Substring)
        /// Several different values. Which one a server would pick depends on the order the browser sends
        /// them in, which a sibling subdomain can arrange ("cookie tossing"): no order decides, the request
        /// is refused.
        case conflicting
    }

    /// The cookie's value in `request`'s `Cookie` headers (every one of them, every `name=value` pair).
    /// A scan of the headers' bytes: nothing is split or copied on the way (this runs on every request).
    package func value(in request: Request) -> Value {
        var found: Substring?
        var conflicting = false
        let name = self.name.utf8
        for field in request.headers where field.name == .cookie {
            let header = field.value
            let bytes = header.utf8
            var start = bytes.startIndex
            while start < bytes.endIndex {
                // One pair: from `start` to the next `;` (or the end).
                let end = bytes[start...].firstIndex(of: UInt8(ascii: ";")) ?? bytes.endIndex
                var pairStart = start
                while pairStart < end, bytes[pairStart] == UInt8(ascii: " ") || bytes[pairStart] == UInt8(ascii: "\t") {
                    pairStart = bytes.index(after: pairStart)
                }
                let pair = bytes[pairStart..<end]
                if pair.starts(with: name) {
                    let equals = bytes.index(pairStart, offsetBy: name.count)
                    if equals < end, bytes[equals] == UInt8(ascii: "=") {
                        let value = Substring(header.utf8[bytes.index(after: equals)..<end])
                        if let found, found != value { conflicting = true }
                        found = value
                    }
                }
                start = end < bytes.endIndex ? bytes.index(after: end) : end
            }
        }
        if conflicting { return .conflicting }
        return found.map { .one($0) } ?? .absent
    }

    /// The cookie's value when it is there once and has the shape of a session ID; anything else costs no I/O.
    package func sessionID(in request: Request) -> String? {
        guard case .one(let value) = self.value(in: request), SessionID.isWellFormed(value) else { return nil }
        return String(value)
    }

    /// The `Set-Cookie` that hands `sessionID` to the client: `HttpOnly; SameSite=Lax; Path=/` (+ `Secure`,
    /// `Max-Age`), no `Domain`, so it is a host-only cookie (what `__Host-` requires).
    package func issuing(_ sessionID: String) throws -> Cookie {
        try Cookie.validated(name: self.name, value: sessionID, maxAge: self.maxAge, path: "/", secure: self.secure, httpOnly: true, sameSite: .lax)
    }

    /// The `Set-Cookie` that tells the browser to drop the cookie.
    package func clearing() throws -> Cookie {
        try Cookie.validated(name: self.name, value: "", maxAge: 0, path: "/", secure: self.secure, httpOnly: true, sameSite: .lax)
    }
}
