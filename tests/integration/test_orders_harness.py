"""Harness for the order-entry integration tests (imported by the other test_orders_* files),
and the start-up test: a connector with order entry reaches ready against the simulator.

Every test runs the real connector (market data, account streams, the order WebSocket, the
real lighter-sdk signer on its worker thread) against ``mmfast.sim`` over real sockets on
127.0.0.1, with one ScaledTime shared by both. Figures are read from the simulator's truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mmfast._core.signer import public_key
from mmfast.connector.lighter.config import LighterConfig
from mmfast.connector.lighter.connector import LighterConnector
from mmfast.connector.lighter.native_signer import InlineSigner
from mmfast.connector.lighter.orders import OrderEntryConfig
from mmfast.connector.lighter.secret import ApiKey
from mmfast.connector.lighter.signer import SignerWorker
from mmfast.core.events import EventBus, FillReceived, OrderUpdated, PullQuotes
from mmfast.core.timesource import ScaledTime
from mmfast.core.types import OrderStatus
from mmfast.sim.config import SimConfig
from mmfast.sim.thread import SimThread

SCALE = 10.0
ACCOUNT = 1001
KEY = 7
MARKET = 0
MARK = 300_000  # ETH mark price in the simulator's default markets (ticks)
# A throwaway key (not a real one): deterministic, so a failing run replays.
TEST_KEY = "5a" * 40


def make_sim_config(**kw: Any) -> SimConfig:
    # The premium tier the connector's budget keeps to (the simulator's default is standard).
    base: dict[str, Any] = dict(
        seed=5,
        ws_ping_interval_ms=10_000,
        ws_pong_timeout_ms=30_000,
        speed_bumps=False,
        tier="premium",
    )
    base.update(kw)
    return SimConfig(**base)


def make_time(scale: float = SCALE) -> ScaledTime:
    # The venue's wall clock starts 6 h behind the real one: the signer stamps ExpiredAt from
    # the real clock (+10 min), so scaled time can run ~6 h ahead before txs expire (soaks).
    # Not more: auth-token deadlines (venue clock + 7 h) must stay ahead of the real clock.
    return ScaledTime(scale, start_wall_ms=time.time_ns() // 1_000_000 - 6 * 3_600_000)


@pytest.fixture
def stime() -> ScaledTime:
    return make_time()


@pytest.fixture
def sim_config() -> SimConfig:
    return make_sim_config()


class Events:
    """What the connector published on the bus."""

    def __init__(self, bus: EventBus) -> None:
        self.orders: list[tuple[int, OrderStatus]] = []
        self.fills: list[Any] = []
        self.pulls: list[PullQuotes] = []
        bus.subscribe(
            OrderUpdated, lambda e: self.orders.append((e.order.client_order_index, e.order.status))
        )
        bus.subscribe(FillReceived, lambda e: self.fills.append(e.fill))
        bus.subscribe(PullQuotes, self.pulls.append)


@contextlib.asynccontextmanager
async def bot(
    sim: SimThread,
    stime: ScaledTime,
    state_dir: Path,
    *,
    key: str = TEST_KEY,
    markets: tuple[int, ...] = (MARKET,),
    wait_ready: bool = True,
    dbg: Callable[..., None] | None = None,
    signer_kind: str = "native",
    conn_kw: dict[str, Any] | None = None,
    **orders_kw: Any,
) -> AsyncIterator[tuple[LighterConnector, Events]]:
    """A started connector with order entry; stopped (signer too) on exit. ``signer_kind``:
    "native" (InlineSigner, the default of a run) or "official" (SignerWorker); ``conn_kw``:
    LighterConfig settings over the harness's."""
    signer: Any
    if signer_kind == "native":
        signer = InlineSigner(
            ApiKey(key),
            account_index=ACCOUNT,
            api_key_index=KEY,
            chain_id=sim.config.chain_id,
            pool_size=32,
            check=False,
        )
    else:
        signer = SignerWorker(
            ApiKey(key), account_index=ACCOUNT, api_key_index=KEY, chain_id=sim.config.chain_id
        )
    signer.start()
    # The simulator verifies signatures: register the key's public half, as a run does.
    sim.register_api_key(ACCOUNT, KEY, public_key(ApiKey(key).reveal()).hex())
    bus = EventBus()
    events = Events(bus)
    ocfg: dict[str, Any] = dict(
        state_dir=str(state_dir), ack_timeout_s=2.0, check_interval_s=0.5, reconcile_timeout_s=10.0
    )
    ocfg.update(orders_kw)
    ccfg: dict[str, Any] = dict(
        rest_url=sim.rest_url,
        ws_url=sim.ws_url,
        account_index=ACCOUNT,
        api_key_index=KEY,
        markets=markets,
        seed=3,
        # 0.5 s real at scale 10: room for a loaded 2-core machine
        ping_idle_s=10.0,
        pong_timeout_s=5.0,
    )
    ccfg.update(conn_kw or {})
    conn = LighterConnector(
        LighterConfig(**ccfg),
        signer,
        time=stime,
        bus=bus,
        signer=signer,
        orders=OrderEntryConfig(**ocfg),
        dbg=dbg,
    )
    try:
        await conn.start()
        if wait_ready:
            assert await conn.wait_ready(20.0), conn.status()
        yield conn, events
    finally:
        await conn.stop()
        signer.stop()


