"""The README's examples run as written, in order (issue 16): a new user's first session must not
end in `cartridge_mismatch` or the 5-day gap rule because an example was wrong.

Each block after a `<!-- readme-example: NAME -->` marker runs as one bash script against a
`stippled --pen sim` of its own. Only the socket's directory is changed (`/run/stipple/` is the
test's own) and `$PWD/.build/debug` is the build under test. A line that says "Ctrl-C" is run
under `timeout -s INT`, as a user ends it."""

import os
import re
import subprocess

import pytest

from conftest import API, BUILD, ROOT, Daemon

README = (ROOT / "README.md").read_text()


def examples():
    blocks = {}
    for match in re.finditer(r"<!-- readme-example: (\S+)[^>]*-->\s*```sh\n(.*?)```", README, re.S):
        blocks[match.group(1)] = match.group(2)
    return blocks


def script(block, workdir):
    text = block.replace("/run/stipple/", workdir + "/").replace("$PWD/.build/debug", str(BUILD))
    lines = re.sub(r"\\\n\s*", " ", text).splitlines()  # continuation lines joined
    out = ["set -u", "fail() { echo \"README example failed (exit $2): $1\" >&2; exit 1; }",
           # A refusal (409, 422) must fail the example, as a user reading the answer would see it.
           "curl() { command curl --fail-with-body \"$@\"; }"]
    for line in lines:
        command = line.split("  #")[0].strip()
        if not command:
            continue
        quoted = command.replace("'", "'\"'\"'")
        if "Ctrl-C" in line:
            # Ended by the user: stipplectl exits 0 after disarming; curl dies of the SIGINT (130).
            out.append(f"timeout --preserve-status -s INT 3 {command}; rc=$?; "
                       f"[ $rc -eq 0 ] || [ $rc -eq 130 ] || fail '{quoted}' $rc")
        else:
            out.append(f"{command} || fail '{quoted}' $?")
            if command.startswith("ID="):
                out.append('case "$ID" in S-*) ;; *) fail "the session id from the opening is $ID" 1 ;; esac')
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("name", ["curl", "stipplectl"])
def test_readme_example_runs_as_written(workdir, name):
    blocks = examples()
    assert name in blocks, f"README has no example block {name}: {sorted(blocks)}"
    daemon = Daemon(workdir, "sim")
    try:
        api = API(daemon.socket)
        api.wait(lambda s: s["pen"].get("serial"), what="the simulated pen")
        env = {**os.environ, "STIPPLE_SOCKET": daemon.socket}
        run = subprocess.run(["bash", "-c", script(blocks[name], workdir)], cwd=workdir, env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, f"{run.stderr[-3000:]}\n--- stdout ---\n{run.stdout[-3000:]}"
        assert "cartridge_mismatch" not in run.stdout + run.stderr
        # What the example did is in the records: a session, closed.
        sessions = api.get("/v1/sessions").json
        assert sessions and sessions[0].get("closed_at"), sessions
        if name == "stipplectl":
            assert os.path.exists(os.path.join(workdir, "audit.jsonl"))
            assert any(f.startswith("stipple-report-") and f.endswith(".html") for f in os.listdir(workdir))
    finally:
        daemon.stop()
