/// What a cluster node's error reply asks the client to do: go to another node (`MOVED`, `ASK`), or try again soon
/// (`TRYAGAIN` during a resharding, `CLUSTERDOWN` while slots have no primary).
enum RedisClusterRedirect: Equatable {
    /// The slot lives on `endpoint` now: update the map and send it there.
    case moved(slot: Int, endpoint: RedisClientConfiguration.Endpoint)
    /// The slot is being migrated and the key may be on `endpoint`: send `ASKING` and the command there, once.
    case ask(slot: Int, endpoint: RedisClientConfiguration.Endpoint)
    /// A multi-key command during a migration, or a slot without a primary: wait a little and retry.
    case tryAgain
    case clusterDown

    /// Parses an error reply such as `MOVED 3999 127.0.0.1:6381`; `nil` when it is not a redirect.
    /// - Parameter host: The host of the node that answered, for `MOVED 3999 :6381` (an empty host means the same one).
    init?(_ message: String, host: String) {
        if message.hasPrefix("TRYAGAIN") {
            self = .tryAgain
            return
        }
        if message.hasPrefix("CLUSTERDOWN") {
            self = .clusterDown
            return
        }
        let words = message.split(separator: " ")
        guard words.count >= 3, words[0] == "MOVED" || words[0] == "ASK", let slot = Int(words[1]), (0..<RedisHashSlot.count).contains(slot),
            let colon = words[2].lastIndex(of: ":"), let port = Int(words[2][words[2].index(after: colon)...]), (1...65535).contains(port)
        else { return nil }
        var nodeHost = String(words[2][..<colon])
        if nodeHost.hasPrefix("["), nodeHost.hasSuffix("]") {
            nodeHost = String(nodeHost.dropFirst().dropLast())
        }
        let endpoint = RedisClientConfiguration.Endpoint.tcp(host: nodeHost.isEmpty ? host : nodeHost, port: port)
        self = words[0] == "MOVED" ? .moved(slot: slot, endpoint: endpoint) : .ask(slot: slot, endpoint: endpoint)
    }
}
