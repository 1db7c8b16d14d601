import Foundation

/// Small formatting helpers shared by the text views: one way to write a duration, a date, a
/// depth and a rate everywhere.
public enum Text {
    /// Milliseconds as h:mm:ss.
    public static func clock(ms: Int?) -> String {
        guard let ms else { return "-" }
        let seconds = max(0, ms) / 1000
        return String(format: "%d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60)
    }

    /// Unix seconds as local "YYYY-MM-DD HH:MM:SS".
    public static func date(_ seconds: Int?) -> String {
        guard let seconds else { return "-" }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    /// Days since 1970-01-01 as YYYY-MM-DD.
    public static func day(_ days: Int?) -> String {
        guard let days else { return "-" }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(days) * 86_400))
    }

    /// YYYY-MM-DD as days since 1970-01-01 (cartridge expiry).
    public static func days(fromDate text: String) -> Int? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        guard let date = formatter.date(from: text) else { return nil }
        return Int(date.timeIntervalSince1970 / 86_400)
    }

    public static func rate(_ hz: Double?) -> String {
        guard let hz else { return "-" }
        return String(format: "%.1f Hz", hz)
    }

    public static func depth(_ um: Int?) -> String { um.map { "\($0) µm" } ?? "-" }

    /// Rows padded into columns.
    public static func table(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0.indices.contains(column) ? $0[column].count : 0 }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// "label    value" lines with the labels in one column.
    public static func fields(_ pairs: [(String, String)]) -> String {
        let width = pairs.map(\.0.count).max() ?? 0
        return pairs.map { "\($0.0.padding(toLength: width, withPad: " ", startingAt: 0))  \($0.1)" }.joined(separator: "\n")
    }
}
