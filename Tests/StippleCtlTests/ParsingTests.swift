import ArgumentParser
@testable import StippleCtlCommands
import Testing

@Suite struct ParsingTests {
    @Test func statusParses() throws {
        let command = try StippleCtl.parseAsRoot(["status", "--json", "--socket", "/tmp/x.sock"])
        let status = try #require(command as? Status)
        #expect(status.options.json)
        #expect(status.options.socket == "/tmp/x.sock")
    }
}
