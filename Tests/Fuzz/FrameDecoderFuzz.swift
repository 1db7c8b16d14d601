// libFuzzer harness for the Swift frame decoder (StippleWire), built with the decoder's sources
// into one module by `make fuzz` (swiftc -sanitize=fuzzer,address): the bytes of a hostile or
// broken link must never crash it, and what it accepts must be exactly what the encoder writes.

@_cdecl("LLVMFuzzerTestOneInput")
public func frameDecoderFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))

    // Whole, and byte by byte: a frame split across reads decodes the same.
    var whole = FrameDecoder()
    let outputs = whole.push(contentsOf: bytes)
    var single = FrameDecoder()
    var byByte: [FrameDecoder.Output] = []
    for byte in bytes { if let output = single.push(byte) { byByte.append(output) } }
    precondition(outputs == byByte, "chunking changed what was decoded")
    precondition(whole.statistics == single.statistics, "chunking changed the statistics")
    precondition(whole.statistics.bytes == bytes.count, "bytes went uncounted")

    // Every accepted frame re-encodes to a frame that decodes to itself.
    for case .frame(let frame) in outputs {
        var again = FrameDecoder()
        let decoded = again.push(contentsOf: FrameEncoder.encode(frame))
        precondition(decoded == [.frame(frame)], "a decoded frame did not survive re-encoding: \(frame)")
    }
    return 0
}
