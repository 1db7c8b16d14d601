/// Turns frames into wire bytes: `0x00, COBS(id, seq, payload, CRC-32C), 0x00`.
///
/// The leading delimiter costs one byte and buys resynchronisation: whatever partial frame
/// the receiver holds (line noise, a frame cut off by a reset) ends there instead of
/// swallowing this one.
public enum FrameEncoder {
    /// Writes the wire bytes of `frame` into `out`, which must hold FrameLimits.maxWireBytes
    /// bytes; returns how many were written. Allocation-free.
    @inlinable
    public static func encode(_ frame: Frame, into out: UnsafeMutableRawBufferPointer) -> Int {
        precondition(out.count >= FrameLimits.maxWireBytes, "output buffer smaller than FrameLimits.maxWireBytes")
        return withUnsafeTemporaryAllocation(byteCount: FrameLimits.maxRawFrame, alignment: 4) { raw in
            let rawCount = writeRaw(frame, into: raw)
            return COBS.encode(UnsafeRawBufferPointer(rebasing: raw[0..<rawCount]), into: out)
        }
    }

    /// Appends the wire bytes of `frame` to `bytes`.
    public static func encode(_ frame: Frame, appendingTo bytes: inout [UInt8]) {
        withUnsafeTemporaryAllocation(byteCount: FrameLimits.maxWireBytes, alignment: 1) { out in
            let count = encode(frame, into: out)
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: out[0..<count]))
        }
    }

    /// The wire bytes of `frame`.
    public static func encode(_ frame: Frame) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(FrameLimits.maxWireBytes)
        encode(frame, appendingTo: &bytes)
        return bytes
    }

    /// The raw frame (header, payload, CRC) before COBS, for tools that show frame anatomy.
    public static func rawFrame(_ frame: Frame) -> [UInt8] {
        withUnsafeTemporaryAllocation(byteCount: FrameLimits.maxRawFrame, alignment: 4) { raw in
            Array(UnsafeRawBufferPointer(rebasing: raw[0..<writeRaw(frame, into: raw)]))
        }
    }

    /// The wire bytes of a frame with any id and payload bytes, including ones this codec
    /// would refuse to build (unknown ids, short or out-of-range payloads): for conformance
    /// tests and bring-up, which must show a pen what it should reject.
    public static func encode(id: UInt8, seq: UInt8, payload: [UInt8]) -> [UInt8] {
        precondition(payload.count <= FrameLimits.maxPayload, "payload longer than FrameLimits.maxPayload")
        return withUnsafeTemporaryAllocation(byteCount: FrameLimits.maxRawFrame, alignment: 4) { raw in
            raw[0] = id
            raw[1] = seq
            payload.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: raw[2...]).copyMemory(from: $0) }
            let rawCount = appendCRC(raw, bodyCount: 2 + payload.count)
            return withUnsafeTemporaryAllocation(byteCount: FrameLimits.maxWireBytes, alignment: 1) { out in
                Array(UnsafeRawBufferPointer(rebasing: out[0..<COBS.encode(UnsafeRawBufferPointer(rebasing: raw[0..<rawCount]), into: out)]))
            }
        }
    }

    @inlinable
    static func writeRaw(_ frame: Frame, into raw: UnsafeMutableRawBufferPointer) -> Int {
        raw[0] = frame.message.id.rawValue
        raw[1] = frame.seq
        let payloadCount = frame.message.encodePayload(into: UnsafeMutableRawBufferPointer(rebasing: raw[2...]))
        return appendCRC(raw, bodyCount: 2 + payloadCount)
    }

    /// Stores the CRC-32C of the first `bodyCount` bytes after them; returns the raw frame length.
    @inlinable
    static func appendCRC(_ raw: UnsafeMutableRawBufferPointer, bodyCount: Int) -> Int {
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<bodyCount]))
        raw.storeBytes(of: crc.littleEndian, toByteOffset: bodyCount, as: UInt32.self)
        return bodyCount + 4
    }
}

/// Consistent Overhead Byte Stuffing: removes every 0x00 from a frame at a cost of one byte
/// per 254, so 0x00 can delimit frames and a fixed buffer bounds the worst case.
public enum COBS {
    /// Writes `0x00, COBS(raw), 0x00` into `out`; returns the count. `raw` must be at most 254
    /// bytes (our frames are at most FrameLimits.maxRawFrame).
    @inlinable
    public static func encode(_ raw: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Int {
        precondition(raw.count < 255, "COBS.encode handles single-block frames only")
        out[0] = 0
        var codeIndex = 1
        var write = 2
        var code: UInt8 = 1
        for byte in raw {
            if byte == 0 {
                out[codeIndex] = code
                codeIndex = write
                write += 1
                code = 1
            } else {
                out[write] = byte
                write += 1
                code += 1
            }
        }
        out[codeIndex] = code
        out[write] = 0
        return write + 1
    }
}
