#if canImport(Glibc)
import CPty
import Glibc
import StippleTransport

/// A new pseudo-terminal pair: the master's descriptor and the slave's path (what a pen served on
/// a pty, or a benchmark standing in for one, hands to `stippled --pen serial:PATH`).
public enum PseudoTerminal {
    public static func open() throws(SystemCallError) -> (master: Int32, path: String) {
        var name = [CChar](repeating: 0, count: 128)
        let master = stipple_open_pty(&name, name.count)
        guard master >= 0 else { throw SystemCallError("opening a pseudo-terminal", errno: errno) }
        return (master, name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
    }
}
#endif
