"""``mmfast run``'s simulator as processes see it: by default a child process (``[run] sim =
"process"``) that exists while the bot runs, is gone once the bot has exited, dies with a
``kill -9``-ed bot, and ends the run (exit 1, named) when it exits first; and the shipped config
trading within 30 simulated seconds whether the simulator is the run's child, a thread of the
run (``[run] sim = "thread"``) or a separate ``mmfast sim``."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_guard_process import MMFAST, Sim, _get
from test_run_cli import _env, _summary_value
from test_sim_process import gone, ppid, wait_gone

from mmfast.conf import example_path

SCALE = "4"  # simulated seconds per real second: 30 simulated seconds in 7.5
FIRST_FILL_S = 30.0  # simulated seconds from the run's start


def _config(tmp: Path, *, sim: Sim | None = None, place: str | None = None) -> Path:
    """The shipped sim.toml, pointed at ``sim`` or with ``[run] sim = place``."""
    text = example_path("sim").read_text()
    if sim is not None:
        text = text.replace(
            "[venue]\n", f'[venue]\nrest_url = "{sim.rest}"\nws_url = "{sim.ws}"\n', 1
        )
    if place is not None:
        text = text.replace("[run]\n", f'[run]\nsim = "{place}"\n', 1)
    path = tmp / "bot.toml"
    path.write_text(text)
    return path


def _records(journal: Path) -> list[dict[str, Any]]:
    if not journal.exists():
        return []
    data = journal.read_bytes()
    return [orjson.loads(x) for x in data[: data.rfind(b"\n") + 1].splitlines()]


def _start(tmp: Path, *args: str) -> tuple[subprocess.Popen[str], Path]:
    journal = tmp / "j.jsonl"
    err = open(tmp / "bot.err", "w")  # noqa: SIM115 - the child's; read after it ended
    try:
        p = subprocess.Popen(
            [*MMFAST, "run", "--quiet", "--journal", str(journal), *args],
            env=_env(tmp),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    finally:
        err.close()
    return p, journal


def _wait(
    p: subprocess.Popen[str], journal: Path, what: Any, timeout_s: float = 60.0
) -> dict[str, Any]:
    """The first journal record ``what(record)`` holds for, while the bot runs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for r in _records(journal):
            if what(r):
                return r
        if p.poll() is not None:
            pytest.fail(f"the bot exited {p.returncode} first:\n{_err(journal)}")
        time.sleep(0.05)
    pytest.fail(f"no such journal record within {timeout_s} s")


def _err(journal: Path) -> str:
    return (journal.parent / "bot.err").read_text()[-4000:]


def _sim_started(r: dict[str, Any]) -> bool:
    return bool(r["kind"] == "sim_started")


def _quoting(r: dict[str, Any]) -> bool:
    return r["kind"] == "order" and r.get("status") == "OPEN"


def _reap(*pids: int | None) -> None:
    """Processes a test's bot left behind (its guard after a kill -9; anything after a
    failure): each by its own pid."""
    for pid in pids:
        if pid is not None and not gone(pid):
            os.kill(pid, signal.SIGKILL)


def _first_fill_s(recs: list[dict[str, Any]]) -> float:
    """Simulated seconds from the run's start (its clock is the simulator's) to its first
    fill."""
    start = next(r for r in recs if r["kind"] == "run_start")["ts_ms"]
    fill = next(r for r in recs if r["kind"] == "fill")["ts_ms"]
    return (fill - start) / 1000


