"""`mmfast diagnose tp-mismatch` / `tp-side-vs-ro` against the simulator on 127.0.0.1.

Orders and positions are made in the simulator directly (txs submitted to the engine, a
counterparty's resting order, an out-of-band fill), then each tool runs in process and as a
process against `mmfast sim`. Expected counts and lists come from what was placed and are
checked against the simulator's truth. Mismatches are injected by corrupting the one account
frame that carries a change (the stream never sees it) or by stalling the tool's connection.
Every run must leave no connection, session, socket or thread behind, on success or error.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mmfast.cli import main as cli_main
from mmfast.connector.lighter.budget import PREMIUM, RateBudget
from mmfast.connector.lighter.rest import VenueUnavailable
from mmfast.diagnostics import (
    EXIT_DIFFERENCES,
    EXIT_ERROR,
    EXIT_OK,
    DiagError,
    VenueSession,
    check_mismatch,
    compare_orders,
    main_tp_mismatch,
    main_tp_side_vs_ro,
    resolve_target,
    tp_mismatch,
    tp_side_of,
    tp_side_vs_ro,
)
from mmfast.sim.config import SimConfig
from mmfast.sim.engine import TX_CANCEL_ORDER, TX_CREATE_ORDER
from mmfast.sim.thread import SimThread

REPO = Path(__file__).resolve().parent.parent.parent
ACCOUNT = 1001  # the simulator's funded account
TRADER_KEY = 3  # the key our orders are placed with (the tools read with key 4)
OTHER = 2002  # a counterparty
ETH = 0
CHANNEL = f"account_orders:{ETH}:{ACCOUNT}"
MARK = 300_000  # ETH mark price, ticks (3000.00)
TOKEN_RE = re.compile(r"\d{9,11}:\d+:\d+:[0-9a-fA-F]{16,}")


@pytest.fixture
def sim_config() -> SimConfig:
    # No server pings during a test: the frame after an injected fault is the order update.
    # Venue places orders with stand-in signatures, the tools read with throwaway keys.
    return SimConfig(
        seed=7,
        ws_ping_interval_ms=600_000,
        ws_pong_timeout_ms=900_000,
        speed_bumps=False,
        verify_signatures=False,
        tier="premium",
    )


class Venue:
    """Places orders and positions in the simulator (its own thread) as account 1001."""

    def __init__(self, st: SimThread) -> None:
        self.st = st

    def _tx(self, tx_type: int, fields: dict[str, Any]) -> None:
        def submit(sim: Any) -> Any:
            now = sim.clock.wall_ms()
            info = {
                "AccountIndex": ACCOUNT,
                "ApiKeyIndex": TRADER_KEY,
                "ExpiredAt": now + 600_000,
                "Nonce": sim.exchange.next_nonce(ACCOUNT, TRADER_KEY),
                "Sig": "x",
                **fields,
            }
            return sim.submit(tx_type, info)

        self.st.call(submit)

    def create(
        self,
        coi: int,
        is_ask: bool,
        price: int,
        lots: int,
        *,
        reduce_only: bool = False,
        ioc: bool = False,
    ) -> None:
        def expiry(sim: Any) -> int:
            return 0 if ioc else sim.clock.wall_ms() + 3_600_000

        self._tx(
            TX_CREATE_ORDER,
            {
                "MarketIndex": ETH,
                "ClientOrderIndex": coi,
                "BaseAmount": lots,
                "Price": price,
                "IsAsk": int(is_ask),
                "Type": 0,
                "TimeInForce": 0 if ioc else 1,
                "ReduceOnly": int(reduce_only),
                "TriggerPrice": 0,
                "OrderExpiry": self.st.call(expiry),
            },
        )

    def cancel(self, coi: int) -> None:
        self._tx(TX_CANCEL_ORDER, {"MarketIndex": ETH, "Index": coi})

    def counterparty(self, is_ask: bool, price: int, lots: int) -> None:
        """A resting (or taking) order of another account."""

        def place(sim: Any) -> None:
            if OTHER not in sim.exchange.accounts:
                sim.exchange.add_account(OTHER, 10**12)
            sim.run_engine(lambda: sim.exchange.place_direct(OTHER, ETH, is_ask, price, lots))

        self.st.call(place)

    def take(self, coi: int, lots: int) -> None:
        """Trade `lots` (> 0 buy, < 0 sell) at the mark through the book."""
        self.counterparty(lots > 0, MARK, abs(lots))  # the other side rests first
        self.create(coi, lots < 0, MARK, abs(lots), ioc=True)

    def position(self) -> int:
        return int(self.st.call(lambda s: s.truth.position(ACCOUNT, ETH)).size)

    def open_orders(self) -> list[Any]:
        return list(self.st.call(lambda s: s.truth.open_orders(ACCOUNT, ETH)))

    def fault(self, fn: Callable[[Any], Any]) -> Any:
        return self.st.call(lambda s: fn(s.faults))

    def connections(self) -> list[dict[str, Any]]:
        return list(self.st.call(lambda s: s.truth.connections()))


@pytest.fixture
def venue(sim: SimThread) -> Venue:
    return Venue(sim)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def client_sockets(port: int) -> int:
    """Sockets of this machine still connected (or half-closed by the peer) to `port`."""
    n = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            rem_port = int(cols[2].rsplit(":", 1)[1], 16)
            # 01 ESTABLISHED, 02 SYN_SENT, 08 CLOSE_WAIT: open on our side.
            if rem_port == port and cols[3] in ("01", "02", "08"):
                n += 1
    return n


def assert_all_closed(venue: Venue, port: int, session: VenueSession | None = None) -> None:
    if session is not None:
        assert session.resources_open == {
            "rest_session": False,
            "ws_connection": False,
            "ws_task": False,
            "signer_thread": False,
        }
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (venue.connections() or client_sockets(port)):
        time.sleep(0.05)
    assert venue.connections() == []
    assert client_sockets(port) == 0
    assert not [t for t in __import__("threading").enumerate() if t.name == "mmfast-diag-signer"]


def target_of(sim: SimThread, **kw: Any) -> Any:
    return resolve_target(None, rest_url=sim.rest_url, **kw)


def tp_book(venue: Venue) -> None:
    """Long 500 lots; on the TP (sell) side two reduce-only asks and two that are not; two
    bids on the other side."""
    venue.take(1, 500)
    assert venue.position() == 500
    venue.create(11, True, 301_000, 200, reduce_only=True)
    venue.create(12, True, 301_500, 300, reduce_only=True)
    venue.create(13, True, 302_000, 100)
    venue.create(14, True, 302_500, 100)
    venue.create(21, False, 299_000, 100)
    venue.create(22, False, 298_000, 100)


# --- the venue's payloads (captured fixtures) -----------------------------------------------------

FIXTURES = REPO / "tests/fixtures/lighter"


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_venue_payloads_parse_to_exact_ints() -> None:
    from mmfast.connector.lighter.markets import parse_order_book_details
    from mmfast.diagnostics import order_view, position_lots

    info = parse_order_book_details(_fixture("http_order_book_details.json"))[0]
    rest = order_view(_fixture("http_orders.json")["orders"][0], info)
    ws = order_view(_fixture("ws_account_orders_update.json")["orders"]["0"][0], info)
    assert (
        rest.order_index,
        rest.client_order_index,
        rest.is_ask,
        rest.price_ticks,
        rest.remaining_lots,
        rest.initial_lots,
        rest.reduce_only,
        rest.status,
    ) == (281476929510110, 42, True, 235274, 50, 50, False, "open")
    assert (ws.remaining_lots, ws.transaction_time) == (30, 1777941383576735)
    # The same order, partly filled on the stream: one field differs.
    only_ws, only_rest, diffs = compare_orders({ws.order_index: ws}, {rest.order_index: rest})
    assert (only_ws, only_rest) == ([], [])
    assert [(d.field, d.ws, d.rest) for d in diffs] == [("remaining_lots", 30, 50)]
    pos = _fixture("ws_account_all_positions_update.json")["positions"]["0"]
    assert position_lots(pos, info) == 15_000
    assert position_lots({**pos, "sign": -1}, info) == -15_000
    assert (tp_side_of(15_000), tp_side_of(-1), tp_side_of(0)) == (True, False, None)
    with pytest.raises(ValueError, match="price"):
        order_view({**_fixture("http_orders.json")["orders"][0], "price": "1.2.3"}, info)


# --- tp-side-vs-ro --------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["rest", "ws"])
def test_tp_side_vs_ro_long_lists_tp_orders_not_reduce_only(
    sim: SimThread, venue: Venue, run: Any, source: str
) -> None:
    tp_book(venue)
    target, key = target_of(sim)
    report = run(tp_side_vs_ro(target, key, source=source))
    truth = venue.open_orders()
    asks = [o for o in truth if o.is_ask]
    assert report.position_lots == venue.position() == 500
    assert report.tp_side == "sell"
    assert report.open_orders == len(truth) == 6
    assert len(report.tp_side_orders) == len(asks) == 4
    assert report.reduce_only_count == sum(o.reduce_only for o in asks) == 2
    assert report.not_reduce_only_cois == (13, 14)
    assert {o.order_index for o in report.not_reduce_only} == {
        o.order_index for o in asks if not o.reduce_only
    }
    assert report.exit_code == EXIT_DIFFERENCES and not report.consistent
    j = report.to_json()
    assert (j["tp_side_orders"], j["tp_side_reduce_only"], j["tp_side_not_reduce_only"]) == (
        4,
        2,
        2,
    )
    assert j["not_reduce_only_cois"] == [13, 14] and j["position"] == "0.0500"
    text = report.render()
    assert "client order indexes: 13, 14" in text and "long 0.0500" in text
    assert_all_closed(venue, _port(sim.rest_url))


def test_tp_side_vs_ro_short_all_reduce_only_is_consistent(
    sim: SimThread, venue: Venue, run: Any
) -> None:
    venue.take(1, -300)
    venue.create(21, False, 299_000, 100, reduce_only=True)
    venue.create(22, False, 298_500, 200, reduce_only=True)
    venue.create(13, True, 302_000, 100)  # the other side: not counted
    target, key = target_of(sim)
    for source in ("rest", "ws"):
        report = run(tp_side_vs_ro(target, key, source=source))
        assert report.position_lots == venue.position() == -300
        assert (
            report.tp_side,
            report.open_orders,
            len(report.tp_side_orders),
            report.reduce_only_count,
            report.not_reduce_only_cois,
        ) == ("buy", 3, 2, 2, ())
        assert report.exit_code == EXIT_OK
        assert "every take-profit-side order is reduce-only" in report.render()


def test_tp_side_vs_ro_flat_has_no_tp_side(sim: SimThread, venue: Venue, run: Any) -> None:
    venue.create(13, True, 302_000, 100)
    venue.create(21, False, 299_000, 100)
    target, key = target_of(sim)
    report = run(tp_side_vs_ro(target, key))
    assert (
        report.position_lots,
        report.tp_side,
        report.open_orders,
        report.tp_side_orders,
        report.exit_code,
    ) == (0, None, 2, (), EXIT_OK)
    assert "flat; no take-profit side" in report.render()


# --- tp-mismatch ----------------------------------------------------------------------------------


def test_tp_mismatch_consistent(sim: SimThread, venue: Venue, run: Any) -> None:
    tp_book(venue)
    target, key = target_of(sim)
    budget = RateBudget(PREMIUM)  # e.g. the bot's own, when run in process
    report = run(tp_mismatch(target, key, settle_s=0.2, budget=budget))
    # Every request drew from the budget: orderBookDetails + accountActiveOrders (300 each),
    # the subscribe; nothing was sent.
    assert (budget.used("rest"), budget.used("ws_msgs"), budget.used("sendtx")) == (600, 1, 0)
    n = len(venue.open_orders())
    assert (report.ws_orders, report.rest_orders) == (n, n) == (6, 6)
    assert report.consistent and report.exit_code == EXIT_OK
    assert (report.only_ws, report.only_rest, report.field_diffs, report.transient) == (
        (),
        (),
        (),
        0,
    )
    assert report.rounds == 1  # nothing differed: no confirming read needed
    assert "consistent: both views hold the same open orders" in report.render()
    assert_all_closed(venue, _port(sim.rest_url))


def test_tp_mismatch_reports_suppressed_updates(sim: SimThread, venue: Venue, run: Any) -> None:
    tp_book(venue)
    target, key = target_of(sim)
    by_coi = {o.client_order_index: o for o in venue.open_orders()}

    async def main() -> tuple[Any, VenueSession]:
        async with VenueSession(target, key) as s:
            await s.open_stream(orders=True)
            # Each change's one account frame is corrupted: the stream never learns of it.
            venue.fault(lambda f: f.corrupt_frames(1, conn=CHANNEL))
            await asyncio.to_thread(venue.create, 31, True, 303_000, 150)  # REST only
            await s.wait(0.2)
            venue.fault(lambda f: f.corrupt_frames(1, conn=CHANNEL))
            await asyncio.to_thread(venue.cancel, 12)  # still open on the stream only
            await s.wait(0.2)
            venue.fault(lambda f: f.corrupt_frames(1, conn=CHANNEL))
            await asyncio.to_thread(venue.counterparty, True, 299_000, 40)  # fills 40 of coi 21
            return await check_mismatch(s, settle_s=0.2, rounds=2), s

    report, session = run(main())
    truth = {o.client_order_index: o for o in venue.open_orders()}
    assert set(truth) == {11, 13, 14, 21, 22, 31} and truth[21].remaining == 60
    assert [
        (o.client_order_index, o.price_ticks, o.remaining_lots, o.is_ask) for o in report.only_rest
    ] == [(31, 303_000, 150, True)]
    assert report.only_rest[0].order_index == truth[31].order_index
    assert [(o.client_order_index, o.order_index, o.reduce_only) for o in report.only_ws] == [
        (12, by_coi[12].order_index, True)
    ]
    assert [(d.client_order_index, d.field, d.ws, d.rest) for d in report.field_diffs] == [
        (21, "remaining_lots", 100, 60)
    ]
    assert (report.ws_orders, report.rest_orders, report.rounds) == (6, 6, 2)
    assert report.stream["malformed"] == 3
    assert report.exit_code == EXIT_DIFFERENCES
    text = report.render()
    assert "DIFFERENCES: 3" in text and "only over REST (1)" in text
    assert "only on the account stream (1)" in text
    assert "remaining_lots: stream 0.0100 (100 lots), REST 0.0060 (60 lots)" in text
    j = report.to_json()
    assert [o["client_order_index"] for o in j["only_rest"]] == [31]
    assert [o["client_order_index"] for o in j["only_ws"]] == [12]
    assert j["field_diffs"][0]["field"] == "remaining_lots" and j["consistent"] is False
    assert_all_closed(venue, _port(sim.rest_url), session)


def test_tp_mismatch_change_in_flight_is_transient(sim: SimThread, venue: Venue, run: Any) -> None:
    venue.create(21, False, 299_000, 100)
    target, key = target_of(sim)

    async def main() -> Any:
        async with VenueSession(target, key) as s:
            await s.open_stream(orders=True)
            # The stream delivers the new order 1.5 s late: the first read differs, the second
            # (after 2 x 1.0 s of settling) agrees.
            venue.fault(lambda f: f.stall(1.5, conn=CHANNEL))
            await asyncio.to_thread(venue.create, 22, False, 298_000, 100)
            return await check_mismatch(s, settle_s=1.0, rounds=2)

    report = run(main())
    assert report.consistent and report.exit_code == EXIT_OK
    assert (report.transient, report.rounds, report.ws_orders, report.rest_orders) == (1, 2, 2, 2)
    assert "transient differences (in flight, gone on a later read): 1" in report.render()


def test_session_closes_everything_on_error_mid_run(sim: SimThread, venue: Venue, run: Any) -> None:
    venue.create(21, False, 299_000, 100)
    target, key = target_of(sim)
    holder: list[VenueSession] = []

    async def main() -> None:
        async with VenueSession(target, key, timeout_s=2.0) as s:
            holder.append(s)
            await s.open_stream(orders=True)
            assert s.resources_open == {
                "rest_session": True,
                "ws_connection": True,
                "ws_task": True,
                "signer_thread": True,
            }
            assert len(venue.connections()) == 1
            assert client_sockets(_port(sim.rest_url)) >= 2  # the stream and REST keep-alive
            venue.fault(lambda f: f.http_status_storm(500, 10))
            await check_mismatch(s)

    with pytest.raises(VenueUnavailable):
        run(main())
    assert_all_closed(venue, _port(sim.rest_url), holder[0])


def test_stream_refused_is_an_error_and_closes(sim: SimThread, venue: Venue, run: Any) -> None:
    # An account the venue does not know: the private subscription is refused.
    target, key = target_of(sim, account_index=4242)
    with pytest.raises(DiagError, match="refused the subscription to account_orders:0:4242"):
        run(tp_mismatch(target, key, timeout_s=3.0))
    assert_all_closed(venue, _port(sim.rest_url))


# --- command line, in process ---------------------------------------------------------------------


def test_cli_in_process_exit_codes_and_json(
    sim: SimThread, venue: Venue, capsys: pytest.CaptureFixture[str]
) -> None:
    tp_book(venue)
    url = ["--rest-url", sim.rest_url]
    assert cli_main(["diagnose", "tp-side-vs-ro", *url, "--json"]) == EXIT_DIFFERENCES
    out = json.loads(capsys.readouterr().out)
    assert (out["tool"], out["tp_side"], out["not_reduce_only_cois"]) == (
        "tp-side-vs-ro",
        "sell",
        [13, 14],
    )
    assert main_tp_mismatch([*url, "--settle", "0.2", "--market", "ETH"]) == EXIT_OK
    assert "consistent" in capsys.readouterr().out
    assert main_tp_side_vs_ro([*url, "--market", "0", "--source", "ws"]) == EXIT_DIFFERENCES
    assert "client order indexes: 13, 14" in capsys.readouterr().out
    # Errors: exit 2, a clear message on stderr, no token anywhere.
    assert main_tp_mismatch([*url, "--account-index", "4242", "--timeout", "3"]) == EXIT_ERROR
    cap = capsys.readouterr()
    assert "error: the venue refused the subscription" in cap.err
    assert not TOKEN_RE.search(cap.out + cap.err)
    assert main_tp_side_vs_ro([*url, "--market", "DOGE", "--json"]) == EXIT_ERROR
    cap = capsys.readouterr()
    assert "market DOGE is not listed" in cap.err
    assert json.loads(cap.out) == {"ok": False, "error": json.loads(cap.out)["error"]}
    assert_all_closed(venue, _port(sim.rest_url))


def test_cli_config_errors_before_any_io(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MMFAST_API_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("MMFAST_API_KEY_FILE", raising=False)
    # sim mode with no running simulator named
    assert main_tp_mismatch([]) == EXIT_ERROR
    assert "--rest-url" in capsys.readouterr().err
    # sim mode connects to loopback only
    assert main_tp_mismatch(["--rest-url", "http://10.1.2.3:8080"]) == EXIT_ERROR
    assert "loopback" in capsys.readouterr().err
    # testnet needs a key, from the environment or a key file (never argv)
    cfg = tmp_path / "t.toml"
    cfg.write_text(Path(REPO / "mmfast/conf/testnet.toml").read_text())
    assert main_tp_side_vs_ro(["--config", str(cfg)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "MMFAST_API_PRIVATE_KEY" in err or "venue.account_index" in err


# --- as processes, against `mmfast sim` -----------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("MMFAST_API_PRIVATE_KEY", None)
    env.pop("MMFAST_API_KEY_FILE", None)
    return env


@pytest.fixture
def sim_process() -> Iterator[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mmfast.cli",
            "sim",
            "--port",
            "0",
            "--seed",
            "3",
            "--no-flow",
            "--no-speed-bumps",
            "--tier",
            "premium",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert proc.stdout is not None
        rest = proc.stdout.readline().split()[1]
        yield rest
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _post(url: str, body: dict[str, Any] | None = None, form: dict[str, str] | None = None) -> Any:
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        req = urllib.request.Request(url, data=data, method="POST")
    else:
        req = urllib.request.Request(
            url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _signed_orders(rest: str, orders: list[tuple[int, bool, int, int, bool]]) -> None:
    """Sign creates with mmfast's signer (a throwaway key) and send them with REST sendTx."""
    from lighter.signer_client import create_api_key

    from mmfast.connector.lighter.secret import ApiKey
    from mmfast.connector.lighter.signer import CreateOrderRequest, SignerWorker
    from mmfast.core.types import TimeInForce

    priv, pub, err = create_api_key()
    assert not err
    # The simulator verifies signatures: register the key through its control endpoint.
    _post(
        f"{rest}/_sim/api_keys",
        {"account_index": ACCOUNT, "api_key_index": TRADER_KEY, "public_key": pub},
    )

    async def main() -> None:
        w = SignerWorker(
            ApiKey(priv), account_index=ACCOUNT, api_key_index=TRADER_KEY, chain_id=7_357_001
        )
        w.start()
        try:
            nonce = _get(
                f"{rest}/api/v1/nextNonce?account_index={ACCOUNT}&api_key_index={TRADER_KEY}"
            )["nonce"]
            expiry = int(time.time() * 1000) + 3_600_000
            for i, (coi, is_ask, price, lots, ro) in enumerate(orders):
                tx = await w.sign(
                    CreateOrderRequest(
                        market=ETH,
                        client_order_index=coi,
                        base_amount=lots,
                        price=price,
                        is_ask=is_ask,
                        tif=TimeInForce.GTT,
                        nonce=nonce + i,
                        reduce_only=ro,
                        order_expiry_ms=expiry,
                    )
                )
                body = await asyncio.to_thread(
                    _post,
                    f"{rest}/api/v1/sendTx",
                    form={"tx_type": str(tx.tx_type), "tx_info": tx.tx_info},
                )
                assert body["code"] == 200
        finally:
            w.stop()

    asyncio.run(main())


