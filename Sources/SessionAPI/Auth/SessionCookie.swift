import Hummingbird

/// The session cookie: its name and attributes, reading it from a request and writing it on a response.
package struct SessionCookie: Sendable {
    /// `SESSION_NAME`.
    package let name: String
    /// `SESSION_COOKIE_SECURE`: the browser sends the cookie over HTTPS only.
    package let secure: Bool

    package init(name: String, secure: Bool) {
        self.name = name
        self.secure = secure
    }

    /// The cookie's value, well-formed or not; `nil` when the request has no such cookie.
    package func value(in request: Request) -> String? {
        request.cookies[self.name]?.value
    }

    /// The cookie's value when it has the shape of a session ID; anything else costs no I/O.
    package func sessionID(in request: Request) -> String? {
        guard let value = self.value(in: request), SessionID.isWellFormed(value) else { return nil }
        return value
    }

    /// The `Set-Cookie` that hands `sessionID` to the client: `HttpOnly; SameSite=Lax; Path=/` (+ `Secure`).
    package func issuing(_ sessionID: String) throws -> Cookie {
        try Cookie.validated(name: self.name, value: sessionID, path: "/", secure: self.secure, httpOnly: true, sameSite: .lax)
    }

    /// The `Set-Cookie` that tells the browser to drop the cookie.
    package func clearing() throws -> Cookie {
        try Cookie.validated(name: self.name, value: "", maxAge: 0, path: "/", secure: self.secure, httpOnly: true, sameSite: .lax)
    }
}
