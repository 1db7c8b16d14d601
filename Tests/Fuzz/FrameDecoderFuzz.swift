// libFuzzer harness for the Swift frame decoder (StippleWire), built with the decoder's sources
// into one module by `make fuzz` (swiftc -sanitize=fuzzer,address): the bytes of a hostile or
// broken link must never crash it, and what it accepts must be exactly what the encoder writes.

@_cdecl("LLVMFuzzerTestOneInput")
public func frameDecoderFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))

    // Byte by byte, and through the link's allocation-free chunk path in reads cut where the
    // input's own bytes say: a frame split across reads decodes the same.
    var single = FrameDecoder()
    var outputs: [FrameDecoder.Output] = []
    for byte in bytes { if let output = single.push(byte) { outputs.append(output) } }
    var chunked = FrameDecoder()
    var byChunk: [FrameDecoder.Output] = []
    var start = 0
    var cut = 0
    while start < bytes.count {
        let length = 1 + Int(bytes[cut % bytes.count]) % 37
        cut += 1
        let end = min(bytes.count, start + length)
        bytes[start..<end].withUnsafeBytes { chunk in chunked.push(contentsOf: chunk) { byChunk.append($0) } }
        start = end
    }
    precondition(outputs == byChunk, "chunking changed what was decoded")
    precondition(single.statistics == chunked.statistics, "chunking changed the statistics")
    precondition(single.statistics.bytes == bytes.count, "bytes went uncounted")

    // Every accepted frame re-encodes to a frame that decodes to itself.
    for case .frame(let frame) in outputs {
        var again = FrameDecoder()
        let decoded = again.push(contentsOf: FrameEncoder.encode(frame))
        precondition(decoded == [.frame(frame)], "a decoded frame did not survive re-encoding: \(frame)")
    }
    return 0
}
