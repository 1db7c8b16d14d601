import Foundation
import StippleAPI
import StippleRequests

/// The simulated pen as the API drives it from outside (`/v1/sim`): its pedal, its e-stop
/// button, its cartridge slot, and the faults the simulator knows. A seam, so that no library of
/// the daemon depends on the simulator: `StippleSimBackend` implements it for `--pen sim`, and
/// with any real pen there is none (the routes answer 404 `not_simulated`).
///
/// Everything here acts on the pen, never on the daemon: what the needle then does is decided by
/// the pen's rules and the daemon's, exactly as with a foot on a real pedal.
public protocol SimulatedPenControl: Sendable {
    func state() -> Components.Schemas.SimulatedPen
    func setPedal(_ pressed: Bool, actor: String)
    func setEstopButton(_ pressed: Bool, actor: String)
    /// `{"fault": NAME, ...its parameters}`, as the simulator's catalogue takes it (`stipple-sim
    /// list-faults`): a problem names the field at fault and what it allows.
    func inject(faultJSON: Data, actor: String) throws(Problem)
    func insertCartridge(_ cartridge: Components.Schemas.SimCartridge, actor: String)
    func removeCartridge(actor: String)
}
