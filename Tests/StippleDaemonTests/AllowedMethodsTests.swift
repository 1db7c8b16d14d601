@testable import StippleDaemon
import Testing

/// 405 with `Allow` for a path the API has under another method; 404 for a path it does not
/// have — matched as the router matches (empty segments do not count, HEAD wherever GET is).
@Suite struct AllowedMethodsTests {
    @Test("templates match one segment; a trailing or doubled slash is the same path")
    func matching() {
        #expect(Routes.allowedMethods(for: "/v1/status") == ["GET", "HEAD"])
        #expect(Routes.allowedMethods(for: "/v1/status/") == ["GET", "HEAD"])
        #expect(Routes.allowedMethods(for: "//v1//status") == ["GET", "HEAD"])
        #expect(Routes.allowedMethods(for: "/v1/limits") == ["GET", "HEAD", "PUT"])
        #expect(Routes.allowedMethods(for: "/v1/sessions") == ["GET", "HEAD", "POST"])
        #expect(Routes.allowedMethods(for: "/v1/sessions/S-1") == ["GET", "HEAD"])
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
