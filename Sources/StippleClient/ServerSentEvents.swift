import Foundation

/// One Server-Sent Event from `GET /v1/events`.
public struct DaemonEventLine: Sendable {
    public var name: String
    public var id: Int?
    /// The `data:` line exactly as sent (printed as is with `--json`).
    public var raw: String
    public var data: JSON

    public init(name: String, id: Int?, raw: String, data: JSON) {
        self.name = name
        self.id = id
        self.raw = raw
        self.data = data
    }
}

/// Splits an event stream's body into events (blank-line separated blocks of `field: value`).
public struct SSEParser {
    private var buffer = ""

    public init() {}

    public mutating func push(_ data: Data) -> [DaemonEventLine] {
        buffer += String(decoding: data, as: UTF8.self)
        var events: [DaemonEventLine] = []
        while let range = buffer.range(of: "\n\n") {
            let block = buffer[buffer.startIndex..<range.lowerBound]
            buffer = String(buffer[range.upperBound...])
            var name = "message"
            var id: Int?
            var lines: [Substring] = []
            for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix("event:") { name = line.dropFirst(6).trimmingCharacters(in: .whitespaces) }
                else if line.hasPrefix("id:") { id = Int(line.dropFirst(3).trimmingCharacters(in: .whitespaces)) }
                else if line.hasPrefix("data:") { lines.append(line.dropFirst(line.hasPrefix("data: ") ? 6 : 5)) }
            }
            guard !lines.isEmpty else { continue }
            let raw = lines.joined(separator: "\n")
            events.append(DaemonEventLine(name: name, id: id, raw: raw, data: (try? JSON(data: Data(raw.utf8))) ?? .null))
        }
        return events
    }
}
