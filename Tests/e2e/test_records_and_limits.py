"""Issue 15, items 5, 6 and 15: run-time limits live in the records and never loosen across a
restart; stored limits that cannot be verified refuse the start; a state directory others can
write to is refused. Real `stippled --pen sim` processes, driven through the API socket."""

import json
import os
import sqlite3
import subprocess

from conftest import API, STIPPLED, Daemon, open_session

CROWN_1000 = {"layer": "upper_dermis", "depth_um": 1000, "rate_hz": 120}


def start(workdir, config=None):
    extra = ["--config", config] if config else []
    daemon = Daemon(workdir, "sim", extra=extra)
    api = API(daemon.socket)
    api.wait(lambda s: s["pen"].get("serial"), what="the simulated pen")
    return daemon, api


def write_config(workdir, limits):
    path = os.path.join(workdir, "stippled.json")
    with open(path, "w") as f:
        json.dump({"limits": limits}, f)
    return path


def refused_start(workdir, *extra):
    """Runs stippled expecting it to refuse to start; returns (exit status, stderr)."""
    result = subprocess.run([str(STIPPLED), "--pen", "sim", "--socket", os.path.join(workdir, "api.sock"),
                             "--state-dir", os.path.join(workdir, "state"), *extra],
                            capture_output=True, text=True, timeout=60)
    return result.returncode, result.stderr


def test_run_time_limits_survive_a_restart_with_an_edited_configuration(workdir):
    daemon, api = start(workdir)
    try:
        tightened = api.put("/v1/limits", {"zone_max_um": {"crown": 800}})
        assert tightened.status == 200, tightened
        assert tightened.json["zone_max_um"]["crown"] == 800
    finally:
        daemon.stop()
    db = os.path.join(workdir, "state", "stipple.db")
    assert not os.path.exists(os.path.join(workdir, "state", "limits.json")), "kept in the records, not a side file"
    with sqlite3.connect(db) as connection:
        kinds = [row[0] for row in connection.execute("SELECT kind FROM audit WHERE kind LIKE 'limits%'")]
    assert kinds == ["limits_changed"], kinds
    # The configuration is edited (another limit tightened, crown left at its default): the
    # run-time crown of 800 µm stays in force.
    config = write_config(workdir, {"zone_max_um": {"front_temples": 900}})
    daemon, api = start(workdir, config)
    try:
        limits = api.get("/v1/limits").json
        assert limits["zone_max_um"]["crown"] == 800 and limits["zone_max_um"]["front_temples"] == 900, limits
        session = open_session(api)
        refused = api.put(f"/v1/sessions/{session}/setpoint", CROWN_1000)
        assert refused.status == 422 and refused.json["errors"][0]["field"] == "depth_um", refused
        # Only an engineer's recorded reset loosens them, back to the configuration's.
        assert api.post(f"/v1/sessions/{session}/close").status == 200
        assert api.post("/v1/limits/reset", {}).status == 400
        reset = api.post("/v1/limits/reset", {"reason": "crown trial over"})
        assert reset.status == 200, reset
        assert reset.json["zone_max_um"]["crown"] == 1200 and reset.json["zone_max_um"]["front_temples"] == 900
        audit = api.get("/v1/audit?limit=10000").json
        assert any(e["kind"] == "limits_reset" and "crown trial over" in json.dumps(e["payload"]) for e in audit)
    finally:
        daemon.stop()
    daemon, api = start(workdir, config)
    try:
        assert api.get("/v1/limits").json["zone_max_um"]["crown"] == 1200, "the reset is recorded too"
    finally:
        daemon.stop()


def test_stored_limits_that_cannot_be_verified_refuse_the_start(workdir):
    daemon, api = start(workdir)
    try:
        assert api.put("/v1/limits", {"zone_max_um": {"crown": 800}}).status == 200
    finally:
        daemon.stop()
    db = os.path.join(workdir, "state", "stipple.db")
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE runtime_limits SET limits = substr(limits, 1, 40)")
    status, stderr = refused_start(workdir)
    assert status == 78, (status, stderr)
    assert "stipple.db" in stderr and "limits" in stderr, stderr
    with sqlite3.connect(db) as connection:
        connection.execute("DELETE FROM runtime_limits")
    status, stderr = refused_start(workdir)
    assert status == 78, (status, stderr)
    assert "missing" in stderr and "looser" in stderr, stderr


