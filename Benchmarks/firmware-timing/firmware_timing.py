#!/usr/bin/env python3
"""Timing of the pen firmware core on its host port (a Linux process on a pty), issue 19 item 5.

Two figures, each over many trials:

- deadman: armed, the host goes silent after a frame; how long after that frame (on the port's
  CLOCK_MONOTONIC, as the port itself logs it) the core stops the motor and latches
  host_heartbeat_lost. Goal: within deadman_ms + 1 ms, p99. Also the same interval as the host
  sees it (from writing its last frame to reading the FAULT, pty latency both ways included).
- trip: running, a stroke protrudes past depth_trip_um; how far into that stroke the core cut
  the motor (from the position sample at the bottom of the stroke), against the stroke's period:
  the trip must fire within the stroke (H1).

Usage: firmware_timing.py --port-binary build/firmware-host/stipple-pen-host [--trials 1000]
"""
import argparse
import os
import select
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "Firmware-protocol", "tools"))
import protocol  # noqa: E402

TABLE = protocol.load_table()
OK = 0  # AckStatus ok
HEARTBEAT_LOST = next(k for k, v in protocol.enum_names(TABLE, "FaultCode").items() if v == "host_heartbeat_lost")
LIMITS = dict(depth_min_um=300, depth_max_um=1200, depth_trip_um=1300, rate_min_dhz=800, rate_max_dhz=1400,
              rate_stall_dhz=500, rate_runaway_dhz=1500, deadman_ms=150)


class Pen:
    def __init__(self, binary, link, realtime=False):
        self.proc = subprocess.Popen([binary, "--link", link] + (["--realtime"] if realtime else []), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        ready = self.proc.stdout.readline()
        if not ready.startswith("ready"):
            sys.exit(f"the host port did not start: {ready!r}")
        self.fd = os.open(link, os.O_RDWR | os.O_NOCTTY)
        import termios
        import tty
        tty.setraw(self.fd, termios.TCSANOW)
        self.seq = 0
        self.buffer = b""
        self.queue = []

    def send(self, name, **fields):
        self.seq = (self.seq + 1) % 256
        os.write(self.fd, protocol.wire_frame(TABLE, self.seq, name, fields))
        return time.monotonic_ns(), self.seq

    def frames(self, timeout):
        """Frames as they arrive, until `timeout` seconds pass with nothing new. Frames read but
        not yet taken stay queued for the next call."""
        deadline = time.monotonic() + timeout
        while True:
            while self.queue:
                yield self.queue.pop(0)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if not ready:
                return
            self.buffer += os.read(self.fd, 4096)
            at = time.monotonic_ns()
            *complete, self.buffer = self.buffer.split(b"\0")
            for chunk in complete:
                if chunk:
                    for kind, *rest in protocol.decode_stream(TABLE, b"\0" + chunk + b"\0"):
                        if kind == "frame":
                            self.queue.append((at, rest[1], rest[2]))

    def command(self, name, **fields):
        self.sent, seq = self.send(name, **fields)
        replies = []
        for _, got, fields_ in self.frames(1.0):
            replies.append((got, fields_))
            if got == "ack" and fields_["acked_seq"] == seq:
                # a data reply follows at once
                replies += [(g, f) for _, g, f in self.frames(0.005)]
                return fields_["status"], replies
        sys.exit(f"no ACK for {name}")

    def stdin(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def log_line(self, prefix, timeout=2.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0, deadline - time.monotonic()))
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith(prefix):
                    return line
        sys.exit(f"the port never logged {prefix!r}")

    def close(self):
        self.stdin("quit")
        self.proc.wait(timeout=5)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port-binary", required=True)
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--trip-trials", type=int, default=200)
    ap.add_argument("--realtime", action="store_true", help="run the port with SCHED_FIFO (root)")
    args = ap.parse_args()
    link = os.path.join(tempfile.mkdtemp(prefix="stipple-fw-"), "pen")
    pen = Pen(args.port_binary, link, realtime=args.realtime)
    try:
        return measure(pen, args)
    finally:
        pen.proc.kill()


def measure(pen, args):
    status, _ = pen.command("hello", proto_major=1, proto_minor=0)
    assert status == OK, status
    status, replies = pen.command("set_limits", **LIMITS)
    crc = next(f["limits_crc"] for g, f in replies if g == "limits")
    pen.command("set_setpoints", depth_um=800, rate_dhz=1200)

    port_us, host_us = [], []
    for _ in range(args.trials):
        status, _ = pen.command("arm", limits_crc=crc)
        assert status == OK, status
        sent = pen.sent  # the ARM frame is the last valid host frame
        seen = None
        for at, name, fields in pen.frames(1.0):
            if name == "fault" and fields["code"] == HEARTBEAT_LOST:
                seen = at
                break
        if seen is None:
            sys.exit("no FAULT host_heartbeat_lost")
        port_us.append(int(pen.log_line("deadman").split()[1]))
        host_us.append((seen - sent) / 1000)
        status, _ = pen.command("clear_fault")
        assert status == OK, status

    trip_fraction = []
    status, _ = pen.command("arm", limits_crc=crc)
    assert status == OK, status
    status, _ = pen.command("motor_run")
    assert status == OK, status
    for _ in range(args.trip_trials):
        pen.stdin("pedal on")
        pen.command("heartbeat")
        time.sleep(0.02)
        pen.command("heartbeat")
        pen.stdin("over-depth 600")
        line = pen.log_line("trip")
        into, period = int(line.split()[1]), int(line.split()[7])
        trip_fraction.append(into / period)
        pen.stdin("pedal off")
        pen.command("heartbeat")
        status, _ = pen.command("clear_fault")
        assert status == OK, status
        status, _ = pen.command("arm", limits_crc=crc)
        assert status == OK, status
        pen.command("motor_run")

    deadman_ms = LIMITS["deadman_ms"]
    print(f"host port {'with' if args.realtime else 'without'} SCHED_FIFO")
    print(f"deadman ({deadman_ms} ms), {len(port_us)} trials, on the port's clock: "
          f"p50 {percentile(port_us, 50) / 1000:.3f} ms, p99 {percentile(port_us, 99) / 1000:.3f} ms, "
          f"max {max(port_us) / 1000:.3f} ms (goal: p99 <= {deadman_ms + 1} ms)")
    print(f"deadman as the host sees it (pty both ways): p50 {percentile(host_us, 50) / 1000:.3f} ms, "
          f"p99 {percentile(host_us, 99) / 1000:.3f} ms")
    print(f"over-depth trip, {len(trip_fraction)} strokes: cut at {percentile(trip_fraction, 50):.2f} of the stroke (p50), "
          f"{max(trip_fraction):.2f} at most (must be < 1.00: within that stroke)")
    ok = percentile(port_us, 99) <= (deadman_ms + 1) * 1000 and max(trip_fraction) < 1.0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
