"""End-to-end fixtures: the real `stippled` and the real `stipple-sim serve --pty` as separate
processes, driven only through the daemon's API socket (and the simulated pen's stdin, which
stands for the technician's hands: pedal, e-stop button, cartridge)."""

import http.client
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import yaml
import jsonschema

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("STIPPLE_BUILD", ROOT / ".build" / "debug"))
STIPPLED = BUILD / "stippled"
SIM = BUILD / "stipple-sim"
SPEC = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
EVENT_SCHEMA = {"components": SPEC["components"], "$ref": "#/components/schemas/Event"}
# Events any stream of a test received that docs/openapi.yaml does not describe.
INVALID_EVENTS = []
# The event streams a test opened: closed and drained before its events are judged.
STREAMS = []


@pytest.fixture(autouse=True)
def events_follow_the_spec():
    """Every test fails if an event it received is not one the spec describes."""
    INVALID_EVENTS.clear()
    STREAMS.clear()
    yield
    for stream in list(STREAMS):
        stream.close()
        stream.thread.join(timeout=2)
    STREAMS.clear()
    found = list(INVALID_EVENTS)
    INVALID_EVENTS.clear()
    assert not found, f"events outside docs/openapi.yaml's Event schema: {found[:3]}"


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        self.json = json.loads(body) if body and headers.get("content-type", "").startswith("application/") else None

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


def schema_for(path, method, status):
    """The response schema docs/openapi.yaml declares, resolved against its components."""
    template = None
    for candidate in SPEC["paths"]:
        pattern = candidate.replace("{id}", "[^/]+")
        import re
        if re.fullmatch(pattern, path.split("?")[0]):
            template = candidate
            break
    assert template, f"{path} is not in docs/openapi.yaml"
    operation = SPEC["paths"][template].get(method.lower())
    assert operation, f"{method} {template} is not in docs/openapi.yaml"
    response = operation["responses"].get(str(status))
    assert response, f"{method} {template} answered {status}, which docs/openapi.yaml does not declare"
    if "$ref" in response:
        response = SPEC["components"]["responses"][response["$ref"].split("/")[-1]]
    content = response.get("content")
    if not content:
        return None
    # JSON where the spec offers it (the session report is also HTML, for browsers that ask).
    media = content.get("application/json") or next(iter(content.values()))
    return media["schema"]


PROBLEM_STATUSES = SPEC["components"]["schemas"]["ProblemCode"]["x-problem-codes"]


def validate(path, method, response):
    schema = schema_for(path, method, response.status)
    if schema is None or response.json is None:
        return
    resolver_schema = {"components": SPEC["components"], **schema}
    jsonschema.validate(response.json, resolver_schema)
    if response.status >= 400 and isinstance(response.json, dict) and "code" in response.json:
        code = response.json["code"]
        assert response.status in PROBLEM_STATUSES[code]["status"], (
            f"{method} {path}: {code} answered with {response.status}; docs/openapi.yaml lists {PROBLEM_STATUSES[code]['status']}")


class API:
    def __init__(self, socket_path, timeout=10):
        self.socket_path = socket_path
        # How long one answer may take (a clinic's open waits for its claim's answer).
        self.timeout = timeout

    def request(self, method, path, body=None, headers=None, check_spec=True):
        connection = UnixHTTPConnection(self.socket_path, timeout=self.timeout)
        data = json.dumps(body) if body is not None and not isinstance(body, (bytes, str)) else body
        all_headers = {"Content-Type": "application/json"} if data is not None else {}
        all_headers.update(headers or {})
        connection.request(method, path, body=data, headers=all_headers)
        raw = connection.getresponse()
        response = Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, raw.read().decode())
        connection.close()
        if check_spec:
            validate(path, method, response)
            if response.status >= 400:
                assert response.headers["content-type"] == "application/problem+json", response
        return response

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def status(self):
        return self.get("/v1/status").json

    def wait(self, predicate, timeout=10.0, interval=0.02, what="condition"):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.status()
            if predicate(last):
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out waiting for {what}; last status {json.dumps(last)[:800]}")

    def wait_progress(self, predicate, progress, stall=30.0, interval=0.05, what="condition"):
        """Waits for `predicate` as long as `progress(status)` (a number: simulated time, strokes)
        keeps growing: a busy machine runs an accelerated simulation slower, never wrongly. Fails
        only when nothing moved for `stall` seconds — a hang, not a slow machine."""
        last = self.status()
        mark, moved = progress(last), time.monotonic()
        while not predicate(last):
            if time.monotonic() - moved > stall:
                raise AssertionError(f"no progress towards {what} for {stall:.0f} s; last status {json.dumps(last)[:800]}")
            time.sleep(interval)
            last = self.status()
            value = progress(last)
            if value is not None and (mark is None or value > mark):
                mark, moved = value, time.monotonic()
        return last


