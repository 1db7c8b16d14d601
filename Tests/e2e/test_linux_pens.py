"""Issue 9 end to end: `stippled --pen auto` and `--pen gpio` as real processes.

These machines have no udevd, no USB pen and no GPIO chip, so what can run here is: the
configuration is validated whole (exit 78, field, value and allowed range), the daemon with
`--pen auto` comes up, finds no pen, says why, and serves its API; with `--pen gpio` on a chip
that does not exist it comes up without a pen and logs an error that names the chip (it keeps
retrying: a chip can appear, e.g. a USB GPIO expander). The pen-side behaviour is tested in
Swift against HardwareSim's models (Tests/StippleDaemonTests: DiscoveryServiceTests,
GPIOPenHazardTests)."""

import json
import os
import subprocess
import time

from conftest import API, STIPPLED, Daemon

GPIO_LINES = {
    "motor_enable": {"offset": 17},
    "status_led": {"offset": 18},
    "pedal": {"offset": 22, "active_low": True, "bias": "pull_up", "debounce_us": 10000},
    "estop": {"offset": 23, "active_low": True, "bias": "pull_up"},
    "tachometer": {"offset": 24},
    "over_depth": {"offset": 25},
}


def write_config(workdir, body):
    path = os.path.join(workdir, "stippled.json")
    with open(path, "w") as f:
        json.dump(body, f)
    return path


def run_config(workdir, body, *extra):
    config = write_config(workdir, body)
    return subprocess.run([str(STIPPLED), "--config", config, "--socket", os.path.join(workdir, "s.sock"),
                           "--state-dir", os.path.join(workdir, "state"), *extra],
                          capture_output=True, text=True, timeout=30)


def test_gpio_and_discovery_sections_are_validated_whole(workdir):
    lines = dict(GPIO_LINES)
    del lines["tachometer"]
    lines["estop"] = {"offset": 22}
    lines["pedal"] = {"offset": 22, "name": "PEDAL"}
    lines["over_depth"] = {"offset": 25, "debounce_us": 500000}
    lines["motor_enable"] = {"offset": 17, "active_low": "yes"}
    result = run_config(workdir, {
        "pen": "gpio",
        "gpio": {"chip": "gpiochip0", "serial": "", "lines": lines, "colour": 1},
        "discovery": {"usb": [{"vendor": "12345", "product": "0001", "interface": 300}]},
    })
    assert result.returncode == 78, result
    for needle in [
        "gpio.colour: present",
        "gpio.serial: \"\"",
        "gpio.lines.tachometer: missing",
        "gpio.lines.pedal: both offset and name",
        "gpio.lines.over_depth.debounce_us: 500000 is outside the allowed range 0...100000",
        "gpio.lines.motor_enable.active_low: yes is outside the allowed range true or false",
        "discovery.usb[0].vendor: 12345",
        "discovery.usb[0].interface: 300 is outside the allowed range 0...255",
    ]:
        assert needle in result.stderr, (needle, result.stderr)


def test_pen_gpio_without_its_lines_exits_78(workdir):
    result = subprocess.run([str(STIPPLED), "--pen", "gpio", "--socket", os.path.join(workdir, "s.sock"),
                             "--state-dir", os.path.join(workdir, "state")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 78, result
    assert "gpio: missing" in result.stderr, result.stderr
    accelerated = run_config(workdir, {"pen": "auto"}, "--clock", "accelerated=10")
    assert accelerated.returncode == 78 and "never runs on simulated time" in accelerated.stderr, accelerated


def test_pen_auto_comes_up_without_a_pen_and_waits(workdir):
    config = write_config(workdir, {"discovery": {"serial": "SP-000123"}})
    daemon = Daemon(workdir, "auto", extra=["--config", config])
    try:
        status = API(daemon.socket).get("/v1/status", check_spec=False).json
        assert status["pen"]["connected"] is False
        deadline = time.monotonic() + 5
        while "no pen plugged in" not in daemon.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "no pen plugged in; waiting for one" in daemon.log_text()
    finally:
        daemon.stop()


def test_pen_gpio_on_a_missing_chip_names_the_chip_and_keeps_the_api(workdir):
    config = write_config(workdir, {"pen": "gpio", "gpio": {"chip": "gpiochip-e2e-missing", "serial": "GP-0001", "lines": GPIO_LINES}})
    daemon = Daemon(workdir, "gpio", extra=["--config", config])
    try:
        deadline = time.monotonic() + 5
        while "gpiochip-e2e-missing" not in daemon.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        log = daemon.log_text()
        assert "cannot open GPIO chip \"gpiochip-e2e-missing\"" in log or "cannot open GPIO chip \\\"gpiochip-e2e-missing\\\"" in log, log[-2000:]
        status = API(daemon.socket).get("/v1/status", check_spec=False).json
        assert status["pen"]["connected"] is False
    finally:
        daemon.stop()
