import Crypto

/// The audit chain's digest: SHA-256 from swift-crypto, over the UTF-8 bytes of an entry's
/// canonical form, as 64 lower-case hex digits — what `sha256sum` prints for the same bytes, so
/// an auditor can recompute any link without Stipple (`AuditDigestTests` does exactly that).
enum AuditDigest {
    static func hex(_ text: String) -> String {
        SHA256.hash(data: Array(text.utf8)).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
