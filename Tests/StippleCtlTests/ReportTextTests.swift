@testable import StippleCtlCommands
@testable import StippleReport
import Testing

/// The report's words for people and the one string it writes into CSS.
@Suite struct ReportTextTests {
    @Test("a session id in the PDF footer's CSS string can end neither the string, the rule nor the style element")
    func cssString() {
        #expect(Report.cssString("S-20794-1TADA72") == "S-20794-1TADA72")
        let hostile = Report.cssString(#"S-1"; } </style><script>\"#)
        #expect(!hostile.contains("\"") && !hostile.contains("}") && !hostile.contains("<") && !hostile.contains(";"))
        #expect(Report.cssString("a\\b") == "a\\5c b")
    }
}
