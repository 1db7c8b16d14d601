"""Adversarial end-to-end tests: a hostile or careless client, a crashing GUI, a tired technician
or an unlucky power cut against the real `stippled` (and `stipple-sim serve --pty` or the
in-process simulator). Each test reproduces one finding and fails while the bug exists."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import API, BUILD, CLIENT, STIPPLED, Daemon, EventStream, UnixHTTPConnection, arm_running, motion_over_frames, open_session, system_user

SETPOINT = {"layer": "upper_dermis", "depth_um": 800, "rate_hz": 120}


def write_scenario(workdir, steps, pen=None, name="adversarial"):
    """A scenario for the in-process simulator (`--pen sim:FILE`), written into the test's workdir."""
    scenario = {"name": name, "description": "adversarial e2e", "hazards": [], "seed": 5, "duration_ms": 600000,
                "steps": steps, "expect": []}
    if pen is not None:
        scenario["pen"] = pen
    path = os.path.join(workdir, f"{name}.json")
    with open(path, "w") as f:
        json.dump(scenario, f)
    return path


def raw_request(socket_path, method, path, timeout):
    """One request on a fresh connection with a hard timeout; returns the status or the exception."""
    connection = UnixHTTPConnection(socket_path, timeout=timeout)
    try:
        connection.request(method, path)
        return connection.getresponse().status
    finally:
        connection.close()


# --- H11: a stop racing an arm leaves the pen armed -------------------------------------------


def test_h11_disarm_racing_arm_never_leaves_the_pen_armed(workdir):
    """POST /v1/disarm while POST /v1/arm waits for the pen's acknowledgements: the DISARM must
    win — the arm is answered `state_changed`, the pen ends disarmed, and the pedal moves nothing.

    The race is hit on purpose and the test proves it was: the link is slowed from outside
    (`/v1/sim/fault` latency, 150 ms each way, so ARM's answer is at least 300 ms away), the disarm
    goes out once the status shows the arm decided (`armed`) while the arm request is still
    waiting, and an attempt counts as hitting the race only when the arm is answered
    `state_changed` — an arm overtaken in flight. Every attempt must end safe; at least one must
    have hit the race. Every ordering at every step of an arm is also proved on the pure core,
    with no clock at all (`SupervisorCoreRaceTests`, Swift)."""
    daemon = Daemon(workdir, "sim")
    try:
        api = API(daemon.socket)
        api.wait(lambda s: s["pen"].get("serial"), what="the simulated pen")
        session = open_session(api)
        assert api.put(f"/v1/sessions/{session}/setpoint", SETPOINT).status == 200
        api.wait(lambda s: s["pen"].get("limits_crc"), what="the limits read back")
        slowed = api.post("/v1/sim/fault", {"fault": "latency", "ms": 150})
        assert slowed.status == 200, slowed
        stream = EventStream(daemon.socket, client=CLIENT, full=True)
        hits = 0
        for _ in range(8):
            result = {}

            def arm():
                result["arm"] = api.post("/v1/arm", headers={"X-Stipple-Client": CLIENT}, check_spec=False)

            thread = threading.Thread(target=arm)
            thread.start()
            deadline = time.monotonic() + 10
            while api.status()["phase"] != "armed" and thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.005)
            in_flight = thread.is_alive()
            disarm = api.post("/v1/disarm")
            assert disarm.status == 200 and disarm.json["phase"] == "open", disarm
            thread.join()
            answered = result["arm"]
            if in_flight and answered.status == 409 and answered.json["code"] == "state_changed":
                hits += 1
            # Whoever won, the daemon says open and the pen is not armed.
            api.wait(lambda s: s["phase"] == "open" and s["pen"].get("state") != "armed", what="disarmed, the pen too")
            if hits >= 2:
                break
        assert hits >= 1, "the disarm never overtook an arm in flight: the race was not hit"
        status = api.status()
        assert status["phase"] == "open" and not status["may_move"], status
        # The technician was told "open"; the pedal goes down. Nothing moves over the next
        # 50 telemetry frames (counted, not slept: the pen's own reports).
        assert api.post("/v1/sim/pedal", {"pressed": True}).status == 200
        seen = len(stream.of("telemetry"))
        api.wait(lambda s: len(stream.of("telemetry")) >= seen + 50, what="50 telemetry frames with the pedal down")
        moving = [t for t in stream.of("telemetry")[seen:] if t["motor_on"]]
        status = api.status()
        stream.close()
        assert not moving, f"the needle ran after an acknowledged disarm: {moving[:3]} (faults {status['faults']})"
        assert "unexpected_motion" not in status["faults"], status
    finally:
        daemon.stop()


# --- H14 / H12: connections starve the stop path --------------------------------------------------