@pytest.mark.parametrize("place", ["process", "thread", "external"])
def test_shipped_config_fills_within_30_simulated_seconds(tmp_path: Path, place: str) -> None:
    sim = Sim(tmp_path, "--time-scale", SCALE) if place == "external" else None
    cfg = _config(tmp_path, sim=sim, place=None if place in ("process", "external") else place)
    p, journal = _start(
        tmp_path, "--config", str(cfg), "--seed", "1", "--time-scale", SCALE, "--duration", "8"
    )
    child: int | None = None
    try:
        if place == "process":  # the default: no [run] sim in the config
            rec = _wait(p, journal, _sim_started)
            child = int(rec["pid"])
            # The run's child, `mmfast sim` with the run's settings, on the run's time scale.
            assert not gone(child) and ppid(child) == p.pid
            argv = Path(f"/proc/{child}/cmdline").read_bytes().decode().split("\0")
            assert argv[argv.index("-m") + 1 : argv.index("-m") + 3] == ["mmfast.cli", "sim"]
            opts = dict(itertools.pairwise(argv))
            assert (opts["--seed"], opts["--tier"], opts["--time-scale"], opts["--port"]) == (
                "1",
                "premium",
                "4.0",
                "0",
            )
            assert {"--no-speed-bumps", "--stop-on-stdin-eof"} <= set(argv)
            assert _get(f"{rec['rest_url']}/_sim/truth/time")["result"]["scale"] == 4.0
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out + _err(journal)
        recs = _records(journal)
        fills = int(_summary_value(out, "fills").split()[0])
        assert fills >= 1 and fills == sum(1 for r in recs if r["kind"] == "fill"), out
        assert _first_fill_s(recs) <= FIRST_FILL_S, _first_fill_s(recs)
        assert _summary_value(out, "shutdown") == "orders left open: 0"
        assert re.match(
            r"placed \d+  modified \d+  cancelled \d+  rejected 0 ", _summary_value(out, "orders")
        ), out
        line = _summary_value(out, "simulator")
        if place == "process":
            assert child is not None
            assert line == f"child process pid {child}  exited 0  log {journal.parent}/sim.log"
            assert gone(child)  # the bot waited for it: gone once the bot has exited
            kinds = [r["kind"] for r in recs]
            # Stopped after the cancel-all was confirmed and after the guard ended.
            assert (
                kinds.index("shutdown_confirmed")
                < kinds.index("guard_stopped")
                < kinds.index("sim_stopped")
                < kinds.index("run_stop")
            )
            assert next(r for r in recs if r["kind"] == "sim_stopped")["exit_code"] == 0
        elif place == "thread":
            assert line == "a thread of this process (its load is in the latencies above)"
            assert not any(r["kind"] == "sim_started" for r in recs)
        else:
            assert sim is not None and line == f"external {sim.rest}"
            assert _get(f"{sim.rest}/_sim/truth/open_orders?account=1001")["result"] == []
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        _reap(child)
        if sim is not None:
            sim.close()


def test_kill_9_of_the_bot_leaves_no_simulator(tmp_path: Path) -> None:
    p, journal = _start(tmp_path, "--seed", "2", "--time-scale", SCALE)
    child = guard = None
    try:
        child = int(_wait(p, journal, _sim_started)["pid"])
        guard = int(_wait(p, journal, lambda r: r["kind"] == "guard_started")["pid"])
        _wait(p, journal, _quoting)
        assert not gone(child) and ppid(child) == p.pid
        p.kill()  # SIGKILL: the bot stops nothing itself
        p.wait(10)
        took = wait_gone(child, 10.0)  # its stdin's writer is gone: it stops
        assert took < 10.0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        # The guard outlives the bot by design (its own session); here its venue went with
        # the bot, and it would try for a minute.
        _reap(child, guard)


def test_the_simulator_exiting_first_ends_the_run_with_exit_1(tmp_path: Path) -> None:
    p, journal = _start(tmp_path, "--seed", "2", "--time-scale", SCALE)
    child = None
    try:
        child = int(_wait(p, journal, _sim_started)["pid"])
        _wait(p, journal, _quoting)
        # The guard watching (its start reads the simulator's clock: a guard still starting
        # when the venue goes cannot start at all, and says so with exit 1).
        _wait(p, journal, lambda r: r["kind"] == "guard" and r["event"] == "guard_start")
        os.kill(child, signal.SIGKILL)
        t0 = time.monotonic()
        out, _ = p.communicate(timeout=60)
        took = time.monotonic() - t0
        err = _err(journal)
        assert p.returncode == 1, out + err
        assert (
            f"the simulator (pid {child}) exited by SIGKILL while the bot ran; stopping "
            f"(its log: {journal.parent}/sim.log)" in err
        )
        assert _summary_value(out, "duration").endswith("(stop: simulator exited by SIGKILL)")
        assert _summary_value(out, "simulator") == (
            f"child process pid {child}  exited by SIGKILL (while the bot ran)  log "
            f"{journal.parent}/sim.log"
        )
        assert _summary_value(out, "shutdown") == (
            "orders left open: unknown (the simulator "
            "exited while the bot ran: its orders "
            "ended with it)"
        )
        # Its guard was told nothing is left (the venue is gone) and ended with the bot.
        assert "exited 0" in _summary_value(out, "guard")
        recs = _records(journal)
        stopped = next(r for r in recs if r["kind"] == "sim_stopped")
        assert stopped["early"] is True and stopped["exit_code"] == -signal.SIGKILL
        # The cancel-all against a venue that is gone fails within its bounds.
        assert took < 30.0, took
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        _reap(child)