class EventStream:
    """GET /v1/events on its own connection, read on a thread. With a client id it is that client's
    presence: this process also pings (POST /v1/presence every 250 ms) as a live GUI does, since
    the daemon does not take an open socket alone as a sign of life. `ping=False` holds the stream
    but sends no sign of life (a hung client)."""

    def __init__(self, socket_path, client=None, full=False, ping=True):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(socket_path)
        query = "?telemetry=full" if full else ""
        head = f"GET /v1/events{query} HTTP/1.1\r\nHost: localhost\r\n"
        if client:
            head += f"X-Stipple-Client: {client}\r\n"
        self.sock.sendall((head + "\r\n").encode())
        self.events = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        # The stream is registered (and its presence with it) before its first event, the
        # status, is sent: wait for that, so a request right after this never races it.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with self.lock:
                if self.events:
                    break
            time.sleep(0.005)
        self.pinging = threading.Event()
        if client and ping:
            self.pinging.set()
            self.socket_path = socket_path
            self.client = client
            threading.Thread(target=self._ping, daemon=True).start()
        STREAMS.append(self)

    def _ping(self):
        api = API(self.socket_path)
        while self.pinging.is_set():
            try:
                api.post("/v1/presence", headers={"X-Stipple-Client": self.client}, check_spec=False)
            except OSError:
                pass
            time.sleep(0.25)

    def stop_pinging(self):
        """The client hangs: its socket stays open, its signs of life stop."""
        self.pinging.clear()

    def _read(self):
        buffer = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                buffer += chunk
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    event = {}
                    for line in block.decode(errors="replace").splitlines():
                        if line.startswith("event: "):
                            event["event"] = line[7:]
                        elif line.startswith("data: "):
                            event["data"] = json.loads(line[6:])
                    if "event" in event:
                        # Every event the daemon sends is one docs/openapi.yaml describes.
                        try:
                            jsonschema.validate(event.get("data"), EVENT_SCHEMA)
                            assert event["data"]["type"] == event["event"], event
                        except Exception as error:  # a schema error too: never a silently dead reader
                            INVALID_EVENTS.append((event, f"{type(error).__name__}: {str(error)[:400]}"))
                        with self.lock:
                            self.events.append(event)
        except OSError:
            return

    def of(self, kind):
        with self.lock:
            return [e["data"] for e in self.events if e["event"] == kind]

    def close(self):
        self.pinging.clear()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class SimPen:
    """`stipple-sim serve --pty`: a simulated pen on a pseudo-terminal, in real time."""

    def __init__(self, link, serial="SIM-0001", extra=()):
        self.link = link
        self.process = subprocess.Popen(
            [str(SIM), "serve", "--pty", "--link", link, "--serial", serial, *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not os.path.islink(link) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.path.islink(link), f"stipple-sim did not come up: {self.lines}"

    def _read(self):
        for line in self.process.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def command(self, text, expect=None, timeout=5.0):
        with self.lock:
            start = len(self.lines)
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                fresh = self.lines[start:]
            for line in fresh:
                if expect is None or expect in line:
                    return line
            time.sleep(0.002)
        raise AssertionError(f"stipple-sim did not answer {text!r} with {expect!r}: {self.lines[-10:]}")

    def state(self):
        return self.command("status", expect="state ")

    def motor_on(self):
        return "motor on" in self.state()

    def stop(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
                self.process.wait(timeout=3)
            except Exception:
                self.process.kill()
                self.process.wait()


class Daemon:
    """A real `stippled` process."""

    def __init__(self, workdir, pen, extra=(), env=None):
        self.workdir = workdir
        self.socket = os.path.join(workdir, "api.sock")
        self.state = os.path.join(workdir, "state")
        self.pen = pen
        self.extra = list(extra)
        self.env = env
        self.process = None
        self.log = open(os.path.join(workdir, "stippled.log"), "a")
        self.start()

    def start(self):
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        self.process = subprocess.Popen(
            [str(STIPPLED), "--pen", self.pen, "--socket", self.socket, "--state-dir", self.state, *self.extra],
            stdout=self.log, stderr=subprocess.STDOUT, env=self.env, preexec_fn=self.preexec())
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"stippled exited with {self.process.returncode}: {self.log_text()[-2000:]}")
            if os.path.exists(self.socket):
                try:
                    API(self.socket).get("/v1/status", check_spec=False)
                    return
                except OSError:
                    pass
            time.sleep(0.02)
        raise AssertionError(f"stippled did not come up: {self.log_text()[-2000:]}")

    def preexec(self):
        """What the child runs before exec (a subclass limits its resources); nothing here."""
        return None

    def log_text(self):
        self.log.flush()
        return pathlib.Path(self.workdir, "stippled.log").read_text()

    def kill(self, sig=signal.SIGKILL):
        self.process.send_signal(sig)
        return self.process.wait(timeout=10)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class LoopbackBridge:
    """A TCP listener on 127.0.0.1 relaying each connection to the daemon's Unix socket, for
    tools that speak only TCP (Schemathesis). Test-only: the daemon itself never listens on TCP
    (H14), and the peer the daemon sees is this process — the test's own credentials."""

    def __init__(self, socket_path):
        self.socket_path = socket_path
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.socket_path)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self):
        self.listener.close()


