"""A cancel-all confirmed while REST is rate-limited: the cancel-all goes over the order
WebSocket and the account's order stream confirms it; when that stream cannot (its frames held
back), the result is "unknown", never a guess."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_orders_harness import (
    ACCOUNT,
    MARK,
    MARKET,
    bot,
    run,
    sim_config,
    stime,
    truth_open,
    until,
)

from mmfast.core.timesource import ScaledTime
from mmfast.core.types import OrderStatus, Side
from mmfast.sim.thread import SimThread

__all__ = ["sim_config", "stime"]  # the harness's fixtures


def _storm(sim: SimThread) -> None:
    sim.call(lambda s: s.faults.http_status_storm(429, 100_000, retry_after_s=1.0))


def test_cancel_all_confirmed_by_the_account_stream_under_a_429_storm(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    async def body() -> None:
        async with bot(sim, stime, tmp_path) as (conn, _):
            orders = [conn.place_limit(MARKET, Side.BUY, MARK - 300 - i, 100) for i in range(3)]
            assert await until(stime, lambda: all(o.status is OrderStatus.OPEN for o in orders))
            _storm(sim)
            t0 = stime.monotonic_ns()
            left = await conn.cancel_all(MARKET, 8.0)
            took_s = (stime.monotonic_ns() - t0) / 1e9
            assert left == 0 and conn.cancel_confirmed_by == "account stream"
            # Once REST is held by the 429's Retry-After, the stream's word is taken at once
            # (waiting the hold out would prove nothing more).
            assert took_s < 1.0, took_s
            assert truth_open(sim) == []  # and it is true
            sim.call(lambda s: s.faults.clear())

    run(body())


def test_cancel_all_unknown_when_neither_rest_nor_the_stream_can_confirm(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    async def body() -> None:
        async with bot(sim, stime, tmp_path) as (conn, _):
            orders = [conn.place_limit(MARKET, Side.BUY, MARK - 300 - i, 100) for i in range(2)]
            assert await until(stime, lambda: all(o.status is OrderStatus.OPEN for o in orders))
            _storm(sim)
            # The account stream's frames are held: it still shows the orders open.
            ids = sim.call(lambda s: s.faults.stall(30.0, f"account_orders:{MARKET}:{ACCOUNT}"))
            assert ids
            with pytest.raises(TimeoutError, match="open orders unknown"):
                await conn.cancel_all(MARKET, 3.0)
            assert conn.cancel_confirmed_by != "account stream"
            sim.call(lambda s: s.faults.clear())

    run(body())
