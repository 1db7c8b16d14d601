"""The technician's console (issue 18) in a real browser: Debian's chromium and chromium-driver,
headless, driven by Selenium, against a real `stippled --pen sim` and a real `stipplectl
console`. The pedal and faults come through `/v1/sim`, as a test rig's would.

What is held here: the whole technician flow on the page; the lease ending (operator_lost, motor
stopped) when the tab closes, when the page freezes, when it is hidden, and when the bridge is
killed; the bridge's refusals (token, Host, Origin, another local user); a technician's console
that cannot reach the engineers' actions; screenshots of each screen at 1280x800 and 1024x600."""

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import API, BUILD, Daemon, artifacts_dir, system_user

CTL = BUILD / "stipplectl"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402


def require_browser():
    # `make deps` installs both; a machine without them must say so, not pass quietly.
    assert os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK), \
        "chromium and chromium-driver are needed (make deps installs them)"


def browser_options(width=1280, height=800, profile=None):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(argument)
    if profile:
        options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return options


def shared_ctl():
    """A copy of stipplectl other users can run (the build tree may sit in root's home)."""
    directory = tempfile.mkdtemp(prefix="stipplectl-console-")
    os.chmod(directory, 0o755)
    path = os.path.join(directory, "stipplectl")
    shutil.copy(CTL, path)
    os.chmod(path, 0o755)
    return path


