#!/usr/bin/env python3
"""The clinic's records on PostgreSQL under load (issue 20 item 7): a throw-away PostgreSQL 15
(Tests/e2e/clinic_support.py) and

1. the claim's added latency as a technician meets it: POST /v1/sessions round trips on a real
   `stippled --pen sim` with the clinic and, in the same run, on one without it (the baseline);
   p50 and p99 of each, and the p99 the claim adds (goal: at most 20 ms on loopback);
2. `stipple-clinic-bench` (Benchmarks/clinic/Sources): the daemon's own claims and shipper for N
   simulated workstations (50 by default) in one process, each over a SQLite record store of its
   own — the claim beside a bare round trip; a four-hour session's entries on every workstation
   shipped at once (rows per second); then every workstation writing an entry every 200 ms for 20 s
   (each entry's lag: its receipt in the database minus the moment it was written, p50/p99); and
   the database's size per session.

Why not 50 whole daemons: each idle `stippled --pen sim` takes about 5 % of a core for its pen
simulator (measured), so 50 of them saturate this machine's two cores and the figures would be
the pens', not the database's. Needs root (initdb runs as user postgres).

Usage: clinic_bench.py [--build .build/debug] [--workstations 50] [--claims 200]
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "Tests", "e2e"))


class Unix(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


def call(sock, method, path, body=None):
    connection = Unix(sock)
    connection.request(method, path, body=json.dumps(body) if body is not None else None,
                       headers={"Content-Type": "application/json"} if body is not None else {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Station:
    def __init__(self, stippled, root, name, clinic=None):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, mode=0o700)
        self.sock = os.path.join(self.dir, "api.sock")
        config = {}
        if clinic:
            config["clinic"] = {"connection_file": clinic, "offline": "refuse"}
        with open(os.path.join(self.dir, "stippled.json"), "w") as f:
            json.dump(config, f)
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.process = subprocess.Popen([stippled, "--pen", "sim", "--config", os.path.join(self.dir, "stippled.json"),
                                         "--socket", self.sock, "--state-dir", os.path.join(self.dir, "state")],
                                        stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = call(self.sock, "GET", "/v1/status")
                if status == 200 and json.loads(body)["pen"].get("serial"):
                    break
            except OSError:
                pass
            assert self.process.poll() is None and time.monotonic() < deadline, f"{name} did not come up"
            time.sleep(0.05)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def open_and_close(station, client, cartridge):
    body = {"client_id": client, "zone": "crown", "cartridge_id": cartridge, "pigment_lots": ["PIG-1"]}
    start = time.perf_counter()
    status, data = call(station.sock, "POST", "/v1/sessions", body)
    elapsed = time.perf_counter() - start
    assert status == 201, data
    session = json.loads(data)["session"]["id"]
    status, data = call(station.sock, "POST", f"/v1/sessions/{session}/close")
    assert status == 200, data
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=os.path.join(ROOT, ".build", "debug"))
    parser.add_argument("--workstations", type=int, default=50)
    parser.add_argument("--claims", type=int, default=200)
    args = parser.parse_args()
    os.environ["STIPPLE_BUILD"] = args.build
    from clinic_support import Postgres, connection_file

    stippled = os.path.join(args.build, "stippled")
    # Two connections per workstation at most (docs/fleet.md), and room for the owner.
    pg = Postgres(max_connections=2 * args.workstations + 20, durable=True)
    root = tempfile.mkdtemp(prefix="stipple-clinic-bench-")
    stations = []
    try:
        database = pg.new_database()
        names = [f"ws{n:02d}" for n in range(1, args.workstations + 1)]
        pg.sql("postgres", "".join(f"CREATE ROLE {n} LOGIN PASSWORD 'pw-{n}';" for n in names + ["front_desk"]))
        pg.sql(database, "".join(f"GRANT stipple_workstation TO {n};" for n in names + ["front_desk"]))

        # 1. The claim's added latency, against a baseline in the same run.
        claims = Station(stippled, root, "claims", connection_file(os.path.join(root, "claims.conf"), pg, database, "front_desk", "pw-front_desk"))
        baseline = Station(stippled, root, "baseline")
        stations += [claims, baseline]
        with_clinic, without = [], []
        for n in range(args.claims):
            with_clinic.append(open_and_close(claims, f"CL-{n}", f"K-CL-{n}"))
            without.append(open_and_close(baseline, f"BL-{n}", f"K-BL-{n}"))
        claims.stop()
        baseline.stop()
        stations.clear()
        report = {
            "open_ms_with_clinic": {"p50": percentile(with_clinic, 50) * 1e3, "p99": percentile(with_clinic, 99) * 1e3},
            "open_ms_without": {"p50": percentile(without, 50) * 1e3, "p99": percentile(without, 99) * 1e3},
        }
        report["claim_added_p99_ms"] = report["open_ms_with_clinic"]["p99"] - report["open_ms_without"]["p99"]
        report["claim_p99_ratio"] = report["open_ms_with_clinic"]["p99"] / report["open_ms_without"]["p99"]

        # 2. N workstations' claims and shipping, in one process.
        bench = subprocess.run([os.path.join(args.build, "stipple-clinic-bench"), "127.0.0.1", str(pg.port), database,
                                str(args.workstations)], capture_output=True, text=True, timeout=1800)
        sys.stderr.write(bench.stderr)  # the workload's own log (CLINIC_BENCH_LOG=info for more)
        assert bench.returncode == 0, bench.stderr
        figures = json.loads(bench.stdout)
        received = {}
        for line in pg.sql(database, "SELECT workstation, seq, extract(epoch FROM received_at) FROM stipple.audit_entries").splitlines():
            workstation, seq, at = line.split("|")
            received[(workstation, int(seq))] = float(at)
        lags = [max(0.0, received[(w, s)] - t) for w, s, t in figures.pop("written")]
        figures["lag_ms"] = {"p50": percentile(lags, 50) * 1e3, "p99": percentile(lags, 99) * 1e3, "entries": len(lags)}
        # The database's size per session: an audit entry's share of the table and its indexes
        # times a four-hour session's entries, plus a session's claims.
        per_entry, per_claim = (float(x) for x in pg.sql(database, """
            SELECT pg_total_relation_size('stipple.audit_entries')::float8 / (SELECT count(*) FROM stipple.audit_entries),
                   (pg_total_relation_size('stipple.session_claims') + pg_total_relation_size('stipple.cartridge_claims'))::float8
                   / (SELECT count(*) FROM stipple.session_claims)""").split("|"))
        figures["database_bytes_per_entry"] = per_entry
        figures["database_bytes_per_session"] = per_entry * figures["entries_per_session"] + per_claim
        report["workstations"] = figures
        print(json.dumps(report, indent=2, sort_keys=True))
    finally:
        for station in stations:
            try:
                station.stop()
            except Exception:
                station.process.kill()
        pg.destroy()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
