/// Who a request's credentials name: the user, and the session that authenticated it (`nil` for Basic auth).
package struct AuthenticatedUser: Sendable {
    package let user: User
    package let sessionID: String?

    package init(user: User, sessionID: String?) {
        self.user = user
        self.sessionID = sessionID
    }
}
