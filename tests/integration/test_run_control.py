"""The control/metrics endpoint of ``mmfast run``: loopback by default, a token of at least
32 characters (one made and shown once for a bind beyond the loopback name), unauthenticated
mutations 401 with no change, pause/resume/stop with it; secrets out of the environment and
out of every library's log records."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from test_strategy_sim import BUSY_FLOW

from mmfast.conf import parse_config
from mmfast.connector.lighter.secret import Redactor, Secret
from mmfast.core.timesource import ScaledTime
from mmfast.run import EXIT_CONFIG, EXIT_OK, Runner, RunOptions
from mmfast.run.control import ControlServer, check_bind
from mmfast.sim.config import DEFAULT_ACCOUNT_INDEX as ACCOUNT
from mmfast.sim.config import SimConfig
from mmfast.sim.thread import SimThread

TOKEN = "ctl-token-for-tests-only-5d1e-0123456789abcdef"  # >= 32 characters
CFG = """
[market]
market_id = 0
[strategy.market_making]
bid_spread_ticks = 20
ask_spread_ticks = 20
refresh_tolerance_ticks = 10
[risk]
max_position_lots = 1000
max_order_notional_usdc = 100000
[risk.kill_switch]
max_drawdown_usdc = 1000.0
max_fills_per_min = 100000
# The guard has its own tests (test_guard*.py).
[guard]
enabled = false
"""


@pytest.fixture(autouse=True)
def _logging() -> Any:
    yield
    logging.getLogger("mmfast").handlers.clear()
    root = logging.getLogger()  # the run's handler for other libraries' records
    for h in [h for h in root.handlers if getattr(h, "_mmfast_handler", False)]:
        root.removeHandler(h)


def test_bind_rules() -> None:
    assert check_bind("127.0.0.1", None) is None
    assert check_bind("::1", None) is None
    assert "MMFAST_CONTROL_TOKEN" in (check_bind("0.0.0.0", None) or "")
    assert check_bind("0.0.0.0", Secret(TOKEN)) is None
    with pytest.raises(ValueError):
        ControlServer(None, "0.0.0.0", 0, None)  # type: ignore[arg-type]


def test_cli_refuses_a_short_token(tmp_path: Path) -> None:
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmfast.cli",
            "run",
            "--control-port",
            "0",
            "--journal",
            str(tmp_path / "j"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "MMFAST_CONTROL_TOKEN": "a"},
    )
    assert p.returncode == EXIT_CONFIG
    assert "at least 32 characters" in p.stderr and p.stdout == ""
    with pytest.raises(ValueError, match="at least 32"):
        ControlServer(None, "127.0.0.1", 0, Secret("x" * 31))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shorter than"):
        Redactor([Secret("a")])


def _run_proc(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    e = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "mmfast.cli", "run", "--journal", str(tmp_path / "j.jsonl"), *args],
        env=e,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.2", port), 0.2):
            return
        time.sleep(0.1)
    pytest.fail("the control endpoint never listened")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        return int(s.getsockname()[1])


def test_a_generated_token_is_shown_once_and_secrets_leave_the_environment(tmp_path: Path) -> None:
    """No token for a bind beyond the loopback name (127.0.0.2, still on this host): one is
    made and printed once on stderr, never again anywhere. An oversize header carrying it makes
    aiohttp log its own error: through the run's redacting handler. The guard (a process the
    run starts) inherits no secret from the environment."""
    port = _free_port()
    p = _run_proc(
        tmp_path,
        "--control-port",
        str(port),
        "--control-host",
        "127.0.0.2",
        "--quiet",
        "--duration",
        "30",
    )
    try:
        _wait_port(port)
        assert p.stderr is not None
        first = p.stderr.readline()
        while "control token" not in first:
            first = p.stderr.readline()
        token = first.rsplit(": ", 1)[1].strip()
        assert len(token) >= 43
        guard_pid = 0
        deadline = time.monotonic() + 20
        while not guard_pid and time.monotonic() < deadline:
            for line in (tmp_path / "j.jsonl").read_text().splitlines():
                if '"guard_started"' in line:
                    guard_pid = orjson.loads(line)["pid"]
            time.sleep(0.1)
        env = Path(f"/proc/{guard_pid}/environ").read_bytes()
        assert b"MMFAST_CONTROL_TOKEN" not in env and token.encode() not in env
        with socket.create_connection(("127.0.0.2", port), 2) as c:
            c.sendall(
                b"GET /status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                + token.encode()
                + b"A" * 9000
                + b"\r\n\r\n"
            )
            assert b"400" in c.recv(100)
        req = urllib.request.Request(
            f"http://127.0.0.2:{port}/stop",
            method="POST",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == EXIT_OK, err
    assert "Error handling request" in err  # aiohttp's own record, through the handler
    assert token not in err and token[:16] not in err
    assert token not in out and token not in (tmp_path / "j.jsonl").read_text()


def _flow_run(tmp_path: Path, **opts: Any) -> tuple[Runner, SimThread, io.StringIO, io.StringIO]:
    """A run of CFG against a simulator with flow (fills) at 4x; the simulator started."""
    cfg = parse_config(CFG, env={})
    stime = ScaledTime(4.0)
    sim = SimThread(
        SimConfig(
            seed=2,
            chain_id=cfg.venue.chain_id,
            account_index=cfg.venue.account_index,
            flow=BUSY_FLOW,
            speed_bumps=False,
            tier=cfg.venue.tier or "premium",
        ),
        stime,
    )
    out, err = io.StringIO(), io.StringIO()
    token = opts.pop("control_token", None)
    runner = Runner(
        cfg,
        RunOptions(quiet=True, journal=str(tmp_path / "j.jsonl"), time_scale=4.0, **opts),
        out=out,
        err=err,
        sim=sim,
        time=stime,
        control_token=token,
    )
    runner.setup_logging()
    sim.start()
    return runner, sim, out, err


def test_control_endpoint_pause_resume_stop(tmp_path: Path) -> None:
    runner, sim, out, err = _flow_run(tmp_path, control_port=0, control_token=Secret(TOKEN))

    def open_orders() -> int:
        return len(sim.call(lambda s: s.truth.open_orders(ACCOUNT, 0)))

    async def until(cond: Any, timeout: float = 15.0) -> bool:
        t_end = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < t_end:
            if cond():
                return True
            await asyncio.sleep(0.05)
        return False

    async def go() -> tuple[int, dict[str, Any]]:
        task = asyncio.get_running_loop().create_task(runner.run())
        assert await until(lambda: runner.control is not None and runner.control.url)
        url = runner.control.url
        assert url.startswith("http://127.0.0.1:")
        assert await until(lambda: open_orders() > 0)
        seen: dict[str, Any] = {}
        good = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{url}/status") as r:
                seen["status"] = r.status
                body = await r.json()
                seen["status_strategy"] = body["strategy"]["strategy"]
            async with s.get(f"{url}/metrics") as r:
                seen["metrics"] = await r.text()
            # The bot's book equals the simulator's whenever their nonces align.
            seen["book_aligned"] = 0
            for _ in range(100):
                async with s.get(f"{url}/book") as r:
                    book = await r.json()
                (asks, bids), nonce = sim.call(
                    lambda st: (st.exchange.levels(0), st.exchange.markets[0].book_nonce)
                )
                if book["nonce"] == nonce and book["in_sync"]:
                    assert [tuple(x) for x in book["asks"]] == sorted(asks)
                    assert [tuple(x) for x in book["bids"]] == sorted(bids, reverse=True)
                    assert book["snapshots"] >= 1 and book["market"] == 0
                    seen["book_aligned"] += 1
                    if seen["book_aligned"] >= 3:
                        break
                await asyncio.sleep(0.02)
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                for action in ("pause", "resume", "stop"):
                    async with s.post(f"{url}/{action}", headers=headers) as r:
                        seen.setdefault("unauth", []).append(r.status)
            seen["armed_after_unauth"] = runner.strategy.kill.state.value
            seen["running_after_unauth"] = not task.done()
            async with s.post(f"{url}/pause", headers=good) as r:
                seen["pause"] = (r.status, (await r.json())["state"])
            seen["cancelled"] = await until(lambda: open_orders() == 0)
            await asyncio.sleep(1.0)
            seen["still_zero"] = open_orders() == 0  # paused: no new quotes
            async with s.post(f"{url}/resume", headers=good) as r:
                seen["resume"] = (r.status, (await r.json())["state"])
            seen["requoted"] = await until(lambda: open_orders() > 0)
            async with s.post(f"{url}/stop", headers=good) as r:
                seen["stop"] = r.status
        code = await asyncio.wait_for(task, 30)
        return code, seen

    try:
        code, seen = asyncio.run(go())
    finally:
        sim.stop()
    assert code == EXIT_OK, err.getvalue()
    assert seen["status"] == 200 and seen["status_strategy"] == "market_making"
    assert 'mmfast_orders_total{action="placed"}' in seen["metrics"]
    assert seen["book_aligned"] >= 3
    assert seen["unauth"] == [401] * 9
    assert seen["armed_after_unauth"] == "armed" and seen["running_after_unauth"]
    assert seen["pause"] == (200, "paused")
    assert seen["cancelled"] and seen["still_zero"]
    assert seen["resume"] == (200, "armed") and seen["requoted"]
    assert seen["stop"] == 200
    assert "control: stop" in runner.stop_reason
    assert runner.control.unauthorized == 9
    for text in (out.getvalue(), err.getvalue(), (tmp_path / "j.jsonl").read_text()):
        assert TOKEN not in text


def test_metrics_port_serves_every_series_with_its_help_and_type(tmp_path: Path) -> None:
    """``--metrics-port``: Prometheus text on 127.0.0.1 while the bot quotes and fills; every
    family typed and documented, the counters and gauges equal to the run's own status, the
    latency histograms cumulative with their +Inf bucket equal to their count."""
    from prometheus_client.parser import text_string_to_metric_families

    from mmfast.run.metrics import render

    runner, sim, out, err = _flow_run(tmp_path, metrics_port=0)

    async def go() -> tuple[int, str, str, str, dict[str, Any]]:
        task = asyncio.get_running_loop().create_task(runner.run())
        t_end = asyncio.get_running_loop().time() + 40
        while asyncio.get_running_loop().time() < t_end and not (
            runner.metrics is not None
            and runner.strategy is not None
            and runner.strategy.fills >= 1
        ):
            await asyncio.sleep(0.05)
        assert runner.metrics is not None and runner.metrics.url.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as s, s.get(runner.metrics.url) as r:
            text, ctype = await r.text(), r.headers["Content-Type"]
        # The values compared with the status: the endpoint's own rendering and the snapshot
        # in one loop step (a fill may land while the HTTP reply is read).
        same, snap = render(runner).decode(), runner.snapshot()
        runner.request_stop("test")
        return await asyncio.wait_for(task, 30), text, ctype, same, snap

    try:
        code, text, ctype, same, snap = asyncio.run(go())
    finally:
        sim.stop()
    assert code == EXIT_OK, err.getvalue()
    assert ctype.startswith("text/plain") and "version=" in ctype
    served = {f.name: f for f in text_string_to_metric_families(text)}
    fams = {f.name: f for f in text_string_to_metric_families(same)}
    # The same families in every scrape, whatever was measured yet (a CI run once scraped
    # before the first loop-lag sample, and the family was missing from that scrape only).
    assert set(served) == set(fams) and "mmfast_loop_lag_seconds" in served
    for f in served.values():  # every series says what it is
        assert f.documentation and f.type in ("gauge", "counter", "histogram", "info"), f.name
    st = snap["strategy"]
    assert st["fills"] >= 1

    def one(name: str, **labels: str) -> float:
        got = [
            s.value
            for s in fams[name].samples
            if all(s.labels.get(k) == v for k, v in labels.items())
            and not s.name.endswith(("_created", "_bucket", "_sum", "_count"))
        ]
        assert len(got) == 1, (name, labels, fams[name].samples)
        return float(got[0])

    assert fams["mmfast_run_info"].samples[0].labels["strategy"] == "market_making"
    assert one("mmfast_ready") == 1.0
    assert one("mmfast_fills") == st["fills"]
    assert one("mmfast_orders", action="placed") == st["counts"]["placed"] >= 1
    assert one("mmfast_orders_open") == st["orders_open"]
    sd = snap["size_decimals"]
    assert one("mmfast_position_base") == st["position_lots"] / 10**sd
    assert one("mmfast_filled_base") == st["filled_lots"] / 10**sd
    bid, ask = one("mmfast_book_best_price", side="bid"), one("mmfast_book_best_price", side="ask")
    assert 0 < bid < ask
    assert one("mmfast_budget_level", level="ok") == 1.0
    for name, stages in (
        ("mmfast_stage_latency_seconds", {"book>quote"}),
        ("mmfast_order_entry_latency_seconds", {"queue", "sign", "send", "ack", "total"}),
    ):
        by_stage: dict[str, list[Any]] = {}
        for s in fams[name].samples:
            by_stage.setdefault(s.labels["stage"], []).append(s)
        assert stages <= set(by_stage), (name, sorted(by_stage))
        for stage, samples in by_stage.items():
            buckets = [s.value for s in samples if s.name.endswith("_bucket")]
            count = next(s.value for s in samples if s.name.endswith("_count"))
            assert buckets == sorted(buckets) and buckets[-1] == count > 0, (name, stage)
    assert "metrics: http://127.0.0.1:" in out.getvalue()
