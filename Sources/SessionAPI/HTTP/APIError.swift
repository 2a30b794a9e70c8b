import Hummingbird

/// An error response in the original's shape: `{"error": "..."}` with a status and optional headers.
package struct APIError: HTTPResponseError {
    package let status: HTTPResponse.Status
    package let message: String
    package let headers: HTTPFields

    /// An error whose message is the status's reason phrase (`Unauthorized`, `Forbidden`, ...).
    package init(_ status: HTTPResponse.Status, headers: HTTPFields = [:]) {
        self.init(status, message: Self.defaultMessage(status), headers: headers)
    }

    package init(_ status: HTTPResponse.Status, message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    package func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try JSONResponse.encode(["error": self.message], status: self.status)
        response.headers.append(contentsOf: self.headers)
        return response
    }

    /// The messages the Flask original (and its clients) use for the statuses it answers itself.
    private static func defaultMessage(_ status: HTTPResponse.Status) -> String {
        switch status.code {
        case 404: "Not found"
        default: status.reasonPhrase
        }
    }
}
