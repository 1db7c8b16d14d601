extension Message.SetLimits {
    /// The limits checksum of PROTOCOL.md section 4: CRC-32C of the 16 payload bytes, as the
    /// pen reports it in LIMITS and HELLO_REPLY and as ARM carries it.
    public var checksum: UInt32 {
        withUnsafeTemporaryAllocation(byteCount: FrameLimits.maxPayload, alignment: 4) { buffer in
            let count = Message.setLimits(self).encodePayload(into: buffer)
            return CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
    }
}