def system_user(name, group):
    """A local user in `group` (made once, with the stipple groups), for tests that act as
    another user; skips the test when not root. Returns its passwd entry."""
    import pwd
    if os.geteuid() != 0:
        pytest.skip("needs root to act as other users")
    for each in ("stipple", "stipple-eng"):
        subprocess.run(["groupadd", "-f", each], check=True)
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-M", "-G", group, name], check=True)
        return pwd.getpwnam(name)


def artifacts_dir(workdir, name):
    path = os.path.join(os.environ.get("STIPPLE_ARTIFACTS", workdir), name)
    os.makedirs(path, exist_ok=True)
    return path


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="stipple-e2e-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def pen(workdir):
    sim = SimPen(os.path.join(workdir, "pen"))
    yield sim
    sim.stop()


@pytest.fixture
def daemon(workdir, pen):
    process = Daemon(workdir, f"serial:{pen.link}")
    yield process
    process.stop()


@pytest.fixture
def api(daemon):
    client = API(daemon.socket)
    client.wait(lambda s: s["pen"].get("serial") == "SIM-0001", what="the pen handshake")
    return client


CLIENT = "gui-e2e"


def motion_over_frames(socket_path, count=20, timeout=15.0):
    """A negative check that waits on the pen instead of the clock: the telemetry frames, at full
    rate, of the next `count` reports the pen makes (a pen reports every 100 ms at idle), and
    those of them with the motor on. "Nothing moved" then means nothing moved over `count` of the
    pen's own reports, however slowly the machine ran."""
    stream = EventStream(socket_path, full=True)
    try:
        deadline = time.monotonic() + timeout
        while len(stream.of("telemetry")) < count:
            assert time.monotonic() < deadline, f"only {len(stream.of('telemetry'))} telemetry frames in {timeout} s"
            time.sleep(0.01)
        frames = stream.of("telemetry")[:count]
        return [frame for frame in frames if frame["motor_on"]]
    finally:
        stream.close()


def wait_for(condition, timeout=5.0, what="condition"):
    """Polls `condition` until it holds: a positive check never rests on a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def open_session(api, client_id="C-100", zone="crown", cartridge="SIM-CART-0001", **extra):
    body = {"client_id": client_id, "zone": zone, "cartridge_id": cartridge, "pigment_lots": ["PIG-1"], **extra}
    response = api.post("/v1/sessions", body)
    assert response.status == 201, response
    return response.json["session"]["id"]


def arm_running(api, pen, daemon, layer="upper_dermis", depth=800, rate=120, client_id="C-100"):
    """Open, set the setpoint, arm with a presence stream, press the pedal: the needle runs."""
    session = open_session(api, client_id=client_id)
    response = api.put(f"/v1/sessions/{session}/setpoint", {"layer": layer, "depth_um": depth, "rate_hz": rate})
    assert response.status == 200, response
    stream = EventStream(daemon.socket, client=CLIENT)
    api.wait(lambda s: s["pen"].get("limits_crc"), what="the limits read back")
    response = api.post("/v1/arm", headers={"X-Stipple-Client": CLIENT})
    assert response.status == 200, response
    pen.command("pedal on", expect="pedal")
    api.wait(lambda s: s["phase"] == "running", what="running")
    return session, stream
