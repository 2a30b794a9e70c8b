/// The fields of `POST /api/v1/auth_session/login`, from a form or a JSON body.
struct LoginRequest: Decodable, Sendable {
    var email: String?
    var password: String?
}
