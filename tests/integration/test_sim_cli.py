"""`mmfast sim` as a process: prints its URLs, serves, stops on SIGTERM/SIGINT, loopback only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent


def _start(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-m", "mmfast.cli", "sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sim_process_prints_urls_serves_and_stops(sig: signal.Signals) -> None:
    proc = _start("--host", "127.0.0.1", "--port", "0", "--seed", "5")
    try:
        assert proc.stdout is not None
        rest = proc.stdout.readline().strip()
        ws = proc.stdout.readline().strip()
        control = proc.stdout.readline().strip()
        info = proc.stdout.readline().strip()
        assert rest.startswith("rest: http://127.0.0.1:")
        port = rest.rsplit(":", 1)[1]
        assert ws == f"ws: ws://127.0.0.1:{port}/stream"
        assert control.startswith(f"control: http://127.0.0.1:{port}")
        assert info.startswith("account: 1001")
        url = f"{rest[6:]}/api/v1/nextNonce?account_index=1001&api_key_index=4"
        with urllib.request.urlopen(url, timeout=5) as r:
            assert json.loads(r.read()) == {"code": 200, "nonce": 0}
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def _start_fast(*flags: str) -> tuple[subprocess.Popen[str], str]:
    """``mmfast sim`` on a fast clock (20x, seed 3) and its REST URL (its first line)."""
    proc = _start("--port", "0", "--seed", "3", "--time-scale", "20", *flags)
    assert proc.stdout is not None
    rest = proc.stdout.readline().strip()[6:]
    for _ in range(3):
        proc.stdout.readline()
    return proc, rest


def _book_levels(rest_url: str) -> int:
    url = f"{rest_url}/api/v1/orderBookOrders?market_id=0&limit=250"
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.loads(r.read())
    return len(body["asks"]) + len(body["bids"])


@pytest.mark.parametrize(("flags", "alive"), [((), True), (("--no-flow",), False)])
def test_sim_process_flow_on_by_default(flags: tuple[str, ...], alive: bool) -> None:
    # A fast clock so the flow has built its book by the first request.
    proc, rest = _start_fast(*flags)
    try:
        levels = 0
        # Up to 2.5 s real (50 s simulated); without flow the book must stay empty all along.
        for _ in range(50):
            levels = _book_levels(rest)
            if levels:
                break
            time.sleep(0.05)
        assert (levels > 0) is alive
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::"])
def test_sim_process_refuses_non_loopback(host: str) -> None:
    proc = _start("--host", host, "--port", "0")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "loopback only" in err and out == ""


def test_sim_process_refuses_a_lighter_chain_id() -> None:
    proc = _start("--chain-id", "304")
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "belongs to Lighter" in err


def _truth(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize(("flags", "kept"), [((), False), (("--book-history", "20000"), True)])
def test_sim_process_book_history_option(flags: tuple[str, ...], kept: bool) -> None:
    proc, rest = _start_fast(*flags)
    try:
        status, now = _truth(f"{rest}/_sim/truth/book?market=0")
        assert status == 200
        nonce = now["result"]["nonce"]
        status, at = _truth(f"{rest}/_sim/truth/book?market=0&nonce={nonce}")
        if kept:
            assert status == 200 and at["result"]["nonce"] == nonce
        else:
            assert status == 400 and "book history is off" in at["error"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_sim_process_refuses_a_negative_book_history() -> None:
    proc = _start("--book-history", "-1")
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "book_history" in err
