/// A streaming, sans-I/O frame decoder: feed it any chunks of bytes as they arrive and it
/// yields every complete frame or the reason it rejected one.
///
/// It decodes COBS on the fly into one fixed buffer allocated at init, so the hot path makes
/// no heap allocation. Any 0x00 ends a frame, which is what lets it resynchronise after
/// garbage, a lost byte or a frame cut off in the middle.
public struct FrameDecoder: Sendable {
    public enum Output: Hashable, Sendable {
        case frame(Frame)
        case rejected(FrameRejection)
    }

    /// Counters for link diagnostics (stipplectl, metrics).
    public struct Statistics: Hashable, Sendable {
        public var frames = 0
        public var tooLong = 0
        public var truncated = 0
        public var badCRC = 0
        public var unknownID = 0
        public var badLength = 0
        public var badField = 0
        public var bytes = 0

        public var rejected: Int { tooLong + truncated + badCRC + unknownID + badLength + badField }

        mutating func count(_ reason: FrameRejection.Reason) {
            switch reason {
            case .tooLong: tooLong += 1
            case .truncated: truncated += 1
            case .badCRC: badCRC += 1
            case .unknownID: unknownID += 1
            case .badLength: badLength += 1
            case .badField: badField += 1
            }
        }
    }

    var raw: [UInt8]
    var rawCount = 0
    var encodedCount = 0
    var blockRemaining = 0
    var zeroPending = false
    var discarding = false
    public private(set) var statistics = Statistics()

    public init() {
        raw = [UInt8](repeating: 0, count: FrameLimits.maxRawFrame)
    }

    /// Feeds one byte; returns a frame or a rejection when `byte` completes one.
    public mutating func push(_ byte: UInt8) -> Output? {
        statistics.bytes &+= 1
        if byte == 0 { return endOfFrame() }
        if discarding { return nil }
        encodedCount += 1
        if encodedCount > FrameLimits.maxEncodedFrame {
            discarding = true
            return nil
        }
        if blockRemaining == 0 {
            if zeroPending {
                raw[rawCount] = 0
                rawCount += 1
            }
            blockRemaining = Int(byte) - 1
            zeroPending = byte != 0xFF
        } else {
            raw[rawCount] = byte
            rawCount += 1
            blockRemaining -= 1
        }
        return nil
    }

    /// Feeds a chunk; `handler` sees every output in order. Allocation-free.
    public mutating func push(contentsOf bytes: UnsafeRawBufferPointer, _ handler: (Output) -> Void) {
        for byte in bytes {
            if let output = push(byte) { handler(output) }
        }
    }

    /// Feeds any byte sequence; returns the outputs (convenience for tools and tests).
    public mutating func push(contentsOf bytes: some Sequence<UInt8>) -> [Output] {
        var outputs: [Output] = []
        for byte in bytes {
            if let output = push(byte) { outputs.append(output) }
        }
        return outputs
    }

    /// Forgets any partial frame, as after reopening the link.
    public mutating func reset() {
        rawCount = 0
        encodedCount = 0
        blockRemaining = 0
        zeroPending = false
        discarding = false
    }

    mutating func endOfFrame() -> Output? {
        defer { reset() }
        if discarding { return reject(FrameRejection(reason: .tooLong)) }
        if encodedCount == 0 { return nil }  // back-to-back delimiters: idle fill
        if blockRemaining != 0 { return reject(FrameRejection(reason: .truncated)) }
        if rawCount < 6 { return reject(FrameRejection(reason: .truncated)) }
        return raw.withUnsafeBytes { bytes -> Output in
            let bodyCount = rawCount - 4
            let body = UnsafeRawBufferPointer(rebasing: bytes[0..<bodyCount])
            let sent = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: bodyCount, as: UInt32.self))
            guard CRC32C.checksum(body) == sent else { return reject(FrameRejection(reason: .badCRC)) }
            let id = bytes[0]
            let seq = bytes[1]
            do throws(PayloadError) {
                let message = try Message.decodePayload(id: id, UnsafeRawBufferPointer(rebasing: bytes[2..<bodyCount]))
                statistics.frames += 1
                return .frame(Frame(seq: seq, message: message))
            } catch {
                let messageID = MessageID(rawValue: id)
                switch error {
                case .unknownID:
                    return reject(FrameRejection(reason: .unknownID, messageID: messageID, seq: seq))
                case .badLength(let expected):
                    return reject(FrameRejection(reason: .badLength, messageID: messageID, seq: seq, expectedLength: expected))
                case .badField(let field):
                    return reject(FrameRejection(reason: .badField, messageID: messageID, seq: seq, field: field))
                }
            }
        }
    }

    mutating func reject(_ rejection: FrameRejection) -> Output {
        statistics.count(rejection.reason)
        return .rejected(rejection)
    }
}
