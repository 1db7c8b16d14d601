#if canImport(Glibc)
import Foundation
import HTTPTypes
import OpenAPIRuntime
import StippleRequests
import StippleTransport

/// The generated `Client`'s way to the daemon: its Unix socket, through `UnixHTTPClient`.
/// Foundation's URLSession cannot reach a Unix socket on Linux, and the daemon keeps no TCP
/// listener, so this is the only transport the API has.
///
/// The socket I/O is blocking (poll with a timeout): each request runs on a thread of its own
/// rather than on the cooperative pool, so a slow daemon never starves the caller's tasks.
public struct UnixSocketTransport: ClientTransport {
    public var http: UnixHTTPClient

    public init(http: UnixHTTPClient) { self.http = http }

    /// The largest answer read whole (an audit listing of 10,000 entries fits).
    public static let maximumAnswerBytes = 32 * 1024 * 1024

    public func send(_ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String) async throws -> (HTTPResponse, HTTPBody?) {
        let bytes: Data? = if let body { Data(try await [UInt8](collecting: body, upTo: JSONBody.maximumBytes)) } else { nil }
        let headers = Dictionary(request.headerFields.map { ($0.name.rawName, $0.value) }, uniquingKeysWith: { first, _ in first })
        let path = request.path ?? "/"
        let http = http
        let method = request.method.rawValue
        let answer = try await Self.onThread { () throws(SystemCallError) -> HTTPAnswer in
            try http.send(method, path, body: bytes, headers: headers)
        }
        guard answer.body.count <= Self.maximumAnswerBytes else {
            throw SystemCallError("read (an answer over \(Self.maximumAnswerBytes) bytes)", errno: EPROTO)
        }
        var fields = HTTPFields()
        for (name, value) in answer.headers {
            if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
        }
        let response = HTTPResponse(status: .init(code: answer.status), headerFields: fields)
        return (response, answer.body.isEmpty ? nil : HTTPBody([UInt8](answer.body)))
    }

    private static func onThread<T: Sendable>(_ work: @escaping @Sendable () throws(SystemCallError) -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                do throws(SystemCallError) {
                    continuation.resume(returning: try work())
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            thread.name = "stipple-client"
            thread.start()
        }
    }
}

/// Holds every JSON answer to the project's strict reading before the generated code decodes
/// it: Foundation's decoder keeps one of a key given twice silently, and a status whose
/// `may_move` appears twice is a parser differential between this client and a test's. Numbers
/// as strings and wrong types the generated `Decodable`s already refuse.
public struct StrictAnswerMiddleware: ClientMiddleware {
    public init() {}

    public func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        let (response, body) = try await next(request, body, baseURL)
        guard let body, response.headerFields[.contentType].map(Self.isJSON) == true else { return (response, body) }
        let bytes = try await [UInt8](collecting: body, upTo: UnixSocketTransport.maximumAnswerBytes)
        if let finding = DuplicateKeys.find(in: bytes) { throw StrictAnswerError(operationID: operationID, finding: finding) }
        return (response, HTTPBody(bytes))
    }

    /// `application/json` and `application/problem+json`: what the daemon answers JSON as.
    public static func isJSON(_ contentType: String) -> Bool {
        let media = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return media == "application/json" || media == "application/problem+json"
    }
}

/// An answer the strict reader refused.
public struct StrictAnswerError: Error, CustomStringConvertible {
    public var operationID: String
    public var finding: DuplicateKeys.Finding

    public var description: String { "stippled's answer to \(operationID): \(finding) (a bug: please report it)" }
}

extension Client {
    /// The generated client of docs/openapi.yaml on the daemon's socket, every answer read
    /// strictly. The server URL is a placeholder: the socket is the address.
    public static func daemon(socketPath: String, timeout: Duration = .seconds(30), userAgent: String = "stipplectl") -> Client {
        Client(
            serverURL: URL(string: "http://localhost")!,
            transport: UnixSocketTransport(http: UnixHTTPClient(socketPath: socketPath, timeout: timeout, userAgent: userAgent)),
            middlewares: [StrictAnswerMiddleware()]
        )
    }
}
#endif
