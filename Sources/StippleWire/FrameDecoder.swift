/// A streaming, sans-I/O frame decoder: feed it any chunks of bytes as they arrive and it
/// yields every complete frame or the reason it rejected one.
///
/// It undoes COBS on the fly into a fixed buffer stored inline (no heap, not even at init)
/// and runs the CRC-32C over each byte as it lands there, so the frame's delimiter finds the
/// CRC already checked instead of reading the frame a second time. Any 0x00 ends a frame,
/// which is what lets it resynchronise after garbage, a lost byte or a frame cut off in the
/// middle.
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

    /// Where the decoder is in the current frame; scalars only, so the chunk loop can keep it
    /// in registers.
    struct Cursor {
        /// Bytes in `raw`.
        var rawCount = 0
        /// Bytes since the last delimiter; past FrameLimits.maxEncodedFrame the frame is too
        /// long and the rest of it is skipped.
        var encodedCount = 0
        /// Data bytes left in the current COBS block; 0 means the next byte is a code byte.
        var blockRemaining = 0
        /// The current block ends in a zero (its code byte was not 0xFF).
        var zeroPending = false
        /// The CRC-32C register over `raw[0..<rawCount]`.
        var crc = CRC32C.initialRegister

        var isDiscarding: Bool { encodedCount > FrameLimits.maxEncodedFrame }

        /// One byte that is not a delimiter: a COBS code byte or a data byte.
        @inline(__always)
        mutating func take(_ byte: UInt8, into raw: inout FrameLimits.RawFrame) {
            encodedCount &+= 1
            if isDiscarding { return }
            if blockRemaining == 0 {
                // A code byte: the previous block, unless it was a full 0xFF block, ended in a zero.
                if zeroPending { append(0, to: &raw) }
                blockRemaining = Int(byte) &- 1
                zeroPending = byte != 0xFF
            } else {
                append(byte, to: &raw)
                blockRemaining &-= 1
            }
        }

        @inline(__always)
        mutating func append(_ byte: UInt8, to raw: inout FrameLimits.RawFrame) {
            raw[rawCount] = byte
            rawCount &+= 1
            crc = CRC32C.update(crc, byte)
        }
    }

    /// The frame so far with COBS undone: id, seq, payload, CRC.
    var raw = FrameLimits.RawFrame(repeating: 0)
    var cursor = Cursor()
    public private(set) var statistics = Statistics()

    public init() {}

    /// Feeds one byte; returns a frame or a rejection when `byte` completes one.
    public mutating func push(_ byte: UInt8) -> Output? {
        statistics.bytes &+= 1
        if byte == 0 { return endOfFrame() }
        cursor.take(byte, into: &raw)
        return nil
    }

    /// Feeds a chunk; `handler` sees every output in order. Allocation-free.
    public mutating func push(contentsOf bytes: UnsafeRawBufferPointer, _ handler: (Output) -> Void) {
        statistics.bytes &+= bytes.count
        var cursor = self.cursor
        for byte in bytes {
            if byte == 0 {
                self.cursor = cursor
                if let output = endOfFrame() { handler(output) }
                cursor = Cursor()
            } else {
                cursor.take(byte, into: &raw)
            }
        }
        self.cursor = cursor
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
        cursor = Cursor()
    }

    mutating func endOfFrame() -> Output? {
        defer { reset() }
        if cursor.isDiscarding { return reject(FrameRejection(reason: .tooLong)) }
        if cursor.encodedCount == 0 { return nil }  // back-to-back delimiters: idle fill
        if cursor.blockRemaining != 0 || cursor.rawCount < 6 { return reject(FrameRejection(reason: .truncated)) }
        // The register run over the body and then its CRC lands on the residue exactly when the
        // CRC the frame carries is the body's.
        guard cursor.crc == CRC32C.residue else { return reject(FrameRejection(reason: .badCRC)) }
        let id = raw[0]
        let seq = raw[1]
        let payloadCount = cursor.rawCount - 6
        do throws(PayloadError) {
            let message = try raw.span.withUnsafeBytes { bytes throws(PayloadError) in
                try Message.decodePayload(id: id, UnsafeRawBufferPointer(start: bytes.baseAddress! + 2, count: payloadCount))
            }
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

    mutating func reject(_ rejection: FrameRejection) -> Output {
        statistics.count(rejection.reason)
        return .rejected(rejection)
    }
}
