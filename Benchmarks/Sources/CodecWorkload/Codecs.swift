import StippleWire
import StippleWireC

/// The measured operations, each as its user would call it: the daemon feeds the Swift decoder
/// whole chunks, a firmware feeds the C decoder byte by byte from its receive interrupt. Each
/// returns the number of frames it decoded, so a caller can check the work was done.
public enum Codecs {
    /// Decodes `bytes` with `StippleWire.FrameDecoder`, from a fresh decoder.
    public static func decodeWithSwift(_ bytes: UnsafeRawBufferPointer) -> Int {
        var decoder = FrameDecoder()
        var frames = 0
        decoder.push(contentsOf: bytes) { output in
            if case .frame = output { frames += 1 }
        }
        return frames
    }

    /// Decodes `bytes` with the C codec's `stw_decoder_push`, from a fresh decoder.
    public static func decodeWithC(_ bytes: UnsafeRawBufferPointer) -> Int {
        var decoder = stw_decoder()
        stw_decoder_init(&decoder)
        var frame = stw_frame()
        var frames = 0
        for byte in bytes where stw_decoder_push(&decoder, byte, &frame) == STW_FRAME {
            frames += 1
        }
        return frames
    }

    /// Encodes `frames` one after another into one reused buffer (the daemon's path); returns
    /// the number of wire bytes.
    public static func encodeWithSwift(_ frames: [Frame], into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var bytes = 0
        for frame in frames { bytes += FrameEncoder.encode(frame, into: buffer) }
        return bytes
    }
}
