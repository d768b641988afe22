"""Order entry against the simulator: place, modify, cancel, cancel-all, fills and positions,
REST fallback, debug lines, is_coi_open; terminal states of reliability item 13."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_orders_harness import (
    ACCOUNT,
    MARK,
    MARKET,
    bot,
    capture_logs,
    run,
    sim_config,
    stime,
    truth_by_coi,
    truth_open,
    until,
)

from mmfast.connector.lighter.orders import OrderEntryError
from mmfast.core.timesource import ScaledTime
from mmfast.core.types import OrderStatus, Side, TimeInForce
from mmfast.sim.thread import SimThread

__all__ = ["sim_config", "stime"]  # fixtures used here

OTHER = 2002  # a second account that trades with ours


def add_other(sim: SimThread) -> None:
    sim.call(lambda s: s.exchange.add_account(OTHER, 10**12))


def other_order(sim: SimThread, is_ask: bool, price: int, size: int, tif: int = 1) -> None:
    sim.call(
        lambda s: s.run_engine(
            lambda: s.exchange.place_direct(OTHER, MARKET, is_ask, price, size, tif=tif)
        )
    )


@pytest.mark.parametrize("signer_kind", ["native", "official"])
def test_place_modify_cancel_confirmed_by_truth(
    sim: SimThread, stime: ScaledTime, tmp_path: Path, signer_kind: str
) -> None:
    async def body() -> None:
        with capture_logs() as logs:
            async with bot(
                sim, stime, tmp_path, dbg=_dbg_to("mmfast.core"), signer_kind=signer_kind
            ) as (conn, ev):
                o = conn.place_limit(MARKET, Side.BUY, MARK - 500, 200, tif=TimeInForce.POST_ONLY)
                assert o.status is OrderStatus.PENDING_NEW  # accepted is not live
                coi = o.client_order_index
                assert await until(stime, lambda: o.status is OrderStatus.OPEN)
                t = truth_by_coi(sim, coi)
                assert (t.status, t.price, t.initial, t.is_ask, t.tif) == (
                    "open",
                    MARK - 500,
                    200,
                    False,
                    2,
                )
                assert o.order_index == t.order_index
                # Expiry: a short wall-clock default within the venue's 5 min..30 d window.
                ahead_ms = t.expiry_ms - stime.wall_ms()
                assert 5 * 60_000 < ahead_ms <= 10 * 60_000
                assert await conn.orders.is_coi_open(coi)

                conn.modify(o, MARK - 700, 300)
                assert await until(stime, lambda: truth_by_coi(sim, coi).price == MARK - 700)
                t = truth_by_coi(sim, coi)
                assert (t.status, t.initial) == ("open", 300)
                assert await until(stime, lambda: o.price_ticks == MARK - 700)
                assert o.size_lots == 300

                conn.cancel(o)
                assert o.status is OrderStatus.PENDING_CANCEL
                assert await until(stime, lambda: o.status is OrderStatus.CANCELED)
                assert truth_by_coi(sim, coi).status == "canceled"
                assert o.cancel_reason == "canceled"
                assert not await conn.orders.is_coi_open(coi)
                assert truth_open(sim) == []
                states = [s for c, s in ev.orders if c == coi]
                assert states[0] is OrderStatus.OPEN and states[-1] is OrderStatus.CANCELED
                lat = conn.orders.latency()
                assert lat["total"]["n"] == 3 and lat["sign"]["p50_us"] > 0
        text = "\n".join(logs.lines)
        m = re.search(
            r"place_limit submit: symbol=ETH mid=\S+ market_index=0 "
            rf"client_order_index={coi} post_only=True reduce_only=False "
            r"price_i=299500 base_i=200",
            text,
        )
        assert m, text[-2000:]
        assert re.search(
            rf"place_limit result: client_order_index={coi} tx_hash=[0-9a-f]{{80}}", text
        )

    run(body())


def _dbg_to(name: str):  # type: ignore[no-untyped-def]
    import logging

    lg = logging.getLogger(name)
    return lambda msg, *a: lg.debug(msg, *a)


def test_fills_and_position_equal_the_venue(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    """Partial fills from another account, an IOC that takes, and a reduce: every fill and the
    position equal the venue's, exactly in ticks and lots."""
    add_other(sim)

    async def body() -> None:
        async with bot(sim, stime, tmp_path) as (conn, ev):
            bid = conn.place_limit(MARKET, Side.BUY, MARK - 10, 1000)
            assert await until(stime, lambda: bid.status is OrderStatus.OPEN)
            for size in (130, 270, 55):  # partial fills against our bid
                other_order(sim, True, MARK - 10, size, tif=0)
            assert await until(stime, lambda: bid.filled_lots == 455)
            assert bid.status is OrderStatus.PARTIALLY_FILLED
            other_order(sim, True, MARK + 20, 400)  # resting offer we take with an IOC
            ioc = conn.place_limit(MARKET, Side.BUY, MARK + 25, 150, tif=TimeInForce.IOC)
            assert await until(stime, lambda: ioc.status is OrderStatus.FILLED)
            other_order(sim, False, MARK + 5, 100)  # a bid we sell into, reduce-only
            red = conn.place_limit(
                MARKET, Side.SELL, MARK + 5, 100, tif=TimeInForce.IOC, reduce_only=True
            )
            assert await until(stime, lambda: red.status is OrderStatus.FILLED)
            truth_fills = sim.call(lambda s: s.truth.fills(ACCOUNT, MARKET))
            assert await until(stime, lambda: len(ev.fills) == len(truth_fills))
            mine = sorted(ev.fills, key=lambda f: f.trade_id)
            assert [f.trade_id for f in mine] == [t.trade_id for t in truth_fills]
            for f, t in zip(mine, truth_fills, strict=True):
                assert (f.price_ticks, f.size_lots) == (t.price, t.size)
                ours_maker = t.maker_account == ACCOUNT
                assert f.is_maker == ours_maker
                assert f.fee == (t.maker_fee if ours_maker else t.taker_fee)
            pos = sim.call(lambda s: s.truth.position(ACCOUNT, MARKET))
            assert pos.size == 455 + 150 - 100
            tr = conn.tracker
            assert await until(
                stime,
                lambda: (
                    tr.venue_position(MARKET) is not None
                    and tr.venue_position(MARKET).size_lots == pos.size
                ),
            )
            assert tr.replayed_position(MARKET).size_lots == pos.size
            assert tr.position_mismatches() == {}
            assert bid.filled_lots == 455 and tr.get(bid.client_order_index).fill_lots == 455

    run(body())


