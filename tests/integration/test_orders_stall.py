"""The event loop stalled (blocked here; a SIGSTOP in the process tests): the connector reports
it before acting on anything it knew, pulls the quotes, reads its nonces and orders from the
venue again, and is ready again once reconciled; what changed on the venue meanwhile (an
order its guard cancelled) is known before the next order goes out."""

from __future__ import annotations

import time
from pathlib import Path

from test_orders_harness import (
    MARK,
    MARKET,
    bot,
    run,
    sim_config,
    stime,
    truth_open,
    until,
)

from mmfast.core.events import ConnectorState
from mmfast.core.timesource import ScaledTime
from mmfast.core.types import OrderStatus, Side
from mmfast.sim.thread import SimThread

__all__ = ["sim_config", "stime"]  # the harness's fixtures


def test_a_stalled_loop_pulls_and_reconciles_before_the_next_order(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    async def body() -> None:
        async with bot(sim, stime, tmp_path) as (conn, events):
            states: list[ConnectorState] = []
            conn.signals.bus.subscribe(ConnectorState, states.append)
            orders = [conn.place_limit(MARKET, Side.BUY, MARK - 300 - i, 100) for i in range(2)]
            assert await until(stime, lambda: all(o.status is OrderStatus.OPEN for o in orders))
            runs0 = conn.reconciler.runs
            pulls0 = len(events.pulls)
            assert conn.stall.stalls == 0  # a loop that ran: no stall so far

            # While the loop is blocked, something else (a guard) cancels one of the orders.
            def cancel_first(s: object) -> bool:
                eng = s.exchange  # type: ignore[attr-defined]
                o = next(
                    x
                    for x in eng.orders.values()
                    if x.client_order_index == orders[0].client_order_index
                )
                return bool(eng.cancel_direct(o))

            time.sleep(0.3)
            assert sim.call(cancel_first)
            time.sleep(1.2)  # 1.5 s host in all: over max_loop_stall_ms (1 s)
            # The first thing the loop runs after the stall reports it.
            assert await until(stime, lambda: conn.stall.stalls == 1, timeout_s=2.0)
            assert conn.stall.last_stall_ms >= 1000
            assert any("event loop stalled" in p.reason for p in events.pulls[pulls0:])
            assert states and not states[0].ready  # not ready at once: nonces, reconcile
            # Ready again only once reconciled, and the venue's truth is known by then.
            assert await until(
                stime, lambda: conn.ready and conn.reconciler.runs > runs0, timeout_s=20.0
            ), conn.status()
            assert orders[0].status is OrderStatus.CANCELED
            # The other one is still ours and as the venue shows it (pulling it is the
            # strategy's answer to the pull; no strategy runs here).
            assert orders[1].status is OrderStatus.OPEN
            assert [o.client_order_index for o in truth_open(sim)] == [orders[1].client_order_index]
            assert conn.status()["loop"]["stalls"] == 1
            o = conn.place_limit(MARKET, Side.BUY, MARK - 400, 100)
            assert await until(stime, lambda: o.status is OrderStatus.OPEN)

    run(body())