def test_h14_non_member_connections_cannot_starve_a_technicians_estop(workdir, api, daemon):
    """A user outside the stipple groups (socket loosened to 0666, as H14 says must still be safe)
    opens 70 connections and sends nothing. The credential check runs per request, after the
    connection has taken one of the 64 slots, so the technician's POST /v1/estop is never read."""
    os.chmod(workdir, 0o755)
    os.chmod(daemon.socket, 0o666)
    if os.geteuid() == 0:
        probe = subprocess.run(["runuser", "-u", "nobody", "--", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                "--unix-socket", daemon.socket, "http://localhost/v1/status"], capture_output=True, text=True)
        assert probe.stdout == "403", f"nobody must be a non-member: {probe.stdout}"
    hog = ("import socket, sys, time\n"
           "held = []\n"
           "for _ in range(70):\n"
           "    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); held.append(s)\n"
           "print('holding', flush=True)\n"
           "time.sleep(30)\n")
    become_nobody = None
    python = sys.executable
    if os.geteuid() == 0:
        # Another user, in neither group (the system's python: nobody cannot read a pyenv under /root).
        import pwd
        nobody = pwd.getpwnam("nobody")
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

        def become_nobody():
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
    hogger = subprocess.Popen([python, "-c", hog, daemon.socket], stdout=subprocess.PIPE, text=True, preexec_fn=become_nobody)
    try:
        assert hogger.stdout.readline().strip() == "holding"
        started = time.monotonic()
        try:
            status = raw_request(daemon.socket, "POST", "/v1/estop", timeout=2.0)
        except OSError as error:
            status = error
        elapsed = time.monotonic() - started
        assert status == 200, f"the e-stop was not served within 2 s ({elapsed:.1f} s): {status!r}"
    finally:
        hogger.kill()
        hogger.wait()


def test_h12_idle_connections_cannot_block_the_api_estop(api, daemon):
    """70 connections that never send a byte (a buggy client, a leaking GUI, slowloris) hold every
    one of the 64 connection slots for the 30 s idle timeout; an e-stop from the GUI hangs."""
    held = []
    try:
        for _ in range(70):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(daemon.socket)
            held.append(s)
        started = time.monotonic()
        try:
            status = raw_request(daemon.socket, "POST", "/v1/estop", timeout=3.0)
        except OSError as error:
            status = error
        elapsed = time.monotonic() - started
        assert status == 200, f"the e-stop was not served within 3 s ({elapsed:.1f} s): {status!r}"
    finally:
        for s in held:
            s.close()


# --- Operator presence --------------------------------------------------------------------------


