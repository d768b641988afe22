"""Process-level: the simulator, the bot and its guard as three processes. Killing the bot
(kill -9) while it quotes leaves no order on the venue: the guard sees the process gone and
cancels with its own key. Truth comes from the simulator's control endpoint."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mmfast.sim.config import DEFAULT_ACCOUNT_INDEX

MMFAST = [sys.executable, "-m", "mmfast.cli"]
ACCOUNT = DEFAULT_ACCOUNT_INDEX


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMFAST_")}
    env["XDG_STATE_HOME"] = str(tmp / "state")
    env["HOME"] = str(tmp)
    return env


class Sim:
    """``mmfast sim`` in its own process."""

    def __init__(self, tmp: Path, *extra: str) -> None:
        # The premium tier: the one the bot's sim-mode config keeps to.
        self.p = subprocess.Popen(
            [*MMFAST, "sim", "--seed", "5", "--tier", "premium", *extra],
            env=_env(tmp),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lines: dict[str, str] = {}
        assert self.p.stdout is not None
        while len(lines) < 2:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("mmfast sim did not start")
            k, _, v = line.partition(": ")
            if k in ("rest", "ws"):
                lines[k] = v.strip()
        self.rest, self.ws = lines["rest"], lines["ws"]

    def open_orders(self) -> list[dict[str, Any]]:
        r = _get(f"{self.rest}/_sim/truth/open_orders?account={ACCOUNT}")
        return list(r["result"])

    def wall_ms(self) -> int:
        return int(_get(f"{self.rest}/_sim/truth/time")["result"]["wall_ms"])

    def close(self) -> None:
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()


def _bot(sim: Sim, tmp: Path, n: int) -> tuple[subprocess.Popen[str], Path]:
    from mmfast.conf import example_path

    cfg = tmp / f"bot{n}.toml"
    text = example_path("sim").read_text()  # the shipped sim config, on the external sim
    cfg.write_text(
        text.replace("[venue]\n", f'[venue]\nrest_url = "{sim.rest}"\nws_url = "{sim.ws}"\n', 1)
    )
    journal = tmp / f"j{n}.jsonl"
    with open(tmp / f"bot{n}.err", "wb") as err:  # the bot's log, read after it ended
        p = subprocess.Popen(
            [*MMFAST, "run", "--quiet", "--config", str(cfg), "--journal", str(journal)],
            env=_env(tmp),
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
    return p, journal


def _wait_quoting(p: subprocess.Popen[str], journal: Path, sim: Sim) -> None:
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if p.poll() is not None:
            pytest.fail(f"the bot exited {p.returncode} before quoting")
        if (
            journal.exists()
            and b'"status":"OPEN"' in journal.read_bytes()
            and len(sim.open_orders()) >= 2
        ):
            return
        time.sleep(0.1)
    pytest.fail("the bot never quoted")


def _reap(p: subprocess.Popen[str]) -> None:
    """Kill a bot a failed test left running (a stopped one too: SIGKILL ends it)."""
    if p.poll() is None:
        p.kill()
        p.wait()


def _guard_records(journal: Path) -> list[dict[str, Any]]:
    path = journal.parent / "guard.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_kill_9_leaves_no_order_on_the_venue(tmp_path: Path) -> None:
    rng = random.Random(14)
    sim = Sim(tmp_path)
    flat_ms: list[int] = []
    try:
        for n in range(3):
            p, journal = _bot(sim, tmp_path, n)
            try:
                _wait_quoting(p, journal, sim)
                time.sleep(rng.uniform(0.0, 1.5))  # a random point of the quoting
                before = len(sim.open_orders())
                killed_at = sim.wall_ms()
                p.kill()  # SIGKILL: no handler, no cancel-all of its own
                p.wait(10)
                deadline = time.monotonic() + 15
                while sim.open_orders() and time.monotonic() < deadline:
                    time.sleep(0.02)
                assert sim.open_orders() == [], f"kill {n}: orders left after the guard"
                flat_ms.append(sim.wall_ms() - killed_at)
                assert before >= 2
            finally:
                _reap(p)
            deadline = time.monotonic() + 15  # the guard ends once the venue is flat
            while (
                not any(r["kind"] == "guard_stop" for r in _guard_records(journal))
                and time.monotonic() < deadline
            ):
                time.sleep(0.05)
            recs = _guard_records(journal)
            acts = [r for r in recs if r["kind"] == "guard_act"]
            assert acts and acts[-1]["reason"] == "bot process gone", recs[-5:]
            confirms = [r for r in recs if r["kind"] == "guard_confirm"]
            assert confirms and confirms[-1]["orders_left"] == 0
            (journal.parent / "guard.jsonl").rename(journal.parent / f"guard{n}.jsonl")
    finally:
        sim.close()
    print(f"flat after kill -9 (venue ms): {flat_ms}")
    # Flat within 2 s of the kill on the venue's clock, every time.
    assert max(flat_ms) <= 2000, flat_ms


def _cancel_all_time(sim: Sim) -> int:
    body = _get(f"{sim.rest}/api/v1/account?by=index&value={ACCOUNT}")
    return int(body["accounts"][0]["cancel_all_time"])


def test_guard_killed_bot_keeps_quoting_warns_and_schedule_stays_armed(tmp_path: Path) -> None:
    sim = Sim(tmp_path)
    try:
        p, journal = _bot(sim, tmp_path, 0)
        try:
            _wait_quoting(p, journal, sim)
            started = [
                json.loads(x) for x in journal.read_text().splitlines() if '"guard_started"' in x
            ]
            assert started, "the run did not start its guard"
            # The bot compared its native signer with the official one: the guard, on the
            # same build, is told so and starts without loading the official SDK again.
            argv = Path(f"/proc/{started[0]['pid']}/cmdline").read_bytes().split(b"\0")
            assert b"--signer-checked" in argv
            deadline = time.monotonic() + 20  # the guard arms the schedule once it is up
            while _cancel_all_time(sim) == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            armed = _cancel_all_time(sim)
            assert armed > sim.wall_ms()
            os.kill(started[0]["pid"], signal.SIGKILL)
            time.sleep(1.5)
            assert p.poll() is None, "the bot stopped with its guard"
            assert len(sim.open_orders()) >= 2  # still quoting
            assert _cancel_all_time(sim) == armed  # the venue's dead-man's switch stays
            p.send_signal(signal.SIGTERM)
            p.wait(60)
        finally:
            _reap(p)
        assert p.returncode == 0
        err = (tmp_path / "bot0.err").read_text()
        assert "while the bot runs: no process watches this bot now" in err
        assert sim.open_orders() == []
    finally:
        sim.close()


def test_sigstop_bot_is_flattened_by_the_guard_and_recovers_after_sigcont(tmp_path: Path) -> None:
    """SIGSTOP x 5 (one of them longer than the skew window): each time the guard flattens
    within 2 s; after SIGCONT the bot notices its own stall, pulls, reconciles and quotes
    again, without reporting a clock skew the backlog's old venue times would suggest."""
    rng = random.Random(5)
    sim = Sim(tmp_path)
    flat_ms: list[int] = []
    try:
        p, journal = _bot(sim, tmp_path, 0)
        try:
            _wait_quoting(p, journal, sim)
            time.sleep(3.0)  # the guard is up (it starts beside the bot) and watching
            for n, stop_s in enumerate((2.0, 12.0, 2.0, 2.0, 2.0)):
                time.sleep(rng.uniform(0.0, 1.0))  # a random point of the quoting
                stopped_at = sim.wall_ms()
                p.send_signal(signal.SIGSTOP)
                deadline = time.monotonic() + 15
                while sim.open_orders() and time.monotonic() < deadline:
                    time.sleep(0.02)
                flat_ms.append(sim.wall_ms() - stopped_at)
                assert sim.open_orders() == [], f"stop {n}: the guard did not flatten"
                time.sleep(max(0.0, stopped_at / 1000 + stop_s - sim.wall_ms() / 1000))
                p.send_signal(signal.SIGCONT)
                deadline = time.monotonic() + 20  # reconciled, then quoting again
                while len(sim.open_orders()) < 2 and time.monotonic() < deadline:
                    assert p.poll() is None, "the bot died after SIGCONT"
                    time.sleep(0.05)
                assert len(sim.open_orders()) >= 2, f"stop {n}: not quoting after SIGCONT"
            p.send_signal(signal.SIGTERM)
            p.wait(60)
        finally:
            _reap(p)
        assert p.returncode == 0
        assert sim.open_orders() == []
        recs = _guard_records(journal)
        kinds = [r["kind"] for r in recs]
        acts = [r for r in recs if r["kind"] == "guard_act"]
        # One act per stop for the silence; after SIGCONT, while the bot reconciles (not
        # ready longer than max_silence_ms: reconciliations are spaced 5 s apart), it may
        # report itself unable to trade, and the guard looks again.
        assert sum("silent" in r["reason"] for r in acts) == 5, acts
        assert all(
            "silent" in r["reason"] or r["reason"] == "bot cannot reach the venue" for r in acts
        ), acts
        assert kinds.count("guard_bot_back") >= 5
        assert kinds[-1] == "guard_stop" and "guard_bot_stopped_clean" in kinds
        err = (tmp_path / "bot0.err").read_text()
        stalls = [x for x in err.splitlines() if "event loop stalled" in x and "pulled" in x]
        assert len(stalls) == 5, err[-3000:]
        assert "clock skew" not in err  # the backlog's venue times were not taken as skew
        pulls = [
            json.loads(x)
            for x in journal.read_text().splitlines()
            if '"pull_quotes"' in x and "event loop stalled" in x
        ]
        assert len(pulls) == 5
    finally:
        sim.close()
    print(f"flat after SIGSTOP (venue ms): {flat_ms}")
    assert max(flat_ms) <= 2000, flat_ms  # max_silence_ms 1500, then the cancel


