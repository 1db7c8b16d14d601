import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import StippleAPI
import StippleRequests

/// The technician's console: static files served under `/console/` on the API socket, for
/// `stipplectl console` to bridge to the user's browser (docs/console.md). The daemon itself
/// still has no TCP listener (H14).
///
/// The files are read once, at start-up, into memory, and only names from that reading are ever
/// answered: a request cannot walk out of the directory (no path is ever built from a request),
/// and a file changed on disk while the daemon runs is not half-served. The whole console is a
/// few tens of kilobytes; a directory holding more than `maximumBytes` is refused as a whole.
public struct ConsoleFiles: Sendable {
    public struct File: Sendable {
        public var bytes: [UInt8]
        public var contentType: String
    }

    /// Where the files came from (for the log and the 404 of a daemon with none).
    public let directory: String?
    let files: [String: File]

    public static let maximumBytes = 2 << 20
    /// The file types a console is made of; anything else in the directory is skipped.
    static let types: [String: String] = [
        "html": "text/html; charset=utf-8", "css": "text/css; charset=utf-8",
        "js": "text/javascript; charset=utf-8", "svg": "image/svg+xml", "png": "image/png",
        "ico": "image/x-icon", "json": "application/json",
    ]

    /// A console with no files: every `/console/` request is a 404 that says so.
    public static let none = ConsoleFiles(directory: nil, files: [:])

    init(directory: String?, files: [String: File]) {
        self.directory = directory
        self.files = files
    }

    public struct LoadError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads the directory's files (one level: the console has no subdirectories). Names are
    /// letters, digits, `-`, `_` and one `.` before a known extension.
    public static func load(directory: String) throws(LoadError) -> ConsoleFiles {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw LoadError(description: "cannot read the console directory \(directory): \(error.localizedDescription)")
        }
        var files: [String: File] = [:]
        var total = 0
        for name in names.sorted() {
            guard let type = contentType(name) else { continue }
            let path = "\(directory)/\(name)"
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw LoadError(description: "cannot read \(path)")
            }
            total += data.count
            guard total <= maximumBytes else {
                throw LoadError(description: "the console directory \(directory) holds more than \(maximumBytes) bytes")
            }
            files[name] = File(bytes: [UInt8](data), contentType: type)
        }
        guard files["index.html"] != nil else {
            throw LoadError(description: "the console directory \(directory) has no index.html")
        }
        return ConsoleFiles(directory: directory, files: files)
    }

    static func contentType(_ name: String) -> String? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, (1...64).contains(parts[0].count),
              parts[0].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else { return nil }
        return types[String(parts[1])]
    }

    /// The first of these that holds a console: the configured directory (which must), the
    /// installed one beside the executable (`PREFIX/share/stipple/console`), the system's, and
    /// a source checkout's own copy (`Sources/console`, found from this file's place at build time).
    public static func locate(configured: String?, executable: String) throws(LoadError) -> ConsoleFiles {
        if let configured { return try load(directory: configured) }
        let bin = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent()
        let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent()   // Sources/StippleDaemon/API
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("console").path
        let candidates = [
            bin.deletingLastPathComponent().appendingPathComponent("share/stipple/console").path,
            "/usr/share/stipple/console", checkout,
        ]
        for candidate in candidates where FileManager.default.fileExists(atPath: "\(candidate)/index.html") {
            return try load(directory: candidate)
        }
        return .none
    }

    /// The console's pages may not be framed, may load nothing but their own files, and run no
    /// inline script (the bridge sets the same on everything it forwards).
    static let securityHeaders: [(HTTPField.Name, String)] = [
        (HTTPField.Name("Content-Security-Policy")!,
         "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
        (HTTPField.Name("X-Frame-Options")!, "DENY"),
        (HTTPField.Name("X-Content-Type-Options")!, "nosniff"),
        (HTTPField.Name("Referrer-Policy")!, "no-referrer"),
        (.cacheControl, "no-store"),
    ]

    func response(_ name: String) throws(Problem) -> Response {
        guard let directory else {
            throw Problem(404, .noConsole, "this daemon has no console installed (make install puts it in PREFIX/share/stipple/console; or set console_dir)")
        }
        guard let file = files[name] else {
            throw Problem(404, .noSuchRoute, "the console (\(directory)) has no file \(name.prefix(80))")
        }
        var headers = HTTPFields()
        headers[.contentType] = file.contentType
        for (field, value) in Self.securityHeaders { headers[field] = value }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: file.bytes)))
    }

    func register(on router: Router<APIContext>) {
        router.get("console") { _, _ in try response("index.html") }
        router.get("console/:file") { _, context in try response(try context.parameters.require("file")) }
    }
}