def _sim_connections(rest: str) -> list[Any]:
    deadline = time.monotonic() + 5
    while True:
        conns = _get(f"{rest}/_sim/truth/connections")["result"]
        if not conns or time.monotonic() > deadline:
            return list(conns)
        time.sleep(0.05)


def test_tools_as_processes_against_mmfast_sim(sim_process: str) -> None:
    rest = sim_process
    port = _port(rest)
    # Long 500 lots through an out-of-band fill, then TP-side asks (one reduce-only).
    _post(
        f"{rest}/_sim/faults",
        {
            "kind": "out_of_band_fill",
            "args": {"account": ACCOUNT, "market": ETH, "side": "buy", "size": 500, "price": 0},
        },
    )
    _signed_orders(
        rest,
        [
            (11, True, 301_000, 200, True),
            (13, True, 302_000, 100, False),
            (21, False, 299_000, 100, False),
        ],
    )
    opened = _get(f"{rest}/_sim/truth/open_orders?account={ACCOUNT}&market={ETH}")["result"]
    assert len(opened) == 3

    def tool(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *argv, "--rest-url", rest, "--timeout", "5"],
            capture_output=True,
            text=True,
            timeout=60,
            env=_env(),
            cwd=REPO,
        )

    r = tool("scripts/diagnose_tp_side_vs_ro.py", "--json")
    assert r.returncode == EXIT_DIFFERENCES, r.stderr
    out = json.loads(r.stdout)
    assert (
        out["position_lots"],
        out["tp_side"],
        out["open_orders"],
        out["tp_side_orders"],
        out["tp_side_reduce_only"],
        out["not_reduce_only_cois"],
    ) == (500, "sell", 3, 2, 1, [13])
    r = tool("-m", "mmfast.cli", "diagnose", "tp-mismatch", "--settle", "0.2")
    assert r.returncode == EXIT_OK, r.stderr
    assert "3 on the account stream, 3 over REST" in r.stdout
    r = tool("scripts/diagnose_tp_mismatch.py", "--json", "--settle", "0.2")
    assert r.returncode == EXIT_OK and json.loads(r.stdout)["consistent"] is True
    assert _sim_connections(rest) == [] and client_sockets(port) == 0
    # One 500 is retried; a storm of 503s fails the first read: exit 2, everything closed.
    _post(f"{rest}/_sim/faults", {"kind": "http_status_storm", "args": {"status": 500, "n": 1}})
    r = tool("-m", "mmfast.cli", "diagnose", "tp-side-vs-ro")
    assert r.returncode == EXIT_DIFFERENCES, r.stderr
    _post(f"{rest}/_sim/faults", {"kind": "http_status_storm", "args": {"status": 503, "n": 50}})
    r = tool("-m", "mmfast.cli", "diagnose", "tp-mismatch")
    assert r.returncode == EXIT_ERROR
    assert "mmfast diagnose tp-mismatch: error: VenueUnavailable" in r.stderr
    assert "Traceback" not in r.stderr and not TOKEN_RE.search(r.stdout + r.stderr)
    assert _sim_connections(rest) == [] and client_sockets(port) == 0