def _cois(journal: Path) -> set[int]:
    return {
        json.loads(x)["coi"] for x in journal.read_text().splitlines() if '"kind":"order_sent"' in x
    }


def test_restart_after_kill_9_reuses_no_id(tmp_path: Path) -> None:
    """The bot killed, its guard flattens, a new bot on the same (external) simulator: its
    client order ids continue from the persisted state, none is used twice, and it ends flat."""
    sim = Sim(tmp_path)
    try:
        p, j0 = _bot(sim, tmp_path, 0)
        try:
            _wait_quoting(p, j0, sim)
            time.sleep(1.0)
            p.kill()
            p.wait(10)
        finally:
            _reap(p)
        deadline = time.monotonic() + 15
        while sim.open_orders() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sim.open_orders() == []
        first = _cois(j0)
        # The state of (this simulator's address, account, key) is kept where the config says.
        state = tmp_path / "state" / "mmfast"
        assert any(f.name.startswith("coi-sim-127.0.0.1-") for f in state.iterdir()), sorted(
            f.name for f in state.iterdir()
        )
        p2, j1 = _bot(sim, tmp_path, 1)
        try:
            _wait_quoting(p2, j1, sim)
            time.sleep(1.0)
            p2.send_signal(signal.SIGTERM)
            p2.wait(60)
        finally:
            _reap(p2)
        assert p2.returncode == 0
        second = _cois(j1)
        assert first and second and not first & second, (sorted(first), sorted(second))
        assert min(second) > max(first)
        assert sim.open_orders() == []
    finally:
        sim.close()
