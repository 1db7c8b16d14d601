/// The problem codes of docs/openapi.yaml (`ProblemCode`), by the names the daemon and its
/// clients use. Generated: adding a code means adding it to the spec first.
public typealias ProblemCode = Components.Schemas.ProblemCode

/// The arming-check codes of docs/openapi.yaml (`ArmingCheckCode`).
public typealias ArmingCheckCode = Components.Schemas.ArmingCheckCode
