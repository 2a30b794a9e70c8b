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
    /// A scan of each header's contiguous bytes (this runs on every request): nothing is split or copied, and
    /// the value is a slice of the header.
    package func value(in request: Request) -> Value {
        var found: Substring?
        var conflicting = false
        for field in request.headers where field.name == .cookie {
            var header = field.value
            var match: Range<Int>?
            header.withUTF8 { bytes in
                var start = 0
                while start < bytes.count {
                    // One pair: from `start` to the next `;` (or the end), leading blanks skipped.
                    var end = start
                    while end < bytes.count, bytes[end] != UInt8(ascii: ";") { end += 1 }
                    var pairStart = start
                    while pairStart < end, bytes[pairStart] == UInt8(ascii: " ") || bytes[pairStart] == UInt8(ascii: "\t") {
                        pairStart += 1
                    }
                    let equals = pairStart + self.name.utf8.count
                    if equals < end, bytes[equals] == UInt8(ascii: "="), bytes[pairStart..<equals].elementsEqual(self.name.utf8) {
                        let value = (equals + 1)..<end
                        if let previous = match, !bytes[previous].elementsEqual(bytes[value]) { conflicting = true }
                        match = value
                    }
                    start = end + 1
                }
            }
            guard let match else { continue }
            let utf8 = header.utf8
            let value = Substring(
                utf8[utf8.index(utf8.startIndex, offsetBy: match.lowerBound)..<utf8.index(utf8.startIndex, offsetBy: match.upperBound)]
            )
            if let found, found != value { conflicting = true }
            found = value
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
