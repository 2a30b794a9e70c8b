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
    package func value(in request: Request) -> Value {
        var found: Substring?
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let pair = pair.drop { $0 == " " || $0 == "\t" }
                guard pair.hasPrefix(self.name), pair.dropFirst(self.name.count).first == "=" else { continue }
                let value = pair.dropFirst(self.name.count + 1)
                if let found, found != value { return .conflicting }
                found = value
            }
        }
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
