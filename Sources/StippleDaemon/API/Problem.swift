import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import StippleAPI
import StippleRequests
import StippleSafety
import StippleSupervision

extension Problem {
    /// The daemon names its problems by the spec's codes (`ProblemCode`, generated from
    /// docs/openapi.yaml); `ProblemCodeTests` holds the daemon's sources to never passing a code
    /// as a bare string, and each code to a status the spec lists for it.
    public init(_ status: Int, _ code: ProblemCode, _ detail: String, state: String? = nil,
         errors: [FieldError] = [], armingFailures: [CheckFailure] = []) {
        self.init(status, code.rawValue, detail, state: state, errors: errors, armingFailures: armingFailures)
    }

    init(_ error: CommandError) {
        let status = switch error.kind {
        case .badRequest: 400
        case .forbidden: 403
        case .notFound: 404
        case .conflict: 409
        case .unavailable: 503
        case .unprocessable: 422
        }
        self.init(status, error.code.rawValue, error.message, state: error.state,
                  errors: error.violations.map { FieldError(field: $0.field, value: $0.value, allowed: $0.allowed) },
                  armingFailures: error.armingFailures.map { CheckFailure(code: $0.code.rawValue, message: $0.message) })
    }

    var response: Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = (try? encoder.encode(self)) ?? Data("{}".utf8)
        var headers = HTTPFields()
        headers[.contentType] = "application/problem+json"
        return Response(status: .init(code: status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension JSONBody {
    /// `allowEmpty`: a route whose body is optional (every field has a default) takes no body
    /// as `{}`. A body that is there must say it is JSON: a form post or `text/plain` is refused
    /// (415), never guessed at.
    static func read(_ request: Request, allowEmpty: Bool = false) async throws(Problem) -> JSONBody {
        let type = request.headers[.contentType]
        if let type, !isJSON(type) {
            throw Problem(415, .unsupportedMediaType, "Content-Type: \(type.prefix(80)) is not allowed; send application/json")
        }
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: maximumBytes) } catch {
            throw Problem(413, .bodyTooLarge, "the body exceeds \(maximumBytes) bytes")
        }
        if buffer.readableBytes == 0 {
            if allowEmpty { return JSONBody(object: [:]) }
            throw Problem(400, .bodyMissing, "a JSON object is required")
        }
        if type == nil {
            throw Problem(415, .unsupportedMediaType, "a body without Content-Type; send Content-Type: application/json")
        }
        return try parse(buffer.readableBytesView)
    }
}

