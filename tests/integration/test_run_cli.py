"""``mmfast run`` as a subprocess: the default run against the built-in simulator (status,
summary with fills, journal), SIGTERM/SIGINT shutdown with every order cancelled and confirmed,
and refusals before any I/O (bad config, a real key in sim mode, mainnet without --live)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

MMFAST = [sys.executable, "-m", "mmfast.cli"]
CANARY = "0badc0de" * 10


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMFAST_")}
    env.update(HOME=str(tmp), XDG_STATE_HOME=str(tmp / "state"), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def _summary_value(out: str, label: str) -> str:
    m = re.search(rf"^{label}\s+(.*)$", out, re.MULTILINE)
    assert m, f"no '{label}' line in:\n{out}"
    return m.group(1)


TIGHT = """
[market]
symbol = "ETH"
[strategy.market_making]
bid_spread_ticks = 8
ask_spread_ticks = 8
levels = 2
level_spread_ticks = 10
order_amount_lots = 100
refresh_tolerance_ticks = 20
[risk]
max_position_lots = 2000
max_order_notional_usdc = 2000
[risk.kill_switch]
max_drawdown_usdc = 200.0
max_fills_per_min = 1000
"""


@pytest.mark.parametrize("signer", ["native", "official"])
def test_run_duration_5_exits_0_with_summary_and_fills(tmp_path: Path, signer: str) -> None:
    # Seeded simulator flow at 4x time (20 simulated seconds in 5 s), quotes 8 ticks from the
    # mid kept in place within 20 ticks (queue priority): fills within the 5 s. The native
    # signer is the default; the official one is the fallback ([venue] signer).
    cfg = tmp_path / "tight.toml"
    cfg.write_text(TIGHT if signer == "native" else f'[venue]\nsigner = "{signer}"\n{TIGHT}')
    p = subprocess.run(
        [
            *MMFAST,
            "run",
            "--duration",
            "5",
            "--seed",
            "2",
            "--time-scale",
            "4",
            "--config",
            str(cfg),
        ],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    assert "=== mmfast run summary ===" in out
    fills = int(_summary_value(out, "fills").split()[0])
    assert fills >= 1, out
    assert _summary_value(out, "shutdown") == "orders left open: 0"
    assert _summary_value(out, "exit code") == "0"
    signed = _summary_value(out, "signer")
    assert signed.startswith(f"{signer}  signed ") and "failed 0" in signed, signed
    if signer == "native":
        assert re.search(r"pooled [1-9][0-9]*", signed), signed
        # market_making's compiled step signed and sent the first tx of its requotes itself.
        direct = _summary_value(out, "direct tx")
        assert re.match(r"[1-9][0-9]* signed and sent by the compiled step", direct), direct
    else:  # official: order entry signs and sends every tx
        assert _summary_value(out, "direct tx").startswith("0 "), out
    # The live status printed (about once a second) before the summary.
    status = out.split("=== mmfast run summary ===")[0]
    assert status.count("latency p50/p99") >= 3
    assert "book " in status and "quotes  bids" in status and "position" in status
    # The journal (default path under the state dir) holds the orders, fills and summary.
    journal = tmp_path / "state" / "mmfast" / "journal.jsonl"
    recs = [orjson.loads(line) for line in journal.read_bytes().splitlines()]
    kinds = [r["kind"] for r in recs]
    assert kinds.count("fill") == fills
    assert {"run_start", "order_sent", "order", "summary", "run_stop"} <= set(kinds)
    # The summary's counts are the journal's.
    summ = next(r for r in recs if r["kind"] == "summary")
    n = {k: kinds.count(k) for k in set(kinds)}
    status = [r["status"] for r in recs if r["kind"] == "order"]
    assert summ["fills"] == n["fill"]
    c = summ["counts"]
    assert (c["placed"], c["modified"], c["denied"], c["send_errors"], c["cancel_alls"]) == (
        n["order_sent"],
        n.get("order_modify", 0),
        n.get("denied", 0),
        n.get("send_error", 0),
        n.get("cancel_all", 0),
    )
    assert (c["cancelled"], c["rejected"]) == (status.count("CANCELED"), status.count("REJECTED"))
    assert c["cancelled"] >= 1, c  # the shutdown cancel-all's, journaled
    done = recs[kinds.index("shutdown_confirmed")]
    assert kinds.index("shutdown") < kinds.index("shutdown_confirmed") < kinds.index("run_stop")
    assert done["orders_left"] == 0 and done["confirmed_by"] == "rest", done
    # Human units beside ticks and lots, as the venue prints them.
    start = recs[kinds.index("run_start")]
    pd, sd = start["price_decimals"], start["size_decimals"]
    for r in recs:
        if r["kind"] in ("order", "order_sent", "order_modify", "fill"):
            assert Decimal(r["px"]) == Decimal(r["price"]).scaleb(-pd), r
            assert Decimal(r["qty"]) == Decimal(r["size"]).scaleb(-sd), r
        if r["kind"] == "market" and r["in_sync"]:  # the price path
            assert Decimal(r["bid_px"]) == Decimal(r["bid"]).scaleb(-pd), r
            assert Decimal(r["mid_px"]) == (Decimal(r["bid"]) + r["ask"]).scaleb(-pd) / 2, r
    # 20 s of run time, a record per 100 ms tick of the host's clock (400 ms of the run's at
    # 4x); some ticks may run late, start-up has none.
    assert n["market"] >= 20 / 0.4 / 2, n
    # Each change of a venue condition (streams, books, reconciliation), with its reason.
    conds = [r for r in recs if r["kind"] == "condition"]
    assert any(r["name"] == "book:0" and r["holds"] for r in conds), conds
    assert any(not r["holds"] and r["reason"] for r in conds), conds
    assert oct(journal.stat().st_mode & 0o777) == "0o600"
    # Its guard watched (on the host's clock, while the simulator ran 4x faster), never acted,
    # and ended with the clean stop.
    assert "guard_started" in kinds
    guard = [
        orjson.loads(line)["kind"]
        for line in (journal.parent / "guard.jsonl").read_bytes().splitlines()
    ]
    assert "guard_act" not in guard and "guard_bot_stopped_clean" in guard, guard
    # Copied into the run's journal as they happened: one record of the run.
    copied = [r["event"] for r in recs if r["kind"] == "guard"]
    assert copied == guard, (copied, guard)
    assert _summary_value(out, "guard").endswith("guard.jsonl") and "exited 0" in _summary_value(
        out, "guard"
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_cancels_all_and_confirms(tmp_path: Path, sig: signal.Signals) -> None:
    journal = tmp_path / "j.jsonl"
    p = subprocess.Popen(
        [*MMFAST, "run", "--quiet", "--seed", "3", "--journal", str(journal)],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until orders rest
            if journal.exists() and b'"status":"OPEN"' in journal.read_bytes():
                break
            time.sleep(0.1)
        else:
            pytest.fail("no order opened")
        p.send_signal(sig)
        # Bounded, not timed: shutdown latency is a figure for the soak/bench runs, not a
        # wall-clock assertion on a shared machine.
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, out + err
    assert _summary_value(out, "shutdown") == "orders left open: 0"
    assert sig.name in _summary_value(out, "duration")
    # On the host's clock (no --time-scale) the book frames reach the compiled step from the
    # compiled picows listener.
    frames = re.search(
        r"\((\d+) frames by the compiled listener\)", _summary_value(out, "direct tx")
    )
    assert frames and int(frames.group(1)) > 0, out
    recs = [orjson.loads(line) for line in journal.read_bytes().splitlines()]
    done = [r for r in recs if r["kind"] == "run_stop"]
    assert done and done[-1]["orders_left"] == 0
    # The journal is the whole record: each order's last state is final (the shutdown
    # cancel-all's states included), and the summary counts those cancels.
    last: dict[int, str] = {}
    for r in recs:
        if r["kind"] == "order":
            last[r["coi"]] = r["status"]
    assert last and all(st in ("CANCELED", "FILLED", "REJECTED") for st in last.values()), last
    cancelled = int(re.search(r"cancelled (\d+)", _summary_value(out, "orders")).group(1))
    assert cancelled >= sum(st == "CANCELED" for st in last.values()) >= 1


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_during_start_up_exits_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    """A stop signal at start-up: before the run's handlers (imports, config) the command ends
    quietly with 128 + the signal; once they are installed it stops as at any other time. No
    traceback either way, and no order left behind. (The interpreter's own first ~20 ms, before
    mmfast's first line runs, are outside this: docs/run.md.)"""
    for delay in (0.1, 0.4, 1.0, 2.0):
        journal = tmp_path / f"j-{delay}.jsonl"
        p = subprocess.Popen(
            [*MMFAST, "run", "--quiet", "--seed", "3", "--journal", str(journal)],
            env=_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(delay)
            p.send_signal(sig)
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert "Traceback" not in err and "Traceback" not in out, err
        if p.returncode == 128 + sig:
            assert "before it started; nothing was sent" in err, err
        else:
            assert p.returncode == 0, (delay, p.returncode, out, err)
            assert _summary_value(out, "shutdown") == "orders left open: 0"


def test_bad_config_fails_before_io_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "[strategy.market_making]\nlvels = 3\n[risk]\nmax_position_lots = 10\n"
        "max_order_notional_usdc = 100\n[risk.kill_switch]\nmax_drawdown_usdc = 1.0\n"
    )
    p = subprocess.run(
        [*MMFAST, "run", "--config", str(bad), "--journal", str(tmp_path / "j.jsonl")],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2
    assert "strategy.market_making.lvels" in p.stderr
    assert p.stdout == ""  # no simulator, no status, no summary
    assert not (tmp_path / "j.jsonl").exists()


def test_sim_mode_refuses_a_real_key_without_echoing_it(tmp_path: Path) -> None:
    p = subprocess.run(
        [*MMFAST, "run", "--duration", "1"],
        env=_env(tmp_path, MMFAST_API_PRIVATE_KEY=CANARY),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2
    assert "MMFAST_API_PRIVATE_KEY" in p.stderr and "refuses a real key" in p.stderr
    for text in (p.stdout, p.stderr):
        assert CANARY[:16] not in text.lower()


def test_mainnet_needs_live_flag(tmp_path: Path) -> None:
    from mmfast.conf import example_path

    p = subprocess.run(
        [*MMFAST, "run", "--config", str(example_path("mainnet"))],
        env=_env(tmp_path, MMFAST_API_PRIVATE_KEY=CANARY),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2
    assert "--live" in p.stderr
    assert CANARY[:16] not in p.stderr.lower()


def test_strategy_option_selects_trend_ladder(tmp_path: Path) -> None:
    p = subprocess.run(
        [
            *MMFAST,
            "run",
            "--strategy",
            "trend_ladder",
            "--duration",
            "2",
            "--quiet",
            "--log-json",
            "--journal",
            str(tmp_path / "j.jsonl"),
        ],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "strategy trend_ladder" in _summary_value(p.stdout, "venue")
    assert "latency p50/p99" not in p.stdout  # --quiet: no live status
    logs = [orjson.loads(line) for line in p.stderr.splitlines() if line.strip()]
    assert logs and all({"ts", "level", "logger", "msg"} <= set(x) for x in logs)
    assert any(x["logger"] == "mmfast.core" and "RUNNING" in x["msg"] for x in logs)


def test_embedded_simulator_state_is_thrown_away_even_after_a_crash(tmp_path: Path) -> None:
    """Only the simulator inside `mmfast run` gets throwaway state: a folder named by the run's
    process under the state dir, removed at the end; one left by a run that crashed is removed
    by the next."""
    runs = tmp_path / "state" / "mmfast" / "sim-runs"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (runs / str(dead.pid)).mkdir(parents=True)
    (runs / str(dead.pid) / "coi-sim-1001-3.json").write_text("{}")
    p = subprocess.run(
        [*MMFAST, "run", "--duration", "1", "--quiet"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert list(runs.iterdir()) == []


@pytest.mark.parametrize("signer", ["native", "official"])
def test_a_tampered_official_signer_library_refuses_to_start(tmp_path: Path, signer: str) -> None:
    """lighter-sdk installed with its signer library changed (bytes appended: it would still
    load): `mmfast run` with either signer stops before signing anything, naming the file and
    both hashes (mmfast.connector.lighter.signer_lib). The same run with the installed library
    is test_run_duration_5_exits_0_with_summary_and_fills."""
    import importlib.util
    import shutil
    from importlib import metadata

    from mmfast.connector.lighter import signer_lib

    spec = importlib.util.find_spec("lighter")
    assert spec is not None and spec.submodule_search_locations
    src = Path(next(iter(spec.submodule_search_locations)))
    lib = signer_lib.library_name()
    site = tmp_path / "site"
    # The SDK's Python files and this platform's library only (the others are 60 MB).
    shutil.copytree(
        src,
        site / "lighter",
        ignore=lambda _d, names: [
            n for n in names if n == "__pycache__" or (n.startswith("lighter-signer") and n != lib)
        ],
    )
    with (site / "lighter" / "signers" / lib).open("ab") as f:
        f.write(b"\0tampered")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[venue]\nsigner = "{signer}"\n{TIGHT}')
    path = os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
    p = subprocess.run(
        [*MMFAST, "run", "--duration", "5", "--config", str(cfg)],
        env=_env(tmp_path, PYTHONPATH=path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 1, p.stdout + p.stderr
    assert "official signer refused" in p.stderr
    assert str(site / "lighter" / "signers" / lib) in p.stderr
    assert signer_lib.SIGNER_SHA256[metadata.version("lighter-sdk")][lib] in p.stderr
    assert "run summary" not in p.stdout  # stopped at start-up: nothing quoted
