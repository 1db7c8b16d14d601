import Foundation
@testable import StippleRecords
import Testing

/// The audit chain's SHA-256 is held to the outside world, not to itself: the NIST example and a
/// real chain link recomputed by coreutils' `sha256sum`.
@Suite("The audit chain's digest")
struct AuditDigestTests {
    @Test("FIPS 180-4's examples")
    func nist() {
        #expect(AuditDigest.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(AuditDigest.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test("a chain link recomputed with sha256sum")
    func sha256sum() throws {
        let store = try RecordStore(path: DaemonRig.temporaryDirectory() + "/stipple.db")
        _ = try store.audit(kind: "test", actor: "ana", sessionID: "S-1", payload: ["depth_um": "800", "note": "ü ✓"], at: 1_790_000_000)
        _ = try store.audit(kind: "test", actor: "ben", sessionID: nil, payload: [:], at: 1_790_000_001)
        let entries = try store.auditEntries(after: 0, limit: 10)
        #expect(entries.count == 2)
        for entry in entries {
            let file = DaemonRig.temporaryDirectory() + "/link"
            try Data(entry.canonicalForm.utf8).write(to: URL(fileURLWithPath: file))
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
            process.arguments = [file]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            process.waitUntilExit()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(output.split(separator: " ").first.map(String.init) == entry.hash, "entry \(entry.seq)")
        }
        #expect(entries[1].prevHash == entries[0].hash)
        #expect(try store.verifyAudit().firstBroken == nil)
    }
}
