import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The client's address: the TCP peer, or, when the peer is a trusted proxy, the nearest address in
/// `X-Forwarded-For` that is not itself a trusted proxy (so a client cannot forge its own address).
package struct ClientAddress: Sendable {
    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    let trustedProxies: [IPNetwork]

    package init(trustedProxies: [IPNetwork]) {
        self.trustedProxies = trustedProxies
    }

    package func address(of request: Request, context: AppRequestContext) -> String? {
        guard let peer = context.peerAddress?.ipAddress else { return nil }
        guard self.isTrusted(peer) else { return peer }
        let forwarded = request.headers[values: Self.forwardedFor]
            .flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in forwarded.reversed() {
            guard IPNetwork.bytes(of: hop) != nil else { return peer }
            if !self.isTrusted(hop) { return hop }
        }
        return forwarded.first ?? peer
    }

    private func isTrusted(_ address: String) -> Bool {
        self.trustedProxies.contains { $0.contains(address) }
    }
}