class Bridge:
    """A real `stipplectl console --no-open` (as `user`, if given); its launch link from stdout."""

    def __init__(self, socket_path, user=None):
        command = [shared_ctl() if user else str(CTL), "console", "--no-open", "--socket", socket_path]
        if user:
            command = ["runuser", "-u", user, "--"] + command
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:(\d+))/console/launch\?token=([0-9a-f]+)", line)
        assert match, f"no launch link: {line!r} {self.process.stderr.read() if self.process.poll() is not None else ''}"
        self.base, self.port, self.token = match.group(1), int(match.group(2)), match.group(3)
        self.url = match.group(0)

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def raw(port, method, path, headers=None, body=None):
    """One request to the bridge with exactly these headers (http.client adds none but Host,
    which is skipped here and sent as given)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for name, value in (headers or {}).items():
        connection.putheader(name, value)
    if body is not None:
        connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), data


def cookie_from(bridge):
    status, headers, _ = raw(bridge.port, "GET", f"/console/launch?token={bridge.token}", {"Host": f"127.0.0.1:{bridge.port}"})
    assert status == 303, (status, headers)
    return headers["Set-Cookie"].split(";")[0]


@pytest.fixture
def sim_daemon(workdir):
    system_user("stipple-tech", "stipple")  # before the daemon starts: its socket's group is then stipple
    os.chmod(workdir, 0o755)
    daemon = Daemon(workdir, "sim")
    api = API(daemon.socket)
    api.wait(lambda s: s["pen"].get("serial") == "SIM-0001", what="the simulated pen")
    yield daemon, api
    daemon.stop()


@pytest.fixture
def bridge(sim_daemon):
    process = Bridge(sim_daemon[0].socket)
    yield process
    process.stop()


@pytest.fixture
def browser():
    require_browser()
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=browser_options())
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def wait(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as error:  # an element mid-redraw
            last = error
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def text(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def visible(driver, element_id):
    return driver.find_element(By.ID, element_id).is_displayed()


def open_console(driver, bridge):
    driver.get(bridge.url)
    wait(lambda: driver.current_url.endswith("/console/"), what="the launch link to land on the console")
    wait(lambda: not visible(driver, "connection") and "SIM-0001" in text(driver, "pen"), what="the console connected")


def fill(driver, form, name, value):
    field = driver.find_element(By.CSS_SELECTOR, f"#{form} [name={name}]")
    field.clear()
    field.send_keys(value)


def submit(driver, form):
    driver.find_element(By.CSS_SELECTOR, f"#{form} button[type=submit]").click()
    return wait(lambda: driver.find_element(By.CSS_SELECTOR, f"#{form} .result").text, what=f"{form}'s answer")


def show(driver, view):
    driver.find_element(By.CSS_SELECTOR, f'.tab[data-view="{view}"]').click()


def prepare_and_arm(driver, api, client="C-WEB"):
    show(driver, "session")
    # Before anything: the checklist lists every failing check at once, without arming.
    wait(lambda: "session_not_open" in text(driver, "checklist") and "setpoint_missing" in text(driver, "checklist"),
         what="the pre-arm checklist")
    fill(driver, "open-form", "client_id", client)
    # A barcode scanner types the code and Enter: that moves on, it does not submit half a form.
    fill(driver, "open-form", "cartridge_id", "SIM-CART-0001\n")
    assert api.status()["phase"] == "no_session"
    fill(driver, "open-form", "pigment_lots", "PIG-1, PIG-2")
    answer = submit(driver, "open-form")
    assert answer.startswith("✓ Session"), answer
    fill(driver, "setpoint-form", "depth_um", "800")
    fill(driver, "setpoint-form", "rate_hz", "120")
    answer = submit(driver, "setpoint-form")
    assert answer.startswith("✓ Setpoint"), answer
    api.wait(lambda s: s["pen"].get("limits_crc"), what="the limits read back")
    wait(lambda: "ready to arm" in text(driver, "checklist"), what="the checklist saying ready")
    assert api.status()["phase"] == "open"
    driver.find_element(By.ID, "arm2").click()
    api.wait(lambda s: s["phase"] == "armed", what="armed from the page")
    wait(lambda: visible(driver, "lease"), what="the lease notice")


def run_pedal(api):
    # The daemon is armed before the pen has taken its ARM; a pedal already down then makes the
    # pen refuse it, as a real pen must. Press once the pen says armed.
    api.wait(lambda s: api.get("/v1/sim", check_spec=False).json["armed"], what="the pen armed")
    assert api.post("/v1/sim/pedal", {"pressed": True}, check_spec=False).status == 200
    api.wait(lambda s: s["phase"] == "running", what="running on the pedal")
    api.wait(lambda s: api.get("/v1/sim", check_spec=False).json["motor_on"], what="the motor on")


def lease_lost(api):
    status = api.wait(lambda s: s["phase"] == "faulted" and "operator_lost" in s["faults"] and s, timeout=15,
                      what="operator_lost latched")
    api.wait(lambda s: not api.get("/v1/sim", check_spec=False).json["motor_on"], what="the motor stopped")
    return status


def test_the_whole_technician_flow_in_the_browser(sim_daemon, bridge, browser):
    daemon, api = sim_daemon
    open_console(browser, bridge)
    shots = artifacts_dir(daemon.workdir, "console-screenshots")
    prepare_and_arm(browser, api)
    checklist = text(browser, "checklist")
    assert "armed" in checklist.lower(), checklist

    run_pedal(api)
    show(browser, "run")
    # The gauge shows the telemetry's depth: the page's number against the daemon's own stream.
    def depth_shown():
        shown = text(browser, "depth")
        return shown.isdigit() and 700 <= int(shown) <= 900 and int(shown)
    wait(depth_shown, what="the gauge showing the needle's depth")
    assert "ON" in text(browser, "motor") and "down" in text(browser, "pedal")
    assert "Running" in text(browser, "phase")
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
    time.sleep(0.5)
    browser.save_screenshot(os.path.join(shots, "running-1280x800.png"))

    # A fault injected at the pen: a banner in words, and the needle stopped.
    assert api.post("/v1/sim/fault", {"fault": "over_depth", "extra_um": 500}, check_spec=False).status == 200
    wait(lambda: visible(browser, "fault") and "deeper than allowed" in text(browser, "fault"), what="the fault banner")
    api.wait(lambda s: s["phase"] == "faulted", what="faulted")
    api.wait(lambda s: not api.get("/v1/sim", check_spec=False).json["motor_on"], what="the motor stopped")
    wait(lambda: not visible(browser, "lease"), what="the lease notice gone")
    browser.save_screenshot(os.path.join(shots, "fault-1280x800.png"))
    assert api.post("/v1/sim/pedal", {"pressed": False}, check_spec=False).status == 200
    browser.find_element(By.ID, "clear-fault").click()
    api.wait(lambda s: s["phase"] == "open" and s["faults"] == [], what="the fault cleared from the page")
    wait(lambda: not visible(browser, "fault"), what="the banner gone")

    # A refused setpoint names the field, the value and the range.
    show(browser, "session")
    fill(browser, "setpoint-form", "depth_um", "2500")
    answer = submit(browser, "setpoint-form")
    assert "depth_um" in answer and "2500" in answer, answer

    browser.find_element(By.ID, "close-session").click()
    api.wait(lambda s: s["phase"] in ("no_session", "closed"), what="closed from the page")
    show(browser, "history")
    wait(lambda: "C-WEB" in text(browser, "history-rows"), what="the session in History")
    assert "Audit chain intact" in text(browser, "audit-state")
    link = browser.find_element(By.CSS_SELECTOR, "#history-rows a")
    report = browser.execute_async_script(
        "const done = arguments[arguments.length - 1]; fetch(arguments[0], {headers: {Accept: 'application/json'}}).then(r => r.json()).then(done, e => done(String(e)));",
        link.get_attribute("href"))
    assert report["session"]["client_id"] == "C-WEB", report
    # The link opens the daemon's own HTML report (stipplectl's page), its CSS allowed by hash.
    console_tab = browser.current_window_handle
    link.click()
    wait(lambda: len(browser.window_handles) == 2, what="the report's tab")
    browser.switch_to.window([h for h in browser.window_handles if h != console_tab][0])
    wait(lambda: "C-WEB" in browser.find_element(By.TAG_NAME, "body").text, what="the report page")
    assert browser.execute_script("return document.scripts.length") == 0
    # The inline stylesheet applied (a CSP refusal would leave the browser's default margins).
    assert browser.execute_script("return document.styleSheets.length") >= 1
    assert browser.execute_script("return document.styleSheets[0].cssRules.length") > 0
    browser.save_screenshot(os.path.join(shots, "report-1280x800.png"))
    csp = [e for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert not csp, csp
    browser.close()
    browser.switch_to.window(console_tab)

    # The Pen screen (root is an engineer): ping answers, the live trace starts.
    show(browser, "pen")
    browser.find_element(By.ID, "pen-ping").click()
    wait(lambda: text(browser, "pen-result").startswith("✓"), what="a ping's answer")
    browser.find_element(By.ID, "pen-trace").click()
    wait(lambda: "trace of" in text(browser, "trace"), what="the live trace")
    browser.find_element(By.ID, "pen-trace").click()

    for width, height in ((1280, 800), (1024, 600)):
        # The page's own viewport, as a kiosk window of that screen has it (a window size would
        # include the browser's frame).
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        for view in ("run", "session", "history", "pen"):
            show(browser, view)
            time.sleep(0.2)
            browser.save_screenshot(os.path.join(shots, f"{view}-{width}x{height}.png"))
    # No script error on any screen (the network's own lines are the refusals provoked above).
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE" and entry["source"] != "network"]
    assert not errors, errors


def test_closing_the_tab_while_running_ends_the_lease(sim_daemon, bridge, browser):
    daemon, api = sim_daemon
    open_console(browser, bridge)
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")
    open_console(browser, bridge)  # the cookie is the browser's: the second tab gets in too
    prepare_and_arm(browser, api, client="C-CLOSE")
    run_pedal(api)
    browser.close()
    browser.switch_to.window(first)
    lease_lost(api)
    # The other tab never held the lease and reconnecting does not give it: arming is needed.
    assert api.status()["phase"] == "faulted"


def test_a_frozen_page_ends_the_lease(sim_daemon, bridge, browser):
    daemon, api = sim_daemon
    open_console(browser, bridge)
    prepare_and_arm(browser, api, client="C-FROZEN")
    run_pedal(api)
    # Frozen as the browser freezes a page: Chromium hides it first (visibilitychange), and a
    # hidden console holding the lease ends it at once (docs/console.md); a page stuck with its
    # connection open is the test below.
    browser.execute_cdp_cmd("Page.setWebLifecycleState", {"state": "frozen"})
    lease_lost(api)
    browser.execute_cdp_cmd("Page.setWebLifecycleState", {"state": "active"})
    # Thawed, the page shows the fault; it holds no lease (it must be armed again, after a clear).
    wait(lambda: visible(browser, "fault") and "operator" in text(browser, "fault"), what="operator_lost on the page")
    assert not visible(browser, "lease")


def test_a_hung_page_whose_connection_stays_open_ends_the_lease(sim_daemon, bridge, browser):
    """The page's script is stuck (a busy loop on its main thread) while its connection stays open:
    only its missing pings tell, and the daemon's one-second deadline ends the lease."""
    daemon, api = sim_daemon
    open_console(browser, bridge)
    prepare_and_arm(browser, api, client="C-HUNG")
    run_pedal(api)
    browser.execute_script("setTimeout(() => { const end = Date.now() + 6000; while (Date.now() < end) {} }, 0); return 1")
    lease_lost(api)
    assert "no sign of life" in daemon.log_text(), daemon.log_text()[-2000:]
    # Unstuck, the page shows the fault and holds no lease.
    wait(lambda: visible(browser, "fault") and "operator" in text(browser, "fault"), what="operator_lost on the page")
    assert not visible(browser, "lease")


