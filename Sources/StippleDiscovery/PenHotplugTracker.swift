/// What the daemon should do about its pen as tty devices come and go — pure: the devices
/// present and hotplug events in, decisions out, so recorded `udevadm monitor` sequences drive
/// it in tests exactly as udev drives it in the daemon.
///
/// - A pen that appears while none is attached is attached (the daemon opens it and starts a
///   handshake; a new link is never armed, H11).
/// - The attached pen's `remove` detaches it: its link is lost (the supervisor stops, latches
///   and records), and the tracker waits for a pen to come back.
/// - With a serial wanted (the configuration's, or the one the open session is bound to), only
///   that pen is attached; another pen is reported and left alone (the safety core would refuse
///   it anyway, H8).
/// - A renamed node (`move`) of the attached pen keeps its link: the open file stays valid.
/// - Events of other subsystems and other devices change nothing.
public struct PenHotplugTracker: Sendable {
    public enum Decision: Hashable, Sendable, CustomStringConvertible {
        /// Open this pen and start a link.
        case attach(PenCandidate)
        /// The attached pen went away: its link is lost.
        case detach(reason: String)
        /// The attached pen's node was renamed; its link stays.
        case renamed(PenCandidate)
        /// A device worth telling people about that is not attached (another pen, a second pen).
        case ignored(PenCandidate)

        public var description: String {
            switch self {
            case .attach(let candidate): "attach \(candidate)"
            case .detach(let reason): "detach: \(reason)"
            case .renamed(let candidate): "renamed \(candidate)"
            case .ignored(let candidate): "ignored \(candidate)"
            }
        }
    }

    public private(set) var matcher: PenMatcher
    /// The tty devices present, by devpath.
    public private(set) var present: [String: TTYDevice]
    /// The pen the daemon holds a link to.
    public private(set) var attached: PenCandidate?
    private let linkExists: @Sendable (String) -> Bool

    public init(matcher: PenMatcher, present: [TTYDevice], linkExists: @escaping @Sendable (String) -> Bool = { _ in false }) {
        self.matcher = matcher
        self.present = Dictionary(present.map { ($0.devpath, $0) }, uniquingKeysWith: { a, _ in a })
        self.linkExists = linkExists
    }

    /// Sets the serial to look for; nil: any pen.
    public mutating func want(serial: String?) {
        matcher.serial = serial
    }

    /// Every device present, judged (pens first).
    public var candidates: [PenCandidate] { matcher.candidates(Array(present.values), linkExists: linkExists) }

    /// The pen to attach now: none while one is attached.
    public func choose() -> PenCandidate? {
        attached == nil ? candidates.first(where: \.isPen) : nil
    }

    /// The daemon opened `candidate` and started its link.
    public mutating func markAttached(_ candidate: PenCandidate) {
        attached = candidate
    }

    /// The attached pen's link ended (a read failed, the pen stopped answering).
    public mutating func linkEnded() {
        attached = nil
    }

    public mutating func handle(_ event: DeviceEvent) -> [Decision] {
        guard event.subsystem == "tty" else { return [] }
        let path = event.device.devpath
        switch event.action {
        case .add, .change:
            present[path] = event.device
            let judged = matcher.judge(event.device, linkExists: linkExists)
            if let current = attached, current.device.devpath == path {
                guard judged.verdict == .notAPen else {
                    attached = judged
                    return []
                }
                attached = nil
                return [.detach(reason: "\(event.device.devnode ?? path) no longer looks like a pen (\(judged.reason))")] + attachNext()
            }
            switch judged.verdict {
            case .pen where attached == nil:
                return [.attach(judged)]
            case .pen, .otherPen:
                return event.action == .add ? [.ignored(judged)] : []
            case .notAPen:
                return []
            }
        case .remove:
            present.removeValue(forKey: path)
            guard let current = attached, current.device.devpath == path else { return [] }
            attached = nil
            return [.detach(reason: "the pen was unplugged (udev removed \(current.devnode ?? path))")] + attachNext()
        case .move:
            if let old = event.oldDevpath { present.removeValue(forKey: old) }
            present[path] = event.device
            let judged = matcher.judge(event.device, linkExists: linkExists)
            if let current = attached, current.device.devpath == event.oldDevpath || current.device.devpath == path {
                attached = judged
                return [.renamed(judged)]
            }
            return judged.isPen && attached == nil ? [.attach(judged)] : []
        case .bind, .unbind, .online, .offline:
            return []
        }
    }

    private func attachNext() -> [Decision] {
        choose().map { [.attach($0)] } ?? []
    }
}
