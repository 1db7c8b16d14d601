#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser

/// An exclusive `flock` on `STATE_DIR/lock`, held for the daemon's life: a second daemon on the
/// same state directory refuses to start (exit 73) instead of keeping a history of its own.
final class StateDirectoryLock {
    private let fd: Int32

    init(directory: String) throws {
        let path = directory + "/lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            print("stippled: cannot open \(path): \(String(cString: strerror(errno)))")
            throw ExitCode(73)  // EX_CANTCREAT
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            print("stippled: another stippled already uses the state directory \(directory) (\(path) is locked); refusing to start")
            close(fd)
            throw ExitCode(73)
        }
    }

    deinit { close(fd) }
}
