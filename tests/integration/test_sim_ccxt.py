"""ccxt's Lighter client (REST and ccxt.pro), unchanged, trading against `mmfast sim`.

Only configuration ccxt documents is set: the URLs (`exchange.urls['api']`), the chain id and
the path of the native signer (ccxt loads one at runtime; lighter-sdk ships the same library).
The private flow is the venue's: ccxt finds the account from the L1 address of its private
key (`accountsByL1Address`), registers a fresh API key with a ChangePubKey signed by that L1
key, then signs orders with skip-nonce millisecond nonces.
"""

from __future__ import annotations

import asyncio
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ccxt_pro = pytest.importorskip("ccxt.pro")
lighter_pkg = pytest.importorskip("lighter")

REPO = Path(__file__).resolve().parent.parent.parent
SIGNERS = Path(lighter_pkg.__file__).resolve().parent / "signers"
SYMBOL = "ETH/USDC:USDC"


def _signer_path() -> Path:
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "")
    path = SIGNERS / f"lighter-signer-linux-{arch}.so"
    if sys.platform != "linux" or not path.is_file():
        pytest.skip(f"no lighter signer library for {sys.platform}/{platform.machine()}")
    return path


@pytest.fixture
def sim_proc() -> Any:
    """`mmfast sim` (seeded flow on) and what it printed: rest, ws, account, chain id, L1 key."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmfast.cli", "sim", "--port", "0", "--seed", "11"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(5)]
        fields = dict(w.split(": ", 1) for line in lines for w in line.split("  "))
        yield {
            "rest": fields["rest"],
            "ws": fields["ws"],
            "account": int(fields["account"]),
            "chain_id": int(fields["chain_id"]),
            "l1_key": fields["l1_private_key"],
            "l1_address": fields["l1_address"],
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _client(sim: dict[str, Any], private: bool) -> Any:
    config: dict[str, Any] = {
        "options": {"chainId": sim["chain_id"], "libraryPath": str(_signer_path())}
    }
    if private:
        config["privateKey"] = sim["l1_key"]
    ex = ccxt_pro.lighter(config)
    ex.urls["api"] = {
        "root": sim["rest"],
        "public": sim["rest"],
        "private": sim["rest"],
        "ws": sim["ws"],
    }
    return ex


async def _until(pred: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = await pred()
        if got or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.2)


def test_ccxt_public_rest_and_pro_order_book(sim_proc: dict[str, Any]) -> None:
    async def main() -> dict[str, Any]:
        ex = _client(sim_proc, private=False)
        try:
            markets = await ex.load_markets()
            out: dict[str, Any] = {"markets": markets, "currencies": ex.currencies}
            out["book"] = await ex.fetch_order_book(SYMBOL, 20)
            out["ticker"] = await ex.fetch_ticker(SYMBOL)
            # The seeded flow trades many times a second: wait for a few trades.
            out["trades"] = await _until(lambda: ex.fetch_trades(SYMBOL, limit=50))
            out["ohlcv"] = await ex.fetch_ohlcv(SYMBOL, "1m", limit=5)
            out["funding"] = await ex.fetch_funding_rates([SYMBOL])
            out["status"] = await ex.fetch_status()
            out["ws_book"] = await asyncio.wait_for(ex.watch_order_book(SYMBOL), 10)
            out["ws_book2"] = await asyncio.wait_for(ex.watch_order_book(SYMBOL), 10)
            return out
        finally:
            await ex.close()

    r = asyncio.run(main())
    eth = r["markets"][SYMBOL]
    assert (eth["id"], eth["swap"], eth["precision"]["price"], eth["precision"]["amount"]) == (
        "0",
        True,
        0.01,
        0.0001,
    )
    assert "BTC/USDC:USDC" in r["markets"] and "USDC" in r["currencies"]
    book = r["book"]
    assert book["bids"] and book["asks"] and book["bids"][0][0] < book["asks"][0][0]
    assert r["ticker"]["symbol"] == SYMBOL and r["ticker"]["last"] > 0
    trades = r["trades"]
    assert trades and all(t["symbol"] == SYMBOL and t["amount"] > 0 for t in trades)
    ohlcv = r["ohlcv"]
    assert ohlcv and all(len(c) == 6 and c[2] >= c[3] > 0 for c in ohlcv)
    assert r["funding"][SYMBOL]["fundingRate"] == 0
    assert r["status"]["status"] == "ok"
    for key in ("ws_book", "ws_book2"):
        ws = r[key]
        assert ws["symbol"] == SYMBOL and ws["bids"] and ws["asks"]
        assert ws["bids"][0][0] < ws["asks"][0][0]


def test_ccxt_registers_a_key_places_lists_and_cancels(sim_proc: dict[str, Any]) -> None:
    async def main() -> dict[str, Any]:
        ex = _client(sim_proc, private=True)
        try:
            out: dict[str, Any] = {}
            await ex.load_markets()  # with credentials: account lookup and key registration
            out["account_index"] = ex.options["accountIndex"]
            out["balance"] = await ex.fetch_balance()
            book = await ex.fetch_order_book(SYMBOL, 5)
            price = round(book["bids"][0][0] * 0.98, 2)  # rests: 2 % under the best bid
            out["created"] = await ex.create_order(
                SYMBOL, "limit", "buy", 0.05, price, {"clientOrderId": 4242}
            )
            out["open"] = await _until(lambda: ex.fetch_open_orders(SYMBOL))
            mine = [o for o in out["open"] if o["clientOrderId"] == "4242"]
            assert mine, out["open"]
            out["mine"] = mine[0]
            out["canceled"] = await ex.cancel_order(mine[0]["id"], SYMBOL)

            async def gone() -> bool:
                return not [
                    o for o in await ex.fetch_open_orders(SYMBOL) if o["clientOrderId"] == "4242"
                ]

            out["gone"] = await _until(gone)
            out["closed"] = await ex.fetch_closed_orders(SYMBOL)
            return out
        finally:
            await ex.close()

    r = asyncio.run(main())
    assert r["account_index"] == sim_proc["account"]
    assert r["balance"]["USDC"]["total"] == 1_000_000
    mine = r["mine"]
    assert (mine["side"], mine["amount"], mine["status"]) == ("buy", 0.05, "open")
    assert r["gone"] is True
    closed = {o["clientOrderId"]: o["status"] for o in r["closed"]}
    assert closed.get("4242") == "canceled"
