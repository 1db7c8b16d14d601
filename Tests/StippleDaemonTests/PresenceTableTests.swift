import StippleDaemon
import StippleSafety
import StippleSupervision
import StippleWire
import Testing

/// Issue 15, items 1–4: the lease belongs to a connection and the credentials read from it, needs
/// a sign of life, and its identities are never reused. Driven on a virtual clock, no threads.
@Suite("Operator presence (PresenceTable)")
struct PresenceTableTests {
    static let window = Duration.seconds(1)
    let gui = PresenceTable.Holder(uid: 1000, pid: 100, client: "gui-1")
    let t0 = MonotonicInstant(nanoseconds: 1_000_000_000)

    func at(_ ms: Int64) -> MonotonicInstant { t0 + .milliseconds(ms) }

    @Test("another process, or another user, with the same client id never keeps the lease alive")
    func sameNameOtherPeer() throws {
        var table = PresenceTable(window: Self.window)
        let mine = table.open(gui, at: at(0))
        table.bind(try table.candidate(for: gui, at: at(10)).get())
        let otherProcess = PresenceTable.Holder(uid: 1000, pid: 200, client: "gui-1")
        let otherUser = PresenceTable.Holder(uid: 1001, pid: 100, client: "gui-1")
        _ = table.open(otherProcess, at: at(20))
        _ = table.open(otherUser, at: at(20))
        // The GUI that armed is SIGKILLed: its stream closes; the others keep theirs open and ping.
        #expect(table.close(mine) == mine, "the lease is lost the moment its stream closes")
        #expect(table.sign(otherProcess, at: at(30)) == 1)
        #expect(table.lease == nil)
        #expect(table.expire(at: at(40)) == nil, "already lost, reported once")
    }

    @Test("arming is granted only to the peer (uid and pid) that holds a stream under that client id")
    func armOnlyForOwnStream() throws {
        var table = PresenceTable(window: Self.window)
        _ = table.open(gui, at: at(0))
        let intruder = PresenceTable.Holder(uid: 1001, pid: 300, client: "gui-1")
        #expect(table.candidate(for: intruder, at: at(10)) == .failure(.noStream(intruder)))
        let sameUserOtherProcess = PresenceTable.Holder(uid: 1000, pid: 301, client: "gui-1")
        #expect(table.candidate(for: sameUserOtherProcess, at: at(10)) == .failure(.noStream(sameUserOtherProcess)))
        // A bridge (one process) serving two tabs: each tab's arm binds to its own stream only.
        let tab1 = PresenceTable.Holder(uid: 1000, pid: 100, client: "tab-1")
        let tab2 = PresenceTable.Holder(uid: 1000, pid: 100, client: "tab-2")
        let s1 = table.open(tab1, at: at(20))
        let s2 = table.open(tab2, at: at(20))
        #expect(table.candidate(for: tab1, at: at(30)) == .success(s1))
        #expect(table.candidate(for: tab2, at: at(30)) == .success(s2))
    }

    @Test("a holder stopped with SIGSTOP (socket open, no pings) loses the lease within the window")
    func stoppedClientLosesLease() throws {
        var table = PresenceTable(window: Self.window)
        let stream = table.open(gui, at: at(0))
        table.bind(try table.candidate(for: gui, at: at(0)).get())
        for ms in stride(from: Int64(250), through: 2000, by: 250) {
            table.sign(gui, at: at(ms))
            #expect(table.expire(at: at(ms)) == nil)
        }
        // Stopped at 2.0 s: the stream stays open, the pings stop.
        #expect(table.expire(at: at(2999)) == nil)
        #expect(table.expire(at: at(3001)) == stream)
        #expect(table.lease == nil)
        // A stale holder cannot arm again either.
        #expect(table.candidate(for: gui, at: at(3100)) == .failure(.stale(gui, silentFor: .milliseconds(1100))))
    }

    @Test("stream ids are never reused: after thousands of streams and pings, a new id never inherits a lease")
    func noAliasing() throws {
        var table = PresenceTable(window: Self.window)
        let armed = table.open(gui, at: at(0))
        table.bind(try table.candidate(for: gui, at: at(0)).get())
        var seen: Set<ConnectionID> = [armed]
        for n in 0..<5000 {
            let holder = PresenceTable.Holder(uid: 2000, pid: Int32(n % 7), client: "made-up-\(n)")
            let id = table.open(holder, at: at(Int64(n % 900)))
            #expect(seen.insert(id).inserted, "id \(id) reused")
            table.sign(holder, at: at(Int64(n % 900)))
            if n % 3 == 0 { #expect(table.close(id) == nil, "closing someone else's stream never touches the lease") }
        }
        #expect(table.lease == armed)
        #expect(try table.candidate(for: PresenceTable.Holder(uid: 2000, pid: 1, client: "made-up-1"), at: at(900)).get() != armed)
    }

    @Test("a ping without a stream keeps nothing; a ping never revives a lost lease")
    func pingAlone() throws {
        var table = PresenceTable(window: Self.window)
        #expect(table.sign(gui, at: at(0)) == 0)
        let stream = table.open(gui, at: at(0))
        table.bind(stream)
        #expect(table.expire(at: at(1500)) == stream)
        table.sign(gui, at: at(1600))
        #expect(table.lease == nil)
        #expect(table.expire(at: at(1700)) == nil)
    }

    @Test("the newest of a holder's streams takes the lease; closing an older one leaves it")
    func newestStream() throws {
        var table = PresenceTable(window: Self.window)
        let old = table.open(gui, at: at(0))
        let new = table.open(gui, at: at(10))
        table.bind(try table.candidate(for: gui, at: at(20)).get())
        #expect(table.lease == new)
        #expect(table.close(old) == nil)
        #expect(table.lease == new)
        #expect(table.close(new) == new)
    }
}