def test_rest_fallback_and_cancel_all_scope(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    """REST only (no order WebSocket): place in two markets, cancel_all(0) leaves market 1;
    cancel-all over every market is refused without the explicit option."""

    async def body() -> None:
        async with bot(sim, stime, tmp_path, markets=(0, 1), use_ws=False) as (conn, _):
            a = [conn.place_limit(0, Side.BUY, MARK - 100 - i, 100) for i in range(3)]
            b = conn.place_limit(1, Side.SELL, 650_000 + 50, 100)
            assert await until(stime, lambda: all(o.status is OrderStatus.OPEN for o in [*a, b]))
            assert conn.orders.frames_ws == 0 and conn.orders.frames_rest >= 1
            with pytest.raises(OrderEntryError):
                conn.orders.cancel_all(None, all_markets=True)
            remaining = await conn.cancel_all(0, 5.0)
            assert remaining == 0
            assert truth_open(sim, 0) == []
            assert [o.client_order_index for o in truth_open(sim, 1)] == [b.client_order_index]
            assert await until(stime, lambda: all(o.status is OrderStatus.CANCELED for o in a))
            assert b.status is OrderStatus.OPEN

    run(body())


def test_ws_refused_falls_back_to_rest(sim: SimThread, stime: ScaledTime, tmp_path: Path) -> None:
    """The order WebSocket is cut and refused: orders keep flowing over REST sendTx, after a
    nonce refresh."""

    async def body() -> None:
        async with bot(sim, stime, tmp_path) as (conn, _):
            e = conn.orders
            ws_conn = [c["id"] for c in sim.call(lambda s: s.truth.connections()) if not c["subs"]]
            assert len(ws_conn) == 1  # the order connection subscribes to nothing
            refreshes = e.nonces.refreshes
            sim.call(lambda s: s.faults.refuse_connections(True))
            sim.call(lambda s: s.faults.drop("rst", conn=ws_conn[0]))
            assert await until(stime, lambda: not e.connected)
            o = conn.place_limit(MARKET, Side.BUY, MARK - 300, 100)
            assert await until(stime, lambda: o.status is OrderStatus.OPEN)
            assert e.frames_rest >= 1 and e.nonces.refreshes > refreshes
            sim.call(lambda s: s.faults.refuse_connections(False))

    run(body())


def test_terminal_states_post_only_reduce_only_self_trade(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    """Item 13: post-only that would cross, reduce-only with no position, self-trade (expire
    maker): each ends in the venue's terminal state, and nothing is re-sent for them."""
    add_other(sim)

    async def body() -> None:
        async with bot(sim, stime, tmp_path) as (conn, _):
            other_order(sim, True, MARK + 10, 500)  # an offer to cross
            po = conn.place_limit(MARKET, Side.BUY, MARK + 10, 100, tif=TimeInForce.POST_ONLY)
            ro = conn.place_limit(
                MARKET, Side.SELL, MARK - 1000, 100, tif=TimeInForce.IOC, reduce_only=True
            )
            maker = conn.place_limit(MARKET, Side.SELL, MARK + 5, 100)
            assert await until(stime, lambda: maker.status is OrderStatus.OPEN)
            taker = conn.place_limit(MARKET, Side.BUY, MARK + 5, 100, tif=TimeInForce.IOC)
            done = [po, ro, maker, taker]
            assert await until(stime, lambda: all(o.status.is_terminal for o in done))
            assert (po.status, po.cancel_reason) == (OrderStatus.CANCELED, "canceled-post-only")
            assert (ro.status, ro.cancel_reason) == (OrderStatus.CANCELED, "canceled-reduce-only")
            assert (maker.status, maker.cancel_reason) == (
                OrderStatus.CANCELED,
                "canceled-self-trade",
            )
            for o in done:
                assert (
                    truth_by_coi(sim, o.client_order_index).status == o.cancel_reason
                    or o.status is OrderStatus.FILLED
                    or o is taker
                )
            assert conn.orders.txs_sent == 4 and conn.orders.api_rejects == 0

    run(body())


def test_order_socket_rolls_over_between_answers_with_every_tx_answered(
    stime: ScaledTime, tmp_path: Path
) -> None:
    """The venue drops connections at 60 simulated seconds; the connector replaces each at 20,
    the order socket only while no frame awaits its answer (answers are matched in order).
    Two orders re-priced in turn every second, up to 4 frames in flight."""
    from test_orders_harness import make_sim_config

    sim = SimThread(make_sim_config(ws_max_lifetime_s=60), stime)
    sim.start()

    async def body() -> None:
        async with bot(
            sim,
            stime,
            tmp_path,
            max_ws_frames=4,
            conn_kw={"ws_max_age_s": 20.0, "connect_timeout_s": 30.0},
        ) as (conn, _):
            orders = [
                conn.place_limit(
                    MARKET, Side.BUY, MARK - 500 - 10 * i, 100, tif=TimeInForce.POST_ONLY
                )
                for i in range(2)
            ]
            assert await until(stime, lambda: all(o.status is OrderStatus.OPEN for o in orders))
            t0 = stime.monotonic_ns()
            n = 0
            while stime.monotonic_ns() - t0 < 100 * 1_000_000_000:
                i = n % 2
                conn.modify(orders[i], MARK - 500 - 10 * i - 5 * (n // 2 % 2), 100)
                n += 1
                # 60 frames a minute, well within the WebSocket budget with the roll-overs'
                # subscribes: every frame goes over the WebSocket.
                await stime.sleep(1.0)
            assert await until(
                stime,
                lambda: all(
                    truth_by_coi(sim, o.client_order_index).price == o.price_ticks for o in orders
                ),
            )
            ws = conn.orders.ws
            assert ws is not None
            st = ws.stats()
            # Replaced about every 20 s, never lost, and the venue never had to drop one.
            assert st["rollovers"] >= 3 and (st["connects"], st["disconnects"]) == (1, 0), st
            assert sim.call(lambda s: dict(s.rule_drops)) == {"lifetime": 0, "idle": 0}
            status = conn.orders.status()
            # Every tx answered on the socket it went out on: no reject, no unknown outcome,
            # nothing sent over REST instead.
            assert {
                k: status[k]
                for k in (
                    "api_rejects",
                    "frames_rest",
                    "unknowns",
                    "ack_timeouts",
                    "ack_mismatches",
                )
            } == dict.fromkeys(
                ("api_rejects", "frames_rest", "unknowns", "ack_timeouts", "ack_mismatches"), 0
            )
            assert status["acks"] == status["txs_sent"] >= n + 2
            assert n >= 90 and all(o.status is OrderStatus.OPEN for o in orders)

    try:
        run(body(), timeout_s=120)
    finally:
        sim.stop()