def run(coro: Any, timeout_s: float = 60.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


async def until(
    stime: ScaledTime, cond: Callable[[], bool], timeout_s: float = 10.0, step_s: float = 0.05
) -> bool:
    """Wait (simulated seconds) until ``cond()``."""
    deadline = stime.monotonic_ns() + int(timeout_s * 1e9)
    while not cond():
        if stime.monotonic_ns() >= deadline:
            return False
        await stime.sleep(step_s)
    return True


def truth_open(sim: SimThread, market: int | None = MARKET) -> list[Any]:
    return sim.call(lambda s: s.truth.open_orders(ACCOUNT, market))


def truth_by_coi(sim: SimThread, coi: int) -> Any:
    return sim.call(lambda s: s.truth.order_by_coi(ACCOUNT, coi))


def sendtx_count(sim: SimThread) -> int:
    """Txs the venue received: WS frames and REST calls (batches count their txs apart)."""
    counts = sim.call(lambda s: s.truth.request_counts())
    return sum(v for k, v in counts.items() if "sendtx" in k.lower())


class LogCapture(logging.Handler):
    """Every record of the mmfast and lighter loggers, rendered (message and traceback)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def capture_logs() -> Iterator[LogCapture]:
    h = LogCapture()
    loggers = [logging.getLogger(n) for n in ("mmfast", "lighter", "")]
    old = [lg.level for lg in loggers]
    for lg in loggers[:2]:
        lg.setLevel(logging.DEBUG)
        lg.addHandler(h)
    try:
        yield h
    finally:
        for lg, lvl in zip(loggers, old, strict=True):
            lg.setLevel(lvl)
            with contextlib.suppress(ValueError):
                lg.removeHandler(h)


# ------------------------------------------------------------------------------------- tests
def test_ready_with_order_entry(sim: SimThread, stime: ScaledTime, tmp_path: Path) -> None:
    """Start: nonce fetched before anything is signed, reconciled, ready; nothing sent."""

    async def body() -> None:
        async with bot(sim, stime, tmp_path) as (conn, _):
            assert conn.ready
            st = conn.status()
            assert st["reconcile_error"] is None
            assert conn.orders is not None and conn.orders.nonce_ready
            assert conn.orders.nonces.next_nonce == sim.call(
                lambda s: s.truth.next_nonce(ACCOUNT, KEY)
            )
            assert conn.orders.connected  # its own connection, apart from market data
            assert (
                conn.orders.ws is not conn.market_data.stream
                and conn.orders.ws is not conn.account.stream
            )
            assert conn.reconciler is not None and conn.reconciler.runs == 1
        log = sim.call(lambda s: s.truth.request_log("GET /api/v1/nextNonce"))
        assert len(log) >= 1

    run(body())
