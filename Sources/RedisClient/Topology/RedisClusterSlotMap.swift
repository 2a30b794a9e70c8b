/// Which primary serves each of the 16,384 slots, as `CLUSTER SLOTS` tells it.
struct RedisClusterSlotMap: Equatable, Sendable {
    /// The primaries, each once.
    private(set) var primaries: [RedisClientConfiguration.Endpoint]
    /// For each slot, the index of its primary in ``primaries``, or -1 when no primary serves it.
    private var owners: [Int16]

    init() {
        self.primaries = []
        self.owners = Array(repeating: -1, count: RedisHashSlot.count)
    }

    /// The primary of `slot`, or `nil` when none serves it.
    func primary(forSlot slot: Int) -> RedisClientConfiguration.Endpoint? {
        guard (0..<RedisHashSlot.count).contains(slot) else { return nil }
        let owner = Int(self.owners[slot])
        return owner >= 0 ? self.primaries[owner] : nil
    }

    /// How many slots have no primary.
    var unassignedSlotCount: Int {
        self.owners.lazy.filter { $0 < 0 }.count
    }

    /// Points `slot` at `endpoint` (after `MOVED`), adding it to the primaries if it is new.
    mutating func assign(slot: Int, to endpoint: RedisClientConfiguration.Endpoint) {
        guard (0..<RedisHashSlot.count).contains(slot) else { return }
        let index: Int
        if let existing = self.primaries.firstIndex(of: endpoint) {
            index = existing
        } else {
            index = self.primaries.count
            self.primaries.append(endpoint)
        }
        self.owners[slot] = Int16(index)
    }

    /// Parses a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id, ...], replica...], ...]`.
    /// - Parameter host: The host of the node that answered, for entries whose host is empty (a node that does not
    ///   know its own address names itself so).
    /// - Throws: ``RedisClientError`` with code `unexpectedReply` when the reply has another shape.
    init(clusterSlotsReply reply: RESPValue, host: String) throws(RedisClientError) {
        self.init()
        guard case .array(let ranges) = reply else {
            throw RedisClient.unexpected(reply, for: "CLUSTER SLOTS")
        }
        for range in ranges {
            guard case .array(let parts) = range, parts.count >= 3, case .integer(let start) = parts[0], case .integer(let end) = parts[1],
                case .array(let primary) = parts[2], primary.count >= 2, let primaryHost = primary[0].string, case .integer(let port) = primary[1],
                0 <= start, start <= end, end < RedisHashSlot.count
            else {
                throw RedisClientError(.unexpectedReply, message: "unexpected CLUSTER SLOTS entry: \(range)")
            }
            // "?" is a node whose address is unknown: leave its slots unassigned (MOVED will say where they are).
            guard primaryHost != "?" else { continue }
            let endpoint = RedisClientConfiguration.Endpoint.tcp(host: primaryHost.isEmpty ? host : primaryHost, port: Int(port))
            for slot in Int(start)...Int(end) {
                self.assign(slot: slot, to: endpoint)
            }
        }
        // Drop primaries that lost every slot to a later entry.
        self.compact()
    }

    private mutating func compact() {
        var used = Array(repeating: false, count: self.primaries.count)
        for owner in self.owners where owner >= 0 {
            used[Int(owner)] = true
        }
        guard used.contains(false) else { return }
        var newIndex = Array(repeating: Int16(-1), count: self.primaries.count)
        var kept: [RedisClientConfiguration.Endpoint] = []
        for (index, endpoint) in self.primaries.enumerated() where used[index] {
            newIndex[index] = Int16(kept.count)
            kept.append(endpoint)
        }
        self.primaries = kept
        self.owners = self.owners.map { $0 >= 0 ? newIndex[Int($0)] : -1 }
    }
}
