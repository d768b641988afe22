"""``mmfast.sim.process.SimProcess``: ``mmfast sim`` as a child process. It starts on a free port
with the settings asked for, stops cleanly, explains a failed start with its own words, and
dies with its parent however the parent dies (``--stop-on-stdin-eof``: the parent holds the
only writer of its stdin)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_guard_process import MMFAST, _get

from mmfast.sim.process import SimProcess, SimProcessError, exit_text


def gone(pid: int) -> bool:
    """No such process, or a zombie (exited, not yet reaped by whoever adopted it)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in text


def wait_gone(pid: int, timeout_s: float) -> float:
    """Seconds until ``pid`` is gone; fails after ``timeout_s``."""
    t0 = time.monotonic()
    while not gone(pid):
        if time.monotonic() - t0 > timeout_s:
            pytest.fail(f"process {pid} still there after {timeout_s} s")
        time.sleep(0.02)
    return time.monotonic() - t0


def ppid(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(text.split("\nPPid:\t", 1)[1].split("\n", 1)[0])


def test_starts_with_its_settings_and_stops_cleanly(tmp_path: Path) -> None:
    log = tmp_path / "run" / "sim.log"
    sp = SimProcess(
        seed=3, account_index=2024, tier="plus", speed_bumps=False, time_scale=4.0, log_path=log
    )
    with sp:
        pid = sp.pid
        assert pid is not None and sp.running and ppid(pid) == os.getpid()
        assert sp.rest_url.startswith("http://127.0.0.1:") and sp.ws_url.endswith("/stream")
        assert sp.control_url == f"{sp.rest_url}/_sim"
        assert _get(f"{sp.rest_url}/_sim/truth/tier")["result"]["tier"] == "plus"
        assert _get(f"{sp.rest_url}/_sim/truth/time")["result"]["scale"] == 4.0
        acct = _get(f"{sp.rest_url}/api/v1/account?by=index&value=2024")
        assert acct["accounts"][0]["index"] == 2024
        # Its own session: a Ctrl-C to the parent's process group does not reach it.
        assert os.getsid(pid) == pid != os.getsid(0)
        # Two coexist (each on a free port).
        with SimProcess(seed=3) as other:
            assert other.rest_url != sp.rest_url
    assert sp.stopped and sp.poll() == 0 and gone(pid)
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    assert sp.describe() == f"pid {pid}  exited 0  log {log}"


def test_a_failed_start_says_why_and_leaves_nothing(tmp_path: Path) -> None:
    sp = SimProcess(host="10.1.2.3", log_path=tmp_path / "sim.log")
    with pytest.raises(SimProcessError) as e:
        sp.start()
    text = str(e.value)
    assert "exited 2 before it was ready" in text
    assert "refusing to bind '10.1.2.3': loopback only" in text  # its own stderr line
    assert sp.poll() == 2 and not sp.ready


def test_it_dies_with_its_parent_on_kill_9() -> None:
    # A parent that starts a simulator child, says its pid, then waits to be killed.
    code = (
        "from mmfast.sim.process import SimProcess\n"
        "import time\n"
        "p = SimProcess(seed=1)\n"
        "p.start()\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line.strip().isdigit(), line
        child = int(line)
        assert not gone(child) and ppid(child) == parent.pid
        parent.kill()  # SIGKILL: no handler, no stop() of its own
        parent.wait(10)
        took = wait_gone(child, 10.0)  # end of file on its stdin: it stops
        assert took < 10.0
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_stop_on_stdin_eof_needs_a_pipe(tmp_path: Path) -> None:
    regular = tmp_path / "stdin.txt"
    regular.write_text("")
    with open(regular) as f:
        p = subprocess.run(
            [*MMFAST, "sim", "--stop-on-stdin-eof"],
            stdin=f,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert p.returncode == 2
    assert "--stop-on-stdin-eof needs standard input to be a pipe" in p.stderr
    assert "rest:" not in p.stdout  # it never listened


def test_closing_its_stdin_stops_it_with_exit_0() -> None:
    p = subprocess.Popen(
        [*MMFAST, "sim", "--stop-on-stdin-eof", "--no-flow"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stdout is not None and p.stdin is not None
        assert p.stdout.readline().startswith("rest: http://127.0.0.1:")
        p.stdin.write("anything written is read and ignored\n")
        p.stdin.flush()
        time.sleep(0.2)
        assert p.poll() is None
        p.stdin.close()
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_exit_text_names_signals() -> None:
    assert exit_text(0) == "0" and exit_text(2) == "2"
    assert exit_text(-signal.SIGKILL) == "by SIGKILL"
    assert exit_text(None) == "(still running)"