def test_hiding_the_page_while_armed_ends_the_lease(sim_daemon, bridge, browser):
    daemon, api = sim_daemon
    open_console(browser, bridge)
    prepare_and_arm(browser, api, client="C-HIDDEN")
    run_pedal(api)
    browser.execute_cdp_cmd("Emulation.setFocusEmulationEnabled", {"enabled": False})
    # Another tab in front hides this one (headless chromium reports it hidden).
    browser.switch_to.new_window("tab")
    browser.get("about:blank")
    lease_lost(api)


def test_killing_the_bridge_ends_the_lease(sim_daemon, bridge, browser):
    daemon, api = sim_daemon
    open_console(browser, bridge)
    prepare_and_arm(browser, api, client="C-KILL")
    run_pedal(api)
    bridge.kill()
    lease_lost(api)
    wait(lambda: visible(browser, "connection"), what="the page saying it lost the daemon")


def test_the_page_says_when_the_daemon_is_down_or_refused_to_start_and_reconnects_without_the_lease(sim_daemon, bridge, browser):
    daemon, api = sim_daemon
    open_console(browser, bridge)
    daemon.stop()
    wait(lambda: visible(browser, "connection") and "stippled" in text(browser, "connection"), what="the daemon-down notice")
    down = text(browser, "connection")
    assert "not running" in down or "starting or stopping" in down, down
    # A daemon that refuses its configuration leaves its reason beside the socket: the page shows it.
    refused = subprocess.run([str(BUILD / "stippled"), "--pen", "sim", "--socket", daemon.socket, "--state-dir", daemon.state,
                              "--clock", "accelerated=5000"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 78, refused
    wait(lambda: "refused to start" in text(browser, "connection") and "clock" in text(browser, "connection"),
         what="the refusal's reason on the page")
    daemon.start()
    wait(lambda: not visible(browser, "connection") and "SIM-0001" in text(browser, "pen"), timeout=30, what="reconnected")
    assert not os.path.exists(os.path.join(os.path.dirname(daemon.socket), "stippled.refused"))
    assert not visible(browser, "lease")


def test_the_bridge_refuses_what_is_not_the_console(sim_daemon, bridge):
    daemon, api = sim_daemon
    host = {"Host": f"127.0.0.1:{bridge.port}"}
    # No cookie, no token; a wrong token.
    status, headers, body = raw(bridge.port, "GET", "/v1/status", host)
    assert status == 403 and json.loads(body)["code"] == "bridge_cookie", body
    assert headers["X-Frame-Options"] == "DENY" and "default-src 'self'" in headers["Content-Security-Policy"]
    status, _, body = raw(bridge.port, "GET", "/console/launch?token=" + "0" * 64, host)
    assert status == 403 and json.loads(body)["code"] == "bridge_token", body
    status, _, body = raw(bridge.port, "GET", "/console/launch", host)
    assert status == 403 and json.loads(body)["code"] == "bridge_token", body

    cookie = cookie_from(bridge)
    # The token is good once: a second browser gets nothing with it.
    status, _, body = raw(bridge.port, "GET", f"/console/launch?token={bridge.token}", host)
    assert status == 403 and json.loads(body)["code"] == "bridge_token_used", body
    good = {**host, "Cookie": cookie, "X-Stipple-Console": "1"}
    status, headers, body = raw(bridge.port, "GET", "/v1/status", good)
    assert status == 200 and json.loads(body)["pen"]["serial"] == "SIM-0001"
    assert headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    status, headers, body = raw(bridge.port, "GET", "/console/", good)
    assert status == 200 and b"<!doctype html>" in body and "script-src 'self'" in headers["Content-Security-Policy"]
    # A wrong cookie.
    name = cookie.split("=")[0]
    assert name == f"stipple_console_{bridge.port}"
    status, _, body = raw(bridge.port, "GET", "/v1/status", {**host, "Cookie": f"{name}=" + "1" * 64, "X-Stipple-Console": "1"})
    assert status == 403 and json.loads(body)["code"] == "bridge_cookie"
    # A page on another port of 127.0.0.1 is same-site: the browser sends it the cookie, but its
    # requests are neither same-origin nor able to add the console's header.
    for path in ("/v1/status", "/v1//events", "/console/../v1/status"):
        status, _, body = raw(bridge.port, "GET", path, {**host, "Cookie": cookie, "Sec-Fetch-Site": "same-site"})
        assert status == 403 and json.loads(body)["code"] == "bridge_not_console", (path, body)

    # Wrong Host (DNS rebinding: a page's own name resolved to 127.0.0.1), also with the cookie.
    for wrong in ("evil.example:%d" % bridge.port, "127.0.0.1", "127.0.0.1:1", "localhost.:%d" % bridge.port):
        status, _, body = raw(bridge.port, "GET", "/v1/status", {"Host": wrong, "Cookie": cookie})
        assert status == 403 and json.loads(body)["code"] == "bridge_host", (wrong, body)
    status, _, body = raw(bridge.port, "GET", "/v1/status", {"Cookie": cookie})
    assert status == 403 and json.loads(body)["code"] == "bridge_host"

    # Foreign Origin on a change of state and on a stream; no Origin on a change of state.
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{bridge.port + 1}", f"https://127.0.0.1:{bridge.port}"):
        status, _, body = raw(bridge.port, "POST", "/v1/stop", {**good, "Origin": origin})
        assert status == 403 and json.loads(body)["code"] == "bridge_origin", (origin, body)
        status, _, body = raw(bridge.port, "GET", "/v1/events", {**good, "Origin": origin})
        assert status == 403 and json.loads(body)["code"] == "bridge_origin", (origin, body)
    status, _, body = raw(bridge.port, "POST", "/v1/stop", good)
    assert status == 403 and json.loads(body)["code"] == "bridge_origin"
    status, _, body = raw(bridge.port, "GET", "/v1/events", {**good, "X-Stipple-Client": "sneaky"})
    assert status == 403 and json.loads(body)["code"] == "bridge_origin"
    status, _, body = raw(bridge.port, "GET", "/v1/events", {**good, "X-Stipple-Client": "sneaky", "Sec-Fetch-Site": "cross-site"})
    assert status == 403 and json.loads(body)["code"] == "bridge_origin"
    status, _, body = raw(bridge.port, "POST", "/v1/stop", {**good, "Origin": bridge.base})
    assert status == 200, body

    # Another local user who finds the port — even holding the cookie — gets 403, and the
    # connection is closed.
    curl = subprocess.run(["runuser", "-u", "stipple-tech", "--", "curl", "-s", "-H", f"Cookie: {cookie}", "-H", "X-Stipple-Console: 1",
                           f"{bridge.base}/v1/status", f"{bridge.base}/v1/status"], capture_output=True, text=True, timeout=30)
    assert curl.stdout.count("bridge_other_user") == 2, curl

    # Pipelined requests on one connection are each answered, in order, each by an upstream
    # connection of its own.
    import socket as socket_module
    connection = socket_module.create_connection(("127.0.0.1", bridge.port), timeout=10)
    one = f"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:{bridge.port}\r\nCookie: {cookie}\r\nX-Stipple-Console: 1\r\n\r\n"
    two = f"GET /v1/limits HTTP/1.1\r\nHost: 127.0.0.1:{bridge.port}\r\nCookie: {cookie}\r\nX-Stipple-Console: 1\r\nConnection: close\r\n\r\n"
    connection.sendall((one + two).encode())
    received = b""
    while True:
        chunk = connection.recv(65536)
        if not chunk:
            break
        received += chunk
    connection.close()
    assert received.count(b"HTTP/1.1 200 OK") == 2 and b"site_ceiling_um" in received and b"SIM-0001" in received, received[:600]
    # Nothing of this reached the daemon as a change: it is still idle.
    assert api.status()["phase"] == "no_session"


def test_a_technicians_console_is_a_technicians(sim_daemon):
    """The bridge runs as the user who started it: the daemon reads that user's credentials, so a
    technician's console cannot reach the engineers' actions, and the page does not offer them."""
    require_browser()
    daemon, api = sim_daemon
    tech = Bridge(daemon.socket, user="stipple-tech")
    profile = tempfile.mkdtemp(prefix="stipple-tech-profile-")
    shutil.chown(profile, user="stipple-tech")
    driver_process = None
    driver = None
    try:
        # The technician's own browser: chromedriver and chromium run as stipple-tech.
        import socket as socket_module
        probe = socket_module.socket()
        probe.bind(("127.0.0.1", 0))
        driver_port = probe.getsockname()[1]
        probe.close()
        # A session of its own: the driver (runuser's child) and its browsers go with the group.
        driver_process = subprocess.Popen(["runuser", "-u", "stipple-tech", "--", CHROMEDRIVER, f"--port={driver_port}"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "HOME": profile},
                                          start_new_session=True)
        def driver_up():
            try:
                connection = http.client.HTTPConnection("127.0.0.1", driver_port, timeout=2)
                connection.request("GET", "/status")
                return connection.getresponse().status == 200
            except OSError:
                return False
        wait(driver_up, what="chromedriver as stipple-tech")
        driver = webdriver.Remote(f"http://127.0.0.1:{driver_port}", options=browser_options(profile=profile))
        open_console(driver, tech)
        time.sleep(0.5)
        assert not driver.find_element(By.CSS_SELECTOR, '.tab[data-view="pen"]').is_displayed()
        # Reaching for the engineers' actions anyway: the daemon refuses them.
        answer = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            fetch('/v1/bringup/ping', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'})
              .then(r => r.json()).then(done, e => done(String(e)));""")
        assert answer["code"] == "engineers_only", answer
        answer = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            fetch('/v1/sim/pedal', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{"pressed": true}'})
              .then(r => r.json()).then(done, e => done(String(e)));""")
        assert answer["code"] == "engineers_only", answer
        # And root's browser cannot use the technician's bridge.
        status, _, body = raw(tech.port, "GET", "/v1/status", {"Host": f"127.0.0.1:{tech.port}"})
        assert status == 403 and json.loads(body)["code"] == "bridge_other_user", body
    finally:
        if driver:
            driver.quit()
        if driver_process:
            try:
                os.killpg(driver_process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            driver_process.wait()
        tech.stop()
        shutil.rmtree(profile, ignore_errors=True)