def test_an_old_limits_file_is_migrated_and_a_truncated_one_refuses_the_start(workdir):
    state = os.path.join(workdir, "state")
    os.makedirs(state, mode=0o750)
    side = os.path.join(state, "limits.json")
    with open(side, "w") as f:
        json.dump({"zone_max_um": {"crown": 800}}, f)
    daemon, api = start(workdir)
    try:
        assert api.get("/v1/limits").json["zone_max_um"]["crown"] == 800
        assert not os.path.exists(side) and os.path.exists(side + ".migrated")
        audit = api.get("/v1/audit?limit=10000").json
        assert [e["kind"] for e in audit if e["kind"].startswith("limits")] == ["limits_migrated"]
    finally:
        daemon.stop()
    daemon, api = start(workdir)
    try:
        assert api.get("/v1/limits").json["zone_max_um"]["crown"] == 800, "the migrated limits are in the records"
    finally:
        daemon.stop()
    with open(side, "w") as f:
        f.write('{"zone_max_um": {"crown": 8')
    status, stderr = refused_start(workdir)
    assert status == 78 and "limits.json" in stderr, (status, stderr)


def test_a_state_directory_others_can_write_is_refused_and_the_database_is_private(workdir):
    daemon, api = start(workdir)
    daemon.stop()
    db = os.path.join(workdir, "state", "stipple.db")
    assert os.stat(db).st_mode & 0o777 == 0o600, oct(os.stat(db).st_mode)
    os.chmod(os.path.join(workdir, "state"), 0o777)
    status, stderr = refused_start(workdir)
    assert status == 78 and "0777" in stderr and "state" in stderr, (status, stderr)


# --- Issue 15 items 12-14: records that were damaged or lost ------------------------------------

SETPOINT = {"layer": "upper_dermis", "depth_um": 800, "rate_hz": 120}


def stippled(workdir, *args):
    return subprocess.run([str(STIPPLED), *args, "--state-dir", os.path.join(workdir, "state")],
                          capture_output=True, text=True, timeout=60)


def some_records(api, client="C-REC"):
    session = open_session(api, client_id=client)
    assert api.put(f"/v1/sessions/{session}/setpoint", SETPOINT).status == 200
    assert api.post(f"/v1/sessions/{session}/close").status == 200
    return session


def test_a_database_that_lost_its_wal_is_refused_and_a_clean_shutdown_checkpoints(workdir):
    daemon, api = start(workdir)
    some_records(api)
    daemon.kill()  # SIGKILL: what was committed is still in the -wal
    state = os.path.join(workdir, "state")
    for suffix in ("-wal", "-shm"):
        if os.path.exists(os.path.join(state, "stipple.db" + suffix)):
            os.unlink(os.path.join(state, "stipple.db" + suffix))
    daemon = Daemon(workdir, "sim")
    try:
        api = API(daemon.socket)
        status = api.status()
        assert not status["records"].startswith("ok"), status["records"]
        refused = api.post("/v1/sessions", {"client_id": "C-REC", "zone": "crown", "cartridge_id": "SIM-CART-0001", "pigment_lots": ["P"]})
        assert refused.status == 503 and refused.json["code"] == "records_unavailable", refused
    finally:
        daemon.stop()

    fresh = os.path.join(workdir, "fresh")
    os.makedirs(fresh)
    daemon, api = start(fresh)
    some_records(api)
    daemon.stop()  # SIGTERM: a clean shutdown folds the WAL into stipple.db
    wal = os.path.join(fresh, "state", "stipple.db-wal")
    assert not os.path.exists(wal) or os.path.getsize(wal) == 0, os.path.getsize(wal)