def _ctl_arm(daemon, client_id):
    """`stipplectl arm` as the GUI: its own process holds the stream, pings and arms."""
    return subprocess.Popen([str(BUILD / "stipplectl"), "arm", "--client-id", client_id, "--socket", daemon.socket],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_motor_stopped(pen, since, limit):
    while pen.motor_on() and time.monotonic() - since < limit:
        time.sleep(0.05)
    return not pen.motor_on()


def _kill(*processes):
    for process in processes:
        if process and process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.kill()
            process.wait()


def test_operator_presence_lease_is_not_kept_alive_by_another_process_with_the_same_client_id(api, pen, daemon):
    """Issue 15 item 1: the GUI that armed as gui-1 is SIGKILLed while another process keeps a
    stream open as gui-1 and pings as gui-1: the lease belongs to the connection and the
    credentials of the GUI that armed, so the needle stops."""
    session = open_session(api)
    assert api.put(f"/v1/sessions/{session}/setpoint", SETPOINT).status == 200
    api.wait(lambda s: s["pen"].get("limits_crc"), what="the limits read back")
    gui = _ctl_arm(daemon, "gui-1")
    other = EventStream(daemon.socket, client="gui-1")  # this process: same name, other pid, pinging
    try:
        api.wait(lambda s: s["phase"] == "armed" and s["pen"].get("state") == "armed", what="armed by the GUI (the pen too)")
        pen.command("pedal on", expect="pedal")
        api.wait(lambda s: s["phase"] == "running", what="running")
        time.sleep(0.3)
        gui.send_signal(signal.SIGKILL)
        gui.wait()
        crashed = time.monotonic()
        assert _wait_motor_stopped(pen, crashed, 3.0), f"the arming GUI crashed 3 s ago and the needle still runs: {api.status()}"
        status = api.wait(lambda s: "operator_lost" in s["faults"], timeout=5, what="operator_lost")
        assert not status["may_move"]
    finally:
        other.close()
        _kill(gui)


def test_arm_with_another_users_client_id_and_no_stream_is_refused(api, pen, daemon):
    """Issue 15 item 2: a member with no stream of its own POSTs /v1/arm with the client id of
    somebody else's open stream: refused, nothing armed."""
    session = open_session(api)
    assert api.put(f"/v1/sessions/{session}/setpoint", SETPOINT).status == 200
    api.wait(lambda s: s["pen"].get("limits_crc"), what="the limits read back")
    curl = ["curl", "-sN", "--unix-socket", daemon.socket]
    owner = subprocess.Popen(curl + ["-H", "X-Stipple-Client: gui-owner", "http://localhost/v1/events"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        refused = api.post("/v1/arm", headers={"X-Stipple-Client": "gui-owner"})
        assert refused.status == 409, refused
        codes = [f["code"] for f in refused.json["arming_failures"]]
        assert codes == ["client_not_connected"], refused.json
        assert "no event stream of its own" in refused.json["arming_failures"][0]["message"], refused.json
        assert api.status()["phase"] == "open"
    finally:
        _kill(owner)


def test_a_stopped_client_loses_the_lease(api, pen, daemon):
    """Issue 15 item 3: the GUI that armed is stopped (SIGSTOP, as Ctrl-Z): its socket stays open,
    its signs of life stop; the needle stops within the presence window."""
    session = open_session(api)
    assert api.put(f"/v1/sessions/{session}/setpoint", SETPOINT).status == 200
    api.wait(lambda s: s["pen"].get("limits_crc"), what="the limits read back")
    gui = _ctl_arm(daemon, "gui-stopped")
    try:
        api.wait(lambda s: s["phase"] == "armed" and s["pen"].get("state") == "armed", what="armed by the GUI (the pen too)")
        pen.command("pedal on", expect="pedal")
        api.wait(lambda s: s["phase"] == "running", what="running")
        gui.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        status = api.wait(lambda s: "operator_lost" in s["faults"], timeout=5, what="operator_lost after SIGSTOP")
        assert gui.poll() is None, "the client is stopped, not dead: its socket is still open"
        assert _wait_motor_stopped(pen, stopped, 3.0)
        assert not status["may_move"]
    finally:
        _kill(gui)


def test_a_hung_stream_without_pings_cannot_arm_and_loses_the_lease(api, pen, daemon):
    """Issue 15 item 3, in one process: a stream with no sign of life cannot hold a lease."""
    session = open_session(api)
    assert api.put(f"/v1/sessions/{session}/setpoint", SETPOINT).status == 200
    api.wait(lambda s: s["pen"].get("limits_crc"), what="the limits read back")
    stream = EventStream(daemon.socket, client=CLIENT)
    try:
        assert api.post("/v1/arm", headers={"X-Stipple-Client": CLIENT}).status == 200
        pen.command("pedal on", expect="pedal")
        api.wait(lambda s: s["phase"] == "running", what="running")
        stream.stop_pinging()
        api.wait(lambda s: "operator_lost" in s["faults"], timeout=5, what="operator_lost")
        assert api.post("/v1/presence", headers={"X-Stipple-Client": "never-streamed"}).status == 409
    finally:
        stream.close()


def test_made_up_ids_and_ping_bursts_never_alias_a_lease(api, pen, daemon):
    """Issue 15 item 4: many refused arms with made-up ids and bursts of presence pings; then a
    new id arms nothing on an existing lease, and the real holder's lease is untouched."""
    session = open_session(api)
    assert api.put(f"/v1/sessions/{session}/setpoint", SETPOINT).status == 200
    api.wait(lambda s: s["pen"].get("limits_crc"), what="the limits read back")
    for n in range(300):
        api.post("/v1/presence", headers={"X-Stipple-Client": f"made-up-{n}"}, check_spec=False)
        if n % 10 == 0:
            assert api.post("/v1/arm", headers={"X-Stipple-Client": f"made-up-{n}"}, check_spec=False).status == 409
    for n in range(40):
        burst = EventStream(daemon.socket, client=f"burst-{n}", ping=False)
        burst.close()
    assert api.post("/v1/arm", headers={"X-Stipple-Client": "brand-new"}).status == 409
    assert api.status()["phase"] == "open"


# --- H9: a pen without a cartridge reader -------------------------------------------------------


def test_h9_typed_cartridge_without_needle_data_is_not_assumed_conforming(workdir):
    """A pen without a cartridge reader relies on the technician's typed data. PUT cartridge
    without needle_count and needle_diameter_um makes the daemon assume 3 needles of 250 µm
    (and record those invented numbers): a 5-needle 350 µm cartridge is armed."""
    scenario = write_scenario(workdir, [], pen={
        "cartridge_reader": False,
        "cartridge": {"id": "TYPED-CART-1", "needle_count": 5, "needle_diameter_um": 350},
    })
    daemon = Daemon(workdir, f"sim:{scenario}")
    try:
        api = API(daemon.socket)
        api.wait(lambda s: s["pen"].get("serial"), what="the simulated pen")
        assert api.status()["pen"]["cartridge_reader"] is False
        session = open_session(api, cartridge="TYPED-CART-1")
        typed = api.put(f"/v1/sessions/{session}/cartridge",
                        {"cartridge_id": "TYPED-CART-1", "lot": "L1", "expiry_day": 30000}, check_spec=False)
        assert api.put(f"/v1/sessions/{session}/setpoint", SETPOINT).status == 200
        stream = EventStream(daemon.socket, client=CLIENT)
        api.wait(lambda s: s["pen"].get("limits_crc"), what="the limits read back")
        armed = api.post("/v1/arm", headers={"X-Stipple-Client": CLIENT}, check_spec=False)
        stream.close()
        recorded = (typed.json or {}).get("pen", {}).get("cartridge")
        assert armed.status != 200, (
            f"armed a cartridge whose needle count and diameter nobody gave; the daemon recorded {recorded}")
    finally:
        daemon.stop()


# --- H4 / H9: the records as the source of truth --------------------------------------------------


def test_h4_h9_a_second_daemon_on_the_same_state_dir_cannot_bypass_the_gap_rule(workdir):
    """Two `stippled` on one state directory (a developer's `make run` beside the service, a copied
    unit file) each keep their own in-memory history: the same client gets two sessions at once,
    and the same cartridge id can be opened twice. Nothing locks the records."""
    first = Daemon(workdir, "sim")
    second_dir = os.path.join(workdir, "second")
    os.makedirs(second_dir)
    os.symlink(first.state, os.path.join(second_dir, "state"))
    second = None
    try:
        try:
            second = Daemon(second_dir, "sim")
        except AssertionError:
            return  # refused to start on records another daemon holds: safe
        one, two = API(first.socket), API(second.socket)
        for api in (one, two):
            api.wait(lambda s: s["pen"].get("serial"), what="the simulated pen")
        body = {"client_id": "C-7", "zone": "crown", "cartridge_id": "SIM-CART-0001", "pigment_lots": ["P"]}
        assert one.post("/v1/sessions", body).status == 201
        again = two.post("/v1/sessions", body, check_spec=False)
        assert again.status != 201, f"client C-7 got a second concurrent session from the second daemon: {again}"
    finally:
        first.stop()
        if second:
            second.stop()


def test_h4_restart_restores_the_open_session_even_when_the_wall_clock_went_back(workdir):
    """Session A is opened while the wall clock runs ahead, then closed; the clock is corrected
    back and session B opened; SIGKILL. On restart the daemon picks the session to restore by
    `opened_at` (wall time), finds the closed A and restores nothing: B's time is dropped, B stays
    open in the records forever and its client can never open another session.
    The accelerated clock stands in for the wall clock: restarting with another factor moves
    the daemon's wall time back by about an hour."""
    daemon = Daemon(workdir, "sim", extra=["--clock", "accelerated=1000"])
    try:
        api = API(daemon.socket)
        api.wait(lambda s: s["pen"].get("serial"), what="the simulated pen")
        time.sleep(4)  # virtual wall time is now ~4000 s ahead of the real one
        a = open_session(api, client_id="C-A")
        assert api.post(f"/v1/sessions/{a}/close").status == 200
        daemon.stop()
        daemon.extra = ["--clock", "accelerated=1"]  # the clock goes back by about an hour
        daemon.start()
        api = API(daemon.socket)
        api.wait(lambda s: s["pen"].get("serial"), what="the simulated pen")
        b = open_session(api, client_id="C-B")
        assert api.put(f"/v1/sessions/{b}/setpoint", SETPOINT).status == 200
        time.sleep(0.5)
        daemon.kill(signal.SIGKILL)
        daemon.start()
        api = API(daemon.socket)
        api.wait(lambda s: s["pen"].get("serial"), what="the simulated pen")
        status = api.status()
        restored = (status.get("session") or {}).get("id")
        assert restored == b, f"session {b} (open when the daemon died) was not restored: {status['phase']}, session {restored}"
    finally:
        daemon.stop()


class DiskFullDaemon(Daemon):
    """`stippled` whose files may not grow past `file_limit` bytes (RLIMIT_FSIZE, SIGXFSZ ignored):
    a write past it fails with EFBIG, as a full disk fails with ENOSPC."""

    file_limit = None

    def preexec(self):
        limit = self.file_limit

        def limited():
            import resource
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            if limit:
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        return limited


def test_h15_a_change_whose_record_failed_is_never_acknowledged(workdir):
    """The disk fills up. Each command awaits `RecordWriter.barrier()`, a no-op write queued
    after its records: the barrier itself succeeds even when the write before it failed, so the
    API answers 200 to setpoints that were never committed (the same holds for e-stop, clear-fault,
    close, and the cartridge binding that must be durable before ARM)."""
    daemon = DiskFullDaemon(workdir, "sim")
    try:
        api = API(daemon.socket)
        api.wait(lambda s: s["pen"].get("serial"), what="the simulated pen")
        session = open_session(api)
        daemon.stop()
        database = os.path.join(daemon.state, "stipple.db")
        daemon.file_limit = max(os.path.getsize(database), 32 * 1024) + 48 * 1024  # room for a few commits
        daemon.start()
        api = API(daemon.socket)
        api.wait(lambda s: s["pen"].get("serial"), what="the simulated pen")
        assert api.status()["session"]["id"] == session
        acknowledged = []
        failed_after = None
        for depth in range(400, 1000, 5):
            response = api.put(f"/v1/sessions/{session}/setpoint", {"layer": "upper_dermis", "depth_um": depth, "rate_hz": 120}, check_spec=False)
            if response.status == 200:
                acknowledged.append(depth)
            if failed_after is not None:
                break  # one more command after the records reported the first failed write
            if api.status()["records"] != "ok":
                failed_after = depth
        assert failed_after is not None, "the file limit never made a write fail"
        report = api.get(f"/v1/sessions/{session}/report", check_spec=False).json
        recorded = {s["depth_um"] for s in report["setpoints"]}
        lost = [depth for depth in acknowledged if depth not in recorded]
        assert not lost, f"answered 200 but never committed: setpoints {lost} (records: {api.status()['records'][:160]})"
    finally:
        daemon.stop()


def test_h15_a_truncated_database_is_not_silently_recreated(workdir):
    """The records file is cut to 0 bytes (a bad restore, a repair tool, `> stipple.db`). SQLite
    treats an empty file as a new database, so the daemon migrates it and reports the records
    `ok`: the clients' history is gone and the gap rule (and the cartridge ledger) with it."""
    daemon = Daemon(workdir, "sim")
    try:
        api = API(daemon.socket)
        api.wait(lambda s: s["pen"].get("serial"), what="the simulated pen")
        session = open_session(api, client_id="C-1")
        assert api.post(f"/v1/sessions/{session}/close").status == 200
        refused = api.post("/v1/sessions", {"client_id": "C-1", "zone": "crown", "cartridge_id": "CART-2", "pigment_lots": ["P"]}, check_spec=False)
        assert refused.status == 409 and refused.json["code"] == "session_gap", refused
        daemon.stop()
        database = os.path.join(daemon.state, "stipple.db")
        for suffix in ("-wal", "-shm"):
            if os.path.exists(database + suffix):
                os.unlink(database + suffix)
        open(database, "wb").close()
        daemon.start()
        api = API(daemon.socket)
        api.wait(lambda s: s["pen"].get("serial"), what="the simulated pen")
        again = api.post("/v1/sessions", {"client_id": "C-1", "zone": "crown", "cartridge_id": "CART-2", "pigment_lots": ["P"]}, check_spec=False)
        assert again.status != 201, f"an emptied records file was taken as a new installation (records: {api.status()['records']})"
    finally:
        daemon.stop()


def test_h15_an_acknowledged_setpoint_survives_sigkill(workdir):
    """PUT setpoint answers 200 once setpoint_changes is committed, but the session snapshot (what
    a restart restores) is only rewritten on a phase change or every 10 s: SIGKILL within 10 s
    and the restored session has no setpoint at all."""
    daemon = Daemon(workdir, "sim")
    try:
        api = API(daemon.socket)
        api.wait(lambda s: s["pen"].get("serial"), what="the simulated pen")
        session = open_session(api)
        assert api.put(f"/v1/sessions/{session}/setpoint", SETPOINT).status == 200
        daemon.kill(signal.SIGKILL)
        daemon.start()
        api = API(daemon.socket)
        api.wait(lambda s: s["pen"].get("serial"), what="the simulated pen")
        restored = api.status()["session"]
        assert restored["id"] == session
        assert restored.get("setpoint") == SETPOINT, f"acknowledged setpoint lost by the restart: {restored.get('setpoint')}"
    finally:
        daemon.stop()


# --- H2: limits -----------------------------------------------------------------------------------


def test_h2_limits_tightened_at_run_time_do_not_loosen_when_the_daemon_restarts_mid_session(workdir):
    """An engineer tightens the crown to 800 µm; a session is opened under it. The daemon crashes
    and restarts: the same session continues under the configuration's 1200 µm, and a 1000 µm
    setpoint is accepted for it. A crash must not loosen the limits of a session in progress."""
    daemon = Daemon(workdir, "sim")
    try:
        api = API(daemon.socket)
        api.wait(lambda s: s["pen"].get("serial"), what="the simulated pen")
        assert api.put("/v1/limits", {"zone_max_um": {"crown": 800}}).status == 200
        session = open_session(api, zone="crown")
        deep = {"layer": "upper_dermis", "depth_um": 1000, "rate_hz": 120}
        assert api.put(f"/v1/sessions/{session}/setpoint", deep, check_spec=False).status == 422
        daemon.kill(signal.SIGKILL)
        daemon.start()
        api = API(daemon.socket)
        api.wait(lambda s: s["pen"].get("serial"), what="the simulated pen")
        assert api.status()["session"]["id"] == session
        after = api.put(f"/v1/sessions/{session}/setpoint", deep, check_spec=False)
        assert after.status != 200, f"after a restart the session accepts {deep['depth_um']} µm in a zone tightened to 800 µm: {after}"
    finally:
        daemon.stop()


# --- H16: clearing a fault the pen still holds ------------------------------------------------


def test_h16_clear_fault_is_not_reported_done_while_the_pen_still_overheats(api, pen, daemon):
    """Over-temperature: the pen latches its fault and keeps it (115 °C). POST /v1/clear-fault
    answers 200, the daemon shows `open` with no faults and audits `fault_cleared`, although the pen
    refused CLEAR_FAULT and still reports its fault: the daemon's own check ignores the cause."""
    arm_running(api, pen, daemon)
    pen.command("fault over_temperature dc=900", expect="injected")
    api.wait(lambda s: s["phase"] == "faulted", what="the pen fault")
    pen.command("pedal off", expect="pedal")
    cleared = api.post("/v1/clear-fault", check_spec=False)
    # Still faulted over the pen's next 10 reports (counted, not slept).
    assert motion_over_frames(daemon.socket, count=10) == []
    status = api.status()
    pen_state = pen.state()
    assert "fault over_temperature" in pen_state
    assert cleared.status == 409 and cleared.json["code"] == "fault_persists", cleared
    assert status["phase"] == "faulted", (
        f"clear-fault answered {cleared.status}, daemon shows {status['phase']} {status['faults']}, pen: {pen_state}")


# --- Configuration ------------------------------------------------------------------------------


def test_config_unusable_state_dir_and_scenario_exit_78_listing_both(workdir):
    """A state_dir that is a regular file and a scenario that is not JSON are configuration
    problems; the daemon exits 1 with a Foundation error naming one of them instead of 78
    listing field, value and allowed range for each."""
    not_a_dir = os.path.join(workdir, "not-a-dir")
    open(not_a_dir, "w").write("x")
    bad_scenario = os.path.join(workdir, "scenario.json")
    open(bad_scenario, "w").write("this is not json")
    config = os.path.join(workdir, "stippled.json")
    with open(config, "w") as f:
        json.dump({"pen": f"sim:{bad_scenario}", "state_dir": not_a_dir, "socket": os.path.join(workdir, "s.sock")}, f)
    result = subprocess.run([str(STIPPLED), "--config", config], capture_output=True, text=True, timeout=30)
    assert result.returncode == 78, (result.returncode, result.stderr[-600:])
    assert "state_dir" in result.stderr and f"pen: sim:{bad_scenario}" in result.stderr, result.stderr


# --- Issue 15 items 9, 10: a pen that does not obey; a cartridge swapped while armed -------------


def test_a_pen_that_acknowledges_stops_but_keeps_stroking_gets_estop_and_pen_unresponsive(api, pen, daemon):
    """The technician stops; the (hostile) pen acknowledges MOTOR_STOP and DISARM and keeps
    stroking. The daemon escalates to ESTOP, latches pen_unresponsive and records it."""
    session, stream = arm_running(api, pen, daemon)
    try:
        pen.command("fault ignores_stops", expect="")
        stopped = api.post("/v1/stop")
        assert stopped.status == 200, stopped
        status = api.wait(lambda s: "pen_unresponsive" in s["faults"], timeout=5, what="pen_unresponsive")
        assert not status["may_move"]
        deadline = time.monotonic() + 3
        while pen.motor_on() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pen.motor_on(), "the ESTOP the daemon sent stops even this pen"
        entries = api.get("/v1/audit?limit=10000").json
        assert any(e["kind"] == "fault" and "pen_unresponsive" in json.dumps(e["payload"]) for e in entries), entries[-5:]
    finally:
        stream.close()


def test_a_cartridge_swapped_while_running_stops_and_the_new_one_is_checked(api, pen, daemon):
    """H10: another cartridge reported while running (no removal event first) stops and latches;
    the new cartridge is then refused by the arming checks (H9) until the technician records it."""
    session, stream = arm_running(api, pen, daemon)
    try:
        pen.command("fault reused_cartridge id=SIM-CART-OTHER", expect="")
        status = api.wait(lambda s: "cartridge_changed" in s["faults"], timeout=5, what="cartridge_changed")
        assert not status["may_move"]
        deadline = time.monotonic() + 3
        while pen.motor_on() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pen.motor_on()
        pen.command("pedal off", expect="pedal")
        api.wait(lambda s: (s["pen"].get("cartridge") or {}).get("id") == "SIM-CART-OTHER", what="the new cartridge reported")
        cleared = api.post("/v1/clear-fault")
        assert cleared.status == 200, cleared
        refused = api.post("/v1/arm", headers={"X-Stipple-Client": CLIENT})
        assert refused.status == 409, refused
        codes = [f["code"] for f in refused.json["arming_failures"]]
        assert "cartridge_mismatch" in codes, refused.json
    finally:
        stream.close()


# --- Issue 15 item 11: a pen that resets mid-session ----------------------------------------------


def test_a_pen_reset_mid_session_is_noticed_the_handshake_repeated_and_a_fresh_arm_needed(api, pen, daemon):
    session, stream = arm_running(api, pen, daemon)
    try:
        before = api.get("/v1/audit?limit=10000").json
        pen.command("fault firmware_reset cause=brownout", expect="")
        status = api.wait(lambda s: "pen_reset" in s["faults"], timeout=5, what="pen_reset latched")
        assert not status["may_move"]
        # Without a daemon restart, the handshake is repeated and the limits pushed and read back.
        api.wait(lambda s: s["pen"].get("serial") == "SIM-0001" and s["pen"].get("limits_crc"), timeout=10,
                 what="the limits pushed again after the reset")
        audit = api.get("/v1/audit?limit=10000").json
        assert any(e["kind"] == "pen_reset" for e in audit[len(before):]), audit[-5:]
        report = api.get(f"/v1/sessions/{session}/report").json
        assert any(w["kind"] == "pen_reset" for w in report["warnings"]), report["warnings"]
        pen.command("pedal off", expect="pedal")
        assert api.post("/v1/clear-fault").status == 200
        assert api.status()["phase"] == "open", "a reset never leaves the session armed"
        rearmed = api.post("/v1/arm", headers={"X-Stipple-Client": CLIENT})
        assert rearmed.status == 200, rearmed
    finally:
        stream.close()


def test_a_pen_that_reboots_into_another_protocol_is_refused_naming_both_versions(api, pen, daemon):
    open_session(api)
    api.wait(lambda s: s["pen"].get("serial") == "SIM-0001", what="the pen")
    pen.command("fault version_mismatch major=2", expect="")
    pen.command("fault firmware_reset cause=software", expect="")
    armed = None
    for _ in range(100):
        problem = api.post("/v1/arm", headers={"X-Stipple-Client": "nobody-streams"}, check_spec=False)
        if problem.json and problem.json.get("code") == "protocol_incompatible":
            armed = problem
            break
        time.sleep(0.05)
    assert armed is not None, "the re-handshake never noticed the new version"
    assert "2." in armed.json["detail"] and "1." in armed.json["detail"], armed.json


# --- Issue 15 item 16: a full disk ----------------------------------------------------------------


def _fill_the_disk(daemon):
    """From now on no file of the daemon may grow (RLIMIT_FSIZE at the current sizes): every new
    commit fails as on a full disk (the WAL grows by whole frames)."""
    state = daemon.state
    sizes = [os.path.getsize(os.path.join(state, name)) for name in os.listdir(state) if name.startswith("stipple.db")]
    limit = max(sizes)
    subprocess.run(["prlimit", "--pid", str(daemon.process.pid), f"--fsize={limit}:"], check=True)  # the soft limit only


def _free_the_disk(daemon):
    subprocess.run(["prlimit", "--pid", str(daemon.process.pid), "--fsize=unlimited:"], check=True)


def test_a_full_disk_refuses_what_it_cannot_record_stops_anyway_and_recovers_without_a_restart(workdir, pen):
    daemon = DiskFullDaemon(workdir, f"serial:{pen.link}")
    try:
        api = API(daemon.socket)
        api.wait(lambda s: s["pen"].get("serial") == "SIM-0001", what="the pen handshake")
        session, stream = arm_running(api, pen, daemon)
        _fill_the_disk(daemon)
        # A setpoint the records cannot take did not happen.
        refused = api.put(f"/v1/sessions/{session}/setpoint", {"layer": "upper_dermis", "depth_um": 600, "rate_hz": 120})
        assert refused.status == 503 and refused.json["code"] == "records_unavailable", refused
        assert api.status()["session"]["setpoint"]["depth_um"] == 800, "a refused setpoint must not be live"
        # A stop always acts, and says its record could not be written.
        stopped = api.post("/v1/stop")
        assert stopped.status == 200 and stopped.json["unrecorded"]["code"] == "stopped_unrecorded", stopped
        assert not stopped.json["may_move"]
        deadline = time.monotonic() + 3
        while pen.motor_on() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pen.motor_on()
        assert api.status()["records"].startswith("unwritable"), api.status()["records"]
        pen.command("pedal off", expect="pedal")
        refused = api.post("/v1/arm", headers={"X-Stipple-Client": CLIENT})
        assert refused.status == 409 and refused.json["code"] == "records_unavailable", refused
        # Room again: what was kept is written, and arming works without a restart.
        _free_the_disk(daemon)
        api.wait(lambda s: s["records"] == "ok", timeout=10, what="the kept records written")
        kinds = [e["kind"] for e in api.get("/v1/audit?limit=10000").json]
        assert "stop" in kinds, kinds[-5:]
        rearmed = api.post("/v1/arm", headers={"X-Stipple-Client": CLIENT})
        assert rearmed.status == 200, rearmed
        assert api.post("/v1/disarm").status == 200
        stream.close()
    finally:
        daemon.stop()


def test_a_restart_on_a_full_disk_starts_faulted_and_never_armable(workdir, pen):
    daemon = DiskFullDaemon(workdir, f"serial:{pen.link}")
    api = API(daemon.socket)
    api.wait(lambda s: s["pen"].get("serial") == "SIM-0001", what="the pen handshake")
    session = open_session(api)
    assert api.put(f"/v1/sessions/{session}/setpoint", SETPOINT).status == 200
    daemon.kill()
    # No file may be written past its first page: the records open and read, and no commit lands.
    daemon.file_limit = 4096
    daemon.start()
    try:
        api = API(daemon.socket)
        status = api.wait(lambda s: s["pen"].get("serial") == "SIM-0001", what="the pen handshake")
        assert status["phase"] == "faulted" and "records_unavailable" in status["faults"], status
        assert status["records"].startswith(("unwritable", "unavailable")), status["records"]
        stream = EventStream(daemon.socket, client=CLIENT)
        refused = api.post("/v1/arm", headers={"X-Stipple-Client": CLIENT})
        assert refused.status == 409, refused
        assert api.post("/v1/clear-fault").json["code"] == "fault_persists"
        stream.close()
    finally:
        daemon.stop()


# --- Issue 15 item 8: the e-stop is always reachable ----------------------------------------------


def _stop_socket(daemon):
    return daemon.socket[:-len(".sock")] + "-stop.sock"


def _load_users(count):
    """`count` extra technicians (members of group stipple), made once."""
    return [system_user(f"stipple-load{n}", "stipple") for n in range(count)]


def test_the_stop_socket_serves_stops_to_members_only(api, pen, daemon):
    path = _stop_socket(daemon)
    assert os.path.exists(path), "stippled keeps a stop socket beside its API socket"
    session, stream = arm_running(api, pen, daemon)
    try:
        assert raw_request(path, "GET", "/v1/estop", timeout=3) == 405
        assert raw_request(path, "POST", "/v1/status", timeout=3) == 404
        connection = UnixHTTPConnection(path, timeout=3)
        connection.request("POST", "/v1/estop")
        answer = connection.getresponse()
        body = json.loads(answer.read())
        connection.close()
        assert answer.status == 200 and body["phase"] == "faulted" and "emergency_stop" in body["faults"], body
        deadline = time.monotonic() + 3
        while pen.motor_on() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pen.motor_on()
        if os.geteuid() == 0:
            os.chmod(os.path.dirname(path), 0o755)
            os.chmod(path, 0o666)  # loosened on purpose: the credential check must still refuse
            probe = subprocess.run(["runuser", "-u", "nobody", "--", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                    "--unix-socket", path, "-X", "POST", "http://localhost/v1/estop"], capture_output=True, text=True)
            assert probe.stdout == "403", probe.stdout
    finally:
        stream.close()


def test_the_estop_is_reachable_while_other_technicians_use_up_the_api_socket(workdir, api, pen, daemon):
    """Nine technicians each holding 16 event streams (more than the API's 128 connections in
    all), and 1,000 idle connections from one of them: the e-stop through the stop socket is
    still answered, and the needle stops."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as other users")
    users = _load_users(9)
    os.chmod(workdir, 0o755)
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    hog = ("import socket, sys, time\n"
           "held = []\n"
           "for n in range(int(sys.argv[2])):\n"
           "    try:\n"
           "        s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[1])\n"
           "        if sys.argv[3] == 'stream': s.sendall(b'GET /v1/events HTTP/1.1\\r\\nHost: x\\r\\nX-Stipple-Client: load-%d\\r\\n\\r\\n' % n)\n"
           "        held.append(s)\n"
           "    except OSError: pass\n"
           "print('holding', len(held), flush=True)\n"
           "time.sleep(60)\n")
    session, stream = arm_running(api, pen, daemon)
    hoggers = []
    try:
        for index, user in enumerate(users):
            def become(user=user):
                os.setgroups([user.pw_gid, __import__("grp").getgrnam("stipple").gr_gid])
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)
            hoggers.append(subprocess.Popen([python, "-c", hog, daemon.socket, "16", "stream"], stdout=subprocess.PIPE, text=True, preexec_fn=become))
        idle = subprocess.Popen([python, "-c", hog, daemon.socket, "1000", "idle"], stdout=subprocess.PIPE, text=True)
        hoggers.append(idle)
        for hogger in hoggers:
            assert hogger.stdout.readline().startswith("holding")
        started = time.monotonic()
        status = raw_request(_stop_socket(daemon), "POST", "/v1/estop", timeout=10)
        elapsed = time.monotonic() - started
        assert status == 200, f"the e-stop through the stop socket was not served ({elapsed:.1f} s): {status!r}"
        deadline = time.monotonic() + 3
        while pen.motor_on() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pen.motor_on()
    finally:
        for hogger in hoggers:
            hogger.kill()
            hogger.wait()
        stream.close()


def test_a_user_flooding_the_stop_socket_runs_into_their_own_limit(api, daemon):
    path = _stop_socket(daemon)
    held = []
    try:
        for _ in range(8):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            held.append(s)
        time.sleep(0.2)
        # The same user's ninth connection is refused at once...
        ninth = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ninth.settimeout(3)
        ninth.connect(path)
        answer = ninth.recv(200).decode(errors="replace")
        ninth.close()
        assert " 429 " in answer.split("\r\n")[0], answer
    finally:
        for s in held:
            s.close()
    # ...and once they are closed (or after the 1 s head timeout) stops are served again.
    time.sleep(0.2)
    assert raw_request(path, "POST", "/v1/stop", timeout=3) == 200
