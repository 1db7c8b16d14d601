import StippleConformance

extension ConformanceSuite {
    /// Against the in-process pen, on its virtual clock.
    public init(simulated pen: VirtualTimePenTransport) {
        self.init(transport: pen, clock: { pen.now }, replyTimeout: .milliseconds(200))
    }
}
