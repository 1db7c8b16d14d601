@testable import StippleDaemon
import Testing

/// 405 with `Allow` for a path the API has under another method; 404 for a path it does not
/// have — matched as the router matches (empty segments do not count; HEAD is not answered).
@Suite struct AllowedMethodsTests {
    @Test("templates match one segment; a trailing or doubled slash is the same path")
    func matching() {
        #expect(Routes.allowedMethods(for: "/v1/status") == ["GET"])
        #expect(Routes.allowedMethods(for: "/v1/status/") == ["GET"])
        #expect(Routes.allowedMethods(for: "//v1//status") == ["GET"])
        #expect(Routes.allowedMethods(for: "/v1/limits") == ["GET", "PUT"])
        #expect(Routes.allowedMethods(for: "/v1/sessions") == ["GET", "POST"])
        #expect(Routes.allowedMethods(for: "/v1/sessions/S-1") == ["GET"])
        #expect(Routes.allowedMethods(for: "/v1/sessions/S-1/setpoint") == ["PUT"])
        #expect(Routes.allowedMethods(for: "/v1/arm") == ["POST"])
    }

    @Test("paths no route has")
    func unknown() {
        #expect(Routes.allowedMethods(for: "/v1/nothing").isEmpty)
        #expect(Routes.allowedMethods(for: "/v1/sessions/S-1/nothing").isEmpty)
        #expect(Routes.allowedMethods(for: "/v1").isEmpty)
        #expect(Routes.allowedMethods(for: "/").isEmpty)
        #expect(Routes.allowedMethods(for: "").isEmpty)
    }
}
