// libFuzzer harness for the API's strict body reader (StippleRequests), built with its sources
// into one module by `make fuzz`: any body a client sends is an object or a problem (400/413),
// and every field accessor answers a value inside its range or a problem naming the field
// (400/422) — never a crash, never a value outside what the route asked for, never an accepted
// body with a key given twice.

import Foundation

enum Shade: String, CaseIterable { case crown, scar }

@_cdecl("LLVMFuzzerTestOneInput")
public func jsonBodyFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let body: JSONBody
    do { body = try JSONBody.parse(bytes) } catch {
        precondition([400, 413].contains(error.status), "parse answered \(error.status)")
        return 0
    }
    // An accepted body has each key once in every object (the scan is the one every reader uses).
    precondition(DuplicateKeys.find(in: bytes) == nil, "a body with a repeated key was accepted")
    func checked<T>(_ field: String, _ read: () throws(Problem) -> T?) -> T? {
        do { return try read() } catch {
            precondition([400, 422].contains(error.status), "\(field) answered \(error.status)")
            precondition(error.errors.first?.field == field || error.code == "unknown_field", "a problem that does not name \(field)")
            return nil
        }
    }
    let names = Array(body.object.keys.prefix(8)) + ["depth_um", "rate_hz", "client_id"]
    for name in names {
        if let value = checked(name, { () throws(Problem) -> Int? in try body.integer(name, required: false, range: 0...2000) }) {
            precondition((0...2000).contains(value))
        }
        if let value = checked(name, { () throws(Problem) -> Double? in try body.number(name, required: false, range: 50...150) }) {
            precondition(value >= 50 && value <= 150)
        }
        if let value = checked(name, { () throws(Problem) -> String? in try body.string(name, required: false, maxLength: 64) }) {
            precondition(value.count <= 64)
        }
        if body.object[name] != nil, let values = checked(name, { () throws(Problem) -> [String]? in try body.strings(name) }) {
            precondition(values.count <= 16)
        }
        _ = checked(name, { () throws(Problem) -> Shade? in try body.choice(name, Shade.self, required: false) })
    }
    _ = checked("", { () throws(Problem) -> Bool? in try body.refuseUnknown(["depth_um", "rate_hz"]); return true })
    return 0
}