def test_a_truncated_audit_tail_is_detected_and_arming_refused(workdir):
    daemon, api = start(workdir)
    some_records(api)
    some_records(api, client="C-REC-2")
    daemon.stop()
    db = os.path.join(workdir, "state", "stipple.db")
    with sqlite3.connect(db) as connection:
        last = connection.execute("SELECT MAX(seq) FROM audit").fetchone()[0]
        connection.execute("DROP TRIGGER audit_append_only_delete")
        connection.execute("DELETE FROM audit WHERE seq > ?", (last - 3,))
    verify = stippled(workdir, "verify-audit")
    assert verify.returncode == 1 and "truncated" in verify.stdout, (verify.returncode, verify.stdout)
    daemon, api = start(workdir)
    try:
        assert api.status()["records"].startswith("inconsistent"), api.status()["records"]
        assert api.get("/v1/audit/verify").json["ok"] is False
        session = open_session(api, client_id="C-OTHER", cartridge="SIM-CART-0001")
        refused = api.post("/v1/arm", headers={"X-Stipple-Client": "nobody"})
        assert refused.status == 409 and refused.json["code"] == "records_inconsistent", refused
        assert api.post(f"/v1/sessions/{session}/close").status == 200
    finally:
        daemon.stop()


def test_deleted_ledger_and_session_rows_never_give_a_fresh_start(workdir):
    daemon, api = start(workdir)
    try:
        session = open_session(api, client_id="C-LEDGER")
        assert api.put(f"/v1/sessions/{session}/setpoint", SETPOINT).status == 200
        from conftest import EventStream, CLIENT
        stream = EventStream(daemon.socket, client=CLIENT)
        api.wait(lambda s: s["pen"].get("limits_crc"), what="the limits read back")
        assert api.post("/v1/arm", headers={"X-Stipple-Client": CLIENT}).status == 200
        assert api.post("/v1/disarm").status == 200
        stream.close()
        assert api.post(f"/v1/sessions/{session}/close").status == 200
    finally:
        daemon.stop()
    db = os.path.join(workdir, "state", "stipple.db")
    with sqlite3.connect(db) as connection:
        connection.execute("DROP TRIGGER cartridge_ledger_keep")
        connection.execute("DELETE FROM cartridge_uses")
    daemon, api = start(workdir)
    try:
        status = api.status()
        assert status["records"].startswith("inconsistent") and "SIM-CART-0001" in status["records"], status["records"]
        # The chain wins: the cartridge is still used, the client still inside the gap.
        reused = api.post("/v1/sessions", {"client_id": "C-NEW", "zone": "crown", "cartridge_id": "SIM-CART-0001", "pigment_lots": ["P"]})
        assert reused.status == 409 and reused.json["code"] == "cartridge_reused", reused
        again = api.post("/v1/sessions", {"client_id": "C-LEDGER", "zone": "crown", "cartridge_id": "SIM-CART-0002", "pigment_lots": ["P"]})
        assert again.status == 409 and again.json["code"] == "session_gap", again
    finally:
        daemon.stop()


def test_backup_while_running_and_restore_give_records_the_checks_accept(workdir):
    daemon, api = start(workdir)
    try:
        some_records(api, client="C-BACKUP")
        copy = os.path.join(workdir, "backup.db")
        made = stippled(workdir, "backup", "--to", copy)
        assert made.returncode == 0, made.stdout + made.stderr
        assert os.stat(copy).st_mode & 0o777 == 0o600
        some_records(api, client="C-AFTER")  # newer than the backup
        refused = stippled(workdir, "restore", "--from", copy)
        assert refused.returncode != 0, "a restore while the daemon runs must be refused"
    finally:
        daemon.stop()
    restored = stippled(workdir, "restore", "--from", copy)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert any(name.startswith("stipple.db.before-restore-") for name in os.listdir(os.path.join(workdir, "state")))
    verify = stippled(workdir, "verify-audit")
    assert verify.returncode == 0, verify.stdout
    daemon, api = start(workdir)
    try:
        assert api.status()["records"] == "ok", api.status()["records"]
        kinds = [e["kind"] for e in api.get("/v1/audit?limit=10000").json]
        assert kinds[-1] == "records_restored", kinds[-3:]
    finally:
        daemon.stop()
