/// One protocol frame: a sequence number and a message (PROTOCOL.md section 3).
public struct Frame: Hashable, Sendable, CustomStringConvertible {
    public var seq: UInt8
    public var message: Message

    public init(seq: UInt8, message: Message) {
        self.seq = seq
        self.message = message
    }

    public var description: String { "seq=\(seq) \(message)" }
}

/// Why the decoder dropped the bytes between two delimiters. A rejected frame is never acted on.
///
/// Plain data, like `Frame`: the field name is a `StaticString`, so a decoder output never
/// needs destroying (its cost showed up on every frame when it was a `String`).
public struct FrameRejection: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: String, Hashable, Sendable, CaseIterable {
        /// More than FrameLimits.maxEncodedFrame bytes before a delimiter.
        case tooLong = "too_long"
        /// Shorter than header plus CRC, or a COBS block cut off by the delimiter.
        case truncated
        /// The CRC-32C does not match.
        case badCRC = "bad_crc"
        /// CRC is good but this codec does not know the message id.
        case unknownID = "unknown_id"
        /// CRC is good but the payload is shorter than the message needs.
        case badLength = "bad_length"
        /// CRC is good but a field is out of its protocol range or malformed.
        case badField = "bad_field"
    }

    public var reason: Reason
    /// The message id, when the CRC was good (so the id can be trusted).
    public var messageID: MessageID?
    /// The sequence number, when the CRC was good; the pen uses it to NAK an unknown command.
    public var seq: UInt8?
    /// The offending field's protocol name, for `badField`.
    public var fieldName: StaticString?
    /// The payload length the message needs, for `badLength`.
    public var expectedLength: Int?

    public init(
        reason: Reason, messageID: MessageID? = nil, seq: UInt8? = nil,
        field: StaticString? = nil, expectedLength: Int? = nil
    ) {
        self.reason = reason
        self.messageID = messageID
        self.seq = seq
        self.fieldName = field
        self.expectedLength = expectedLength
    }

    /// The offending field's protocol name, for `badField`.
    public var field: String? { fieldName?.description }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.reason == rhs.reason && lhs.messageID == rhs.messageID && lhs.seq == rhs.seq
            && lhs.field == rhs.field && lhs.expectedLength == rhs.expectedLength
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(reason)
        hasher.combine(messageID)
        hasher.combine(seq)
        hasher.combine(field)
        hasher.combine(expectedLength)
    }

    public var description: String {
        var text = "rejected \(reason.rawValue)"
        if let messageID { text += " id=\(messageID)" }
        if let seq { text += " seq=\(seq)" }
        if let field { text += " field=\(field)" }
        if let expectedLength { text += " expected_length=\(expectedLength)" }
        return text
    }
}
