"""Order entry under faults (reliability targets 8, 9, 10, 11, 12, 14), against the
simulator over real sockets; counts scaled down here, full counts under the ``soak`` marker."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_orders_harness import (
    ACCOUNT,
    KEY,
    MARK,
    MARKET,
    bot,
    make_sim_config,
    run,
    sendtx_count,
    sim_config,
    stime,
    truth_by_coi,
    truth_open,
    until,
)

from mmfast.connector.lighter.budget import BudgetLevel, Cost, Priority
from mmfast.connector.lighter.nonces import NonceState
from mmfast.core.timesource import ScaledTime
from mmfast.core.types import OrderStatus, Side
from mmfast.sim.config import SimConfig
from mmfast.sim.thread import SimThread

__all__ = ["sim_config", "stime"]

OTHER = 2002


def faults(sim: SimThread, fn: Any) -> Any:
    return sim.call(lambda s: fn(s.faults))


def order_conn(sim: SimThread) -> int:
    """The id of the order connection (the one WebSocket with no subscriptions); the
    simulator registers a connection just after the client sees the handshake done."""
    for _ in range(200):
        ids = [c["id"] for c in sim.call(lambda s: s.truth.connections()) if not c["subs"]]
        if len(ids) == 1:
            return int(ids[0])
        time.sleep(0.01)
    raise AssertionError(f"order connection not found: {ids}")


def venue_cois(sim: SimThread) -> list[int]:
    """client_order_index of every order the venue ever created for the account."""
    return sim.call(
        lambda s: [o.client_order_index for o in s.exchange.orders.values() if o.account == ACCOUNT]
    )


def _chain(task: Any) -> list[str]:
    out = []
    c = task.get_coro() if task is not None else None
    while c is not None and hasattr(c, "cr_frame"):
        f = c.cr_frame
        if f is not None:
            out.append(f"{f.f_code.co_name}:{f.f_lineno}")
        c = getattr(c, "cr_await", None)
    return out


def venue_nonce(sim: SimThread) -> int:
    return sim.call(lambda s: s.truth.next_nonce(ACCOUNT, KEY))


# ------------------------------------------------------------------------------ API rejects
@pytest.mark.parametrize("frames", [1, 4])
def test_pipeline_with_api_reject_in_the_middle(
    sim: SimThread, stime: ScaledTime, tmp_path: Path, frames: int
) -> None:
    """24 orders queued at once; the 12th is refused at the API level (below the minimum size,
    21706) inside a batch. Recovers: no duplicate client_order_index, every other order open
    exactly once, nonces consistent with the venue. One frame outstanding: 0 x 21104; several
    (acks matched in order): only frames already sent behind the refused one meet 21104,
    once each, and go again after the refresh."""

    async def body() -> None:
        async with bot(sim, stime, tmp_path, max_ws_frames=frames) as (conn, _):
            e = conn.orders
            # Slow acks: txs signed meanwhile queue up and go out as batches.
            faults(sim, lambda f: f.delay_acks(100))
            orders = [
                conn.place_limit(MARKET, Side.BUY, MARK - 200 - i, 10 if i == 11 else 100)
                for i in range(24)
            ]
            assert await until(
                stime,
                lambda: all(o.status in (OrderStatus.OPEN, OrderStatus.REJECTED) for o in orders),
            )
            bad = orders[11]
            assert bad.status is OrderStatus.REJECTED
            assert conn.tracker.get(bad.client_order_index).reject_code == 21706
            good = [o for o in orders if o is not bad]
            assert all(o.status is OrderStatus.OPEN for o in good)
            stale = e.reject_codes.get(21104, 0)
            if frames == 1:
                assert stale == 0
            else:
                assert e.ws_frames_peak > 1  # frames really were pipelined
                assert stale <= (frames - 1) * e.config.max_batch
            assert e.reject_codes.get(21706, 0) >= 1
            cois = venue_cois(sim)
            assert len(cois) == len(set(cois)) == 23
            assert sorted(cois) == sorted(o.client_order_index for o in good)
            if frames == 1:
                assert e.frames_ws < 24  # batches of consecutive nonces went out
                assert e.reject_codes.get(21706, 0) > 1  # a whole batch, then the one at fault
            faults(sim, lambda f: f.delay_acks(0))
            assert e.nonces.next_nonce == venue_nonce(sim)
            assert e.sends_while_blocked == 0
            # and the pipeline keeps working afterwards
            more = [conn.place_limit(MARKET, Side.SELL, MARK + 300 + i, 100) for i in range(8)]
            assert await until(stime, lambda: all(o.status is OrderStatus.OPEN for o in more))
            assert e.reject_codes.get(21104, 0) == stale

    run(body())


# ------------------------------------------------------------------------------ lost acks
def test_lost_ack_executed_is_found_never_resent_never_rejected(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    async def body() -> None:
        async with bot(sim, stime, tmp_path) as (conn, ev):
            e = conn.orders
            faults(sim, lambda f: f.lose_acks(1, execute=True))
            t0 = stime.monotonic_ns()
            o = conn.place_limit(MARKET, Side.BUY, MARK - 400, 100)
            assert await until(stime, lambda: o.status is OrderStatus.OPEN, 10.0)
            resolved_s = (stime.monotonic_ns() - t0) / 1e9
            # The stream may show it open before the ack times out; the frame still ends
            # UNKNOWN and is settled by the nonce refresh (consumed), then looked up.
            assert await until(stime, lambda: e.ack_timeouts == 1 and e.nonce_ready, 10.0)
            states = [s for c, s in ev.orders if c == o.client_order_index]
            assert OrderStatus.REJECTED not in states
            assert e.unknowns == 1
            assert e.txs_sent == 1 and e.identical_resends == 0  # never sent twice
            assert venue_cois(sim) == [o.client_order_index]
            assert resolved_s <= 10.0
            # The next order goes through with no 21104.
            o2 = conn.place_limit(MARKET, Side.BUY, MARK - 401, 100)
            assert await until(stime, lambda: o2.status is OrderStatus.OPEN)
            assert e.reject_codes == {}

    run(body())


def test_lost_ack_not_executed_resends_identical_bytes(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    async def body() -> None:
        async with bot(sim, stime, tmp_path) as (conn, ev):
            e = conn.orders
            faults(sim, lambda f: f.lose_acks(1, execute=False))
            o = conn.place_limit(MARKET, Side.BUY, MARK - 400, 100)
            coi = o.client_order_index
            assert await until(stime, lambda: e.signed_create(coi) is not None)
            first = e.signed_create(coi)
            assert await until(stime, lambda: o.status is OrderStatus.OPEN, 10.0)
            assert e.identical_resends == 1 and e.resigned == 0
            assert e.signed_create(coi) is first
            # The venue executed exactly the bytes signed the first time (same signature).
            rec = sim.call(
                lambda s: next(
                    r.info
                    for r in s.exchange.txs.values()
                    if r.account == ACCOUNT and r.nonce == first.nonce
                )
            )
            info = orjson.loads(rec) if isinstance(rec, (str, bytes)) else rec
            assert info == orjson.loads(first.tx_info)
            assert OrderStatus.REJECTED not in [s for c, s in ev.orders if c == coi]
            assert venue_cois(sim) == [coi]

    run(body())


def test_pipelining_stops_when_the_message_budget_runs_low(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    """Frames go out one per signed tx only while the rate budget is OK: once the WebSocket
    message budget runs low, txs signed meanwhile wait for the ack and go out as batches."""

    async def body() -> None:
        async with bot(sim, stime, tmp_path, max_ws_frames=4) as (conn, _):
            e = conn.orders
            faults(sim, lambda f: f.delay_acks(100))
            first = [conn.place_limit(MARKET, Side.BUY, MARK - 300 - i, 100) for i in range(6)]
            assert await until(stime, lambda: all(o.status is OrderStatus.OPEN for o in first))
            assert e.ws_frames_peak > 1
            # Spend the WebSocket message budget down to its low level.
            b = conn.budget
            while b.level is BudgetLevel.OK:
                assert b.try_acquire(Cost(ws_msgs=1), Priority.NORMAL)
            sent_before, rest_before = e.frames_ws, e.frames_rest
            e.ws_frames_peak = 0  # the peak of this phase
            more = [conn.place_limit(MARKET, Side.SELL, MARK + 300 + i, 100) for i in range(12)]
            assert await until(stime, lambda: all(o.status is OrderStatus.OPEN for o in more))
            assert e.frames_rest == rest_before  # still on the WebSocket
            assert e.ws_frames_peak == 1  # one frame at a time
            assert e.frames_ws - sent_before < 12  # the rest batched behind it
            cois = venue_cois(sim)
            assert len(cois) == len(set(cois)) == 18

    run(body())


def test_connection_cut_with_several_frames_outstanding(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    """Acks held back, so up to 4 frames wait for theirs; the order connection is cut then.
    Every tx of every outstanding frame is UNKNOWN (no invented reject), settled by the nonce
    refresh and the lookups: each order open exactly once, nonces equal to the venue's."""

    async def body() -> None:
        async with bot(sim, stime, tmp_path, max_ws_frames=4) as (conn, ev):
            e = conn.orders
            faults(sim, lambda f: f.delay_acks(300))
            orders = [
                conn.place_limit(
                    MARKET,
                    Side.BUY if i % 2 else Side.SELL,
                    MARK - 300 - i if i % 2 else MARK + 300 + i,
                    100,
                )
                for i in range(12)
            ]
            assert await until(stime, lambda: e.frames_outstanding >= 2, 5.0), e.status()
            cid = order_conn(sim)
            faults(sim, lambda f: f.drop("rst", conn=cid))
            faults(sim, lambda f: f.delay_acks(0))
            assert await until(
                stime, lambda: all(o.status is OrderStatus.OPEN for o in orders), 15.0
            ), e.status()
            assert e.unknowns >= 2  # more than one frame's txs were outstanding at the cut
            assert OrderStatus.REJECTED not in {s for _, s in ev.orders}
            cois = venue_cois(sim)
            assert sorted(cois) == sorted(o.client_order_index for o in orders)
            assert await until(stime, lambda: e.pending_txs == 0, 10.0)
            assert e.nonces.next_nonce == venue_nonce(sim)
            assert e.sends_while_blocked == 0

    run(body())


@pytest.mark.parametrize("executed", [True, False])
def test_lost_ack_with_several_frames_outstanding(
    sim: SimThread, stime: ScaledTime, tmp_path: Path, executed: bool
) -> None:
    """Four frames may await their acks and the oldest one's ack is lost (its txs executed or
    not): the next ack is then taken for it. Either way every order ends open exactly once,
    none is invented rejected, and the nonces end equal to the venue's."""

    async def body() -> None:
        async with bot(sim, stime, tmp_path, max_ws_frames=4) as (conn, ev):
            e = conn.orders
            faults(sim, lambda f: f.delay_acks(200))
            faults(sim, lambda f: f.lose_acks(1, execute=executed))
            orders = [
                conn.place_limit(
                    MARKET,
                    Side.BUY if i % 2 else Side.SELL,
                    MARK - 300 - i if i % 2 else MARK + 300 + i,
                    100,
                )
                for i in range(8)
            ]
            assert await until(stime, lambda: e.ws_frames_peak >= 2, 5.0), e.status()
            faults(sim, lambda f: f.delay_acks(0))
            assert await until(
                stime, lambda: all(o.status is OrderStatus.OPEN for o in orders), 15.0
            ), e.status()
            assert await until(stime, lambda: e.pending_txs == 0 and e.nonce_ready, 10.0)
            assert OrderStatus.REJECTED not in {s for _, s in ev.orders}
            cois = venue_cois(sim)
            assert sorted(cois) == sorted(o.client_order_index for o in orders)
            assert e.nonces.next_nonce == venue_nonce(sim)
            assert e.sends_while_blocked == 0
            # The loss was noticed: a later ack that cannot be the oldest frame's, a venue
            # refusal of the frames sent behind an unexecuted one, or the ack timeout.
            assert e.ack_mismatches + e.ack_timeouts + e.reject_codes.get(21104, 0) >= 1

    run(body())


def _ambiguous(n: int, seed: int, sim: SimThread, stime: ScaledTime, tmp_path: Path) -> None:
    """Item 8: n submits, each with an ambiguous outcome drawn from the seed: ack lost after
    execution, ack lost before the venue, ack delayed past the timeout, socket cut after send."""
    rng = random.Random(seed)
    kinds = ("lost_executed", "lost_not_sent", "delayed", "cut")

    async def body() -> None:
        async with bot(sim, stime, tmp_path) as (conn, ev):
            e = conn.orders
            slots: dict[int, int] = {}  # quote slot -> coi
            worst = 0.0
            half_open = 0
            for i in range(n):
                kind = kinds[rng.randrange(4)]
                if kind == "lost_executed":
                    faults(sim, lambda f: f.lose_acks(1, execute=True))
                elif kind == "lost_not_sent":
                    faults(sim, lambda f: f.lose_acks(1, execute=False))
                elif kind == "delayed":
                    faults(sim, lambda f: f.delay_acks(3_000, n=1))
                t0 = stime.monotonic_ns()
                side = Side.BUY if i % 2 == 0 else Side.SELL
                px = MARK - 300 - i if side is Side.BUY else MARK + 300 + i
                # A long expiry: the soak runs for longer than a quote's default 10 min.
                o = conn.place_limit(
                    MARKET, side, px, 100, expiry_ms=stime.wall_ms() + 20 * 86_400_000
                )
                slots[i] = o.client_order_index
                if kind == "cut":
                    ids = [
                        c["id"] for c in sim.call(lambda s: s.truth.connections()) if not c["subs"]
                    ]
                    await stime.sleep(0.001)
                    if ids:
                        faults(sim, lambda f, cid=ids[0]: f.drop("rst", conn=cid))
                    else:  # the venue already lost the connection: the send went nowhere
                        half_open += 1
                assert await until(stime, lambda o=o: o.status is OrderStatus.OPEN, 10.0), (
                    kind,
                    o,
                    e.status(),
                )
                worst = max(worst, (stime.monotonic_ns() - t0) / 1e9)
                # After a cut the connector reconciles before it is ready again.
                assert await until(
                    stime,
                    lambda: (
                        conn.ready
                        and e.connected
                        and e.pending_txs == 0
                        and e.nonces.unknown_count == 0
                    ),
                    10.0,
                ), (
                    i,
                    conn.readiness.failing(),
                    e.status(),
                    conn.tracker.unknown_orders(),
                    _chain(conn._reconciler_task),
                )
            states = {s for _, s in ev.orders}
            assert OrderStatus.REJECTED not in states  # 0 locally invented rejects
            assert all(conn.tracker.get(c).status is OrderStatus.OPEN for c in slots.values())
            assert worst <= 10.0
            cois = venue_cois(sim)
            assert len(cois) == len(set(cois)) == n  # one live order per slot, ids reused
            assert sorted(cois) == sorted(slots.values())
            live = truth_open(sim)
            assert len(live) == n
            assert e.api_rejects == e.reject_codes.get(21104, 0)  # only stale-nonce retries
            assert half_open <= n // 4

    run(body(), timeout_s=60.0 + n * 1.0)


def test_ambiguous_submits(sim: SimThread, stime: ScaledTime, tmp_path: Path) -> None:
    _ambiguous(16, 8, sim, stime, tmp_path)


@pytest.mark.soak
def test_ambiguous_submits_soak(sim: SimThread, stime: ScaledTime, tmp_path: Path) -> None:
    _ambiguous(1000, 8, sim, stime, tmp_path)


# ------------------------------------------------------------------------------ late reject
def test_late_reject_marked_rejected_within_5s(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    """Item 9: HTTP 200 / ack, then the sequencer fails the tx: REJECTED <= 5 s later (tx
    lookup by the hash sendTx returned); nonce state consistent, next orders fine."""

    async def body() -> None:
        async with bot(sim, stime, tmp_path) as (conn, _):
            e = conn.orders
            faults(sim, lambda f: f.late_reject(1, code=21739))
            t0 = stime.monotonic_ns()
            o = conn.place_limit(MARKET, Side.BUY, MARK - 400, 100)
            assert await until(stime, lambda: o.status is OrderStatus.REJECTED, 6.0)
            assert (stime.monotonic_ns() - t0) / 1e9 <= 5.0
            assert conn.tracker.get(o.client_order_index).reject_code == 21739
            assert e.late_rejects == 1
            assert e.nonces.next_nonce == venue_nonce(sim)
            o2 = conn.place_limit(MARKET, Side.BUY, MARK - 401, 100)
            assert await until(stime, lambda: o2.status is OrderStatus.OPEN)
            assert e.reject_codes == {}

    run(body())


# ------------------------------------------------------------------------------ duplicate coi
def test_venue_duplicate_coi_reconciles_not_retries(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    """Item 10: the venue holds a live order with the id our allocator hands out next (a state
    directory restored from an old copy): its 21728 triggers reconciliation, never a retry,
    and the order is never called rejected; reconciliation maps the id to the venue's order."""

    async def body() -> None:
        async with bot(sim, stime, tmp_path) as (conn, _):
            e = conn.orders
            runs = conn.reconciler.runs
            n = conn.coi.next()  # the next place_limit gets n + 1

            def plant(s: Any) -> None:
                o = s.exchange.place_direct(ACCOUNT, MARKET, False, MARK - 900, 100)
                o.client_order_index = n + 1
                s.exchange.account(ACCOUNT).by_coi[n + 1] = o

            sim.call(lambda s: s.run_engine(lambda: plant(s)))
            dup = conn.place_limit(MARKET, Side.BUY, MARK - 500, 100)
            assert dup.client_order_index == n + 1
            assert await until(stime, lambda: conn.reconciler.runs > runs and conn.ready, 10.0)
            assert e.reject_codes.get(21728) == 1
            assert e.txs_sent == 1  # sent once, not retried
            assert dup.status is OrderStatus.OPEN  # the venue's order with that id
            assert dup.order_index == truth_by_coi(sim, n + 1).order_index
            assert len(truth_open(sim)) == 1


# ------------------------------------------------------------------------------ cancel too late
def test_cancel_too_late_fill_booked_once(
    sim_config: SimConfig, stime: ScaledTime, tmp_path: Path
) -> None:
    """Item 11: pending cancel, then a fill, then the cancel fails: the fill is booked once,
    the order ends FILLED, at most 3 cancel attempts."""
    st = SimThread(make_sim_config(cancel_delay_ms=400), stime)
    st.start()
    try:
        st.call(lambda s: s.exchange.add_account(OTHER, 10**12))

        async def body() -> None:
            async with bot(st, stime, tmp_path) as (conn, ev):
                o = conn.place_limit(MARKET, Side.BUY, MARK - 10, 200)
                assert await until(stime, lambda: o.status is OrderStatus.OPEN)
                conn.cancel(o)
                await stime.sleep(0.05)  # the cancel waits in the sequencer
                st.call(
                    lambda s: s.run_engine(
                        lambda: s.exchange.place_direct(OTHER, MARKET, True, MARK - 10, 200, tif=0)
                    )
                )
                assert await until(stime, lambda: o.status is OrderStatus.FILLED, 5.0)
                await stime.sleep(2.0)  # the cancel fails after; lookups run
                t = conn.tracker.get(o.client_order_index)
                assert o.status is OrderStatus.FILLED and t.fill_lots == 200
                assert (
                    len([f for f in ev.fills if f.client_order_index == o.client_order_index]) == 1
                )
                assert t.cancel_attempts <= 3
                assert truth_by_coi(st, o.client_order_index).status == "filled"

        run(body())
    finally:
        st.stop()


# ------------------------------------------------------------------------------ partial fills
def test_partial_fills_random_splits_replayed(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    """Item 12: random splits, a fill before the ack is seen, trades replayed on resubscribe:
    quantity, average price and position exact, 0 double counts."""
    rng = random.Random(12)
    sim.call(lambda s: s.exchange.add_account(OTHER, 10**12))

    async def body() -> None:
        async with bot(sim, stime, tmp_path) as (conn, ev):
            # Resting liquidity first: our IOC fills at once (fill before we see the ack).
            for k in range(3):
                sim.call(
                    lambda s, k=k: s.run_engine(
                        lambda: s.exchange.place_direct(OTHER, MARKET, True, MARK + 1 + k, 60)
                    )
                )
            ioc = conn.place_limit(MARKET, Side.BUY, MARK + 3, 180, tif=0)
            bid = conn.place_limit(MARKET, Side.BUY, MARK - 20, 1000)
            assert await until(stime, lambda: bid.status is OrderStatus.OPEN)
            left = 1000
            while left > 0:
                take = min(left, rng.randrange(1, 250))
                sim.call(
                    lambda s, q=take: s.run_engine(
                        lambda: s.exchange.place_direct(OTHER, MARKET, True, MARK - 20, q, tif=0)
                    )
                )
                left -= take
            assert await until(stime, lambda: bid.status is OrderStatus.FILLED)
            assert ioc.status is OrderStatus.FILLED
            n_fills = len(ev.fills)
            # Replays: the account stream reconnects and re-sends recent trades.
            faults(sim, lambda f: f.drop(1006, conn=f"account_all_trades:{ACCOUNT}"))
            assert await until(stime, lambda: conn.account.stream.disconnects >= 1)
            assert await until(stime, lambda: conn.ready, 10.0)
            assert len(ev.fills) == n_fills
            assert conn.tracker.duplicate_fills > 0
            truth = sim.call(lambda s: s.truth.fills(ACCOUNT, MARKET))
            assert len(truth) == n_fills
            t = conn.tracker.get(bid.client_order_index)
            vol = sum(f.size for f in truth if (f.maker_order_index == bid.order_index))
            notional = sum(
                f.size * f.price for f in truth if f.maker_order_index == bid.order_index
            )
            assert (t.fill_lots, t.fill_notional) == (vol, notional) == (1000, 1000 * (MARK - 20))
            pos = sim.call(lambda s: s.truth.position(ACCOUNT, MARKET))
            assert pos.size == 1180
            assert conn.tracker.venue_position(MARKET).size_lots == 1180
            assert conn.tracker.position_mismatches() == {}

    run(body())


# ------------------------------------------------------------------------------ nonces
def _nonce_run(n: int, sim: SimThread, stime: ScaledTime, tmp_path: Path, frames: int = 1) -> None:
    """Item 14: n txs (creates and cancels) as fast as they are queued, the order connection
    dropped mid-run and a 21104 injected once: 0 x 21104 besides the injected one, which costs
    one nextNonce refresh and one retry; 0 signed sends between a reconnect and its refresh."""

    async def body() -> None:
        async with bot(sim, stime, tmp_path, reconcile_timeout_s=20.0, max_ws_frames=frames) as (
            conn,
            _,
        ):
            e = conn.orders
            live: list[Any] = []
            drops = 0
            injected = False
            sent = 0
            i = 0
            while sent < n:
                if len(live) >= 40:
                    for o in live[:20]:
                        if not o.status.is_terminal:
                            conn.cancel(o)
                            sent += 1
                    live = live[20:]
                if not conn.ready:  # a strategy quotes only while ready
                    assert await until(stime, lambda: conn.ready, 20.0), conn.not_ready_reason
                o = conn.place_limit(
                    MARKET,
                    Side.BUY if i % 2 else Side.SELL,
                    MARK - 500 - i % 200 if i % 2 else MARK + 500 + i % 200,
                    100,
                )
                live.append(o)
                sent += 1
                i += 1
                if i % 50 == 0:
                    await until(stime, lambda: e.pending_txs < 20, 10.0)
                if sent >= n // 3 and drops == 0 and e.connected:
                    cid = order_conn(sim)
                    faults(sim, lambda f, cid=cid: f.drop("rst", conn=cid))
                    drops += 1
                    assert await until(stime, lambda: not e.connected, 5.0)
                    assert await until(stime, lambda: conn.ready and e.connected, 15.0), (
                        conn.status()["failing"],
                        e.status(),
                    )
                if sent >= (2 * n) // 3 and not injected:
                    assert await until(
                        stime,
                        lambda: e.pending_txs == 0 and e.nonces.state is NonceState.READY,
                        20.0,
                    ), str(e.status())
                    refreshes = e.nonces.refreshes
                    resigned = e.resigned
                    # Someone else used our nonce: the next tx gets a 21104.
                    sim.call(
                        lambda s: setattr(
                            s.exchange._key(s.exchange.account(ACCOUNT), KEY, create=False),
                            "nonce",
                            s.truth.next_nonce(ACCOUNT, KEY) + 1,
                        )
                    )
                    injected = True
                    probe = conn.place_limit(MARKET, Side.BUY, MARK - 450, 100)
                    assert await until(stime, lambda p=probe: p.status is OrderStatus.OPEN, 10.0)
                    live.append(probe)
                    assert e.reject_codes.get(21104, 0) == 1
                    assert e.nonces.refreshes == refreshes + 1, str(e.status())  # one refresh
                    assert e.resigned - resigned <= 1  # at most one retry
            assert await until(stime, lambda: e.pending_txs == 0, 20.0)
            assert e.reject_codes.get(21104, 0) == 1  # only the injected one
            assert e.sends_while_blocked == 0
            assert max(e.inflight_peak.values()) <= 16
            cois = venue_cois(sim)
            assert len(cois) == len(set(cois))
            assert e.nonces.next_nonce == venue_nonce(sim)
        # From the venue's own request log: after each drop of the order connection, no
        # sendtx arrived on a WebSocket (only the new connection can carry one) before a
        # nextNonce request that came after the drop. (A REST send already on its way when the
        # drop happened may land first: it was sent before the connection was lost.)
        drops_at = [r.time_ns for r in sim.call(lambda s: s.truth.faults("drop"))]
        log = sim.call(lambda s: s.truth.request_log())
        assert drops_at
        for t in drops_at:
            after = [(ts, name) for ts, name in log if ts >= t]
            first_send = next((ts for ts, nm in after if nm.startswith("WS jsonapi/sendtx")), None)
            first_nonce = next((ts for ts, nm in after if nm.endswith("nextNonce")), None)
            assert first_nonce is not None
            assert first_send is None or first_nonce <= first_send

    run(body(), timeout_s=60.0 + n / 50)


@pytest.mark.parametrize("frames", [1, 4])
def test_nonce_protocol_under_load(
    sim: SimThread, stime: ScaledTime, tmp_path: Path, frames: int
) -> None:
    _nonce_run(600, sim, stime, tmp_path, frames)


@pytest.mark.soak
@pytest.mark.parametrize("frames", [1, 4])
def test_nonce_protocol_under_load_soak(stime: ScaledTime, tmp_path: Path, frames: int) -> None:
    """The nonce protocol over 10,000 txs. The volume quota is off: the run's ~5,000 creates
    would spend the premium tier's 1,000 and every create after that is refused (23000), which
    is not what this run is about."""
    st = SimThread(make_sim_config(volume_quota=False), stime)
    st.start()
    try:
        _nonce_run(10_000, st, stime, tmp_path, frames)
    finally:
        st.stop()


def test_inflight_cap_with_sequencer_delay(stime: ScaledTime, tmp_path: Path) -> None:
    """At most 16 order txs in flight per market while the sequencer holds them (a maker
    delay): the venue never answers 21720 and our count never exceeds 16."""
    st = SimThread(make_sim_config(maker_delay_ms=300), stime)
    st.start()
    try:

        async def body() -> None:
            async with bot(st, stime, tmp_path) as (conn, _):
                e = conn.orders
                orders = [
                    conn.place_limit(MARKET, Side.BUY, MARK - 100 - i, 100) for i in range(48)
                ]
                assert await until(
                    stime, lambda: all(o.status is OrderStatus.OPEN for o in orders), 15.0
                ), str(e.status())
                assert e.inflight_peak[MARKET] == 16
                assert e.reject_codes.get(21720, 0) == 0 and e.api_rejects == 0

        run(body())
    finally:
        st.stop()


def test_order_frames_keep_going_during_a_rest_429_storm(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    """Every REST request answered 429 (Retry-After 5 s): REST is held, the order WebSocket
    is not (separate budgets): orders placed and cancelled meanwhile go out and execute."""
    from mmfast.connector.lighter.rest import RateLimited

    async def body() -> None:
        async with bot(sim, stime, tmp_path) as (conn, _):
            sim.call(lambda s: s.faults.http_status_storm(429, 100_000, retry_after_s=5.0))
            with pytest.raises(RateLimited):
                await conn.rest.account(ACCOUNT)  # REST refused: its budget blocked
            assert conn.budget.level is BudgetLevel.BLOCKED
            assert conn.budget.order_level is BudgetLevel.OK
            frames0 = sendtx_count(sim)
            orders = [conn.place_limit(MARKET, Side.BUY, MARK - 300 - i, 100) for i in range(4)]
            assert await until(
                stime, lambda: all(o.status is OrderStatus.OPEN for o in orders), timeout_s=3.0
            )
            for o in orders[:2]:
                conn.cancel(o)
            assert await until(stime, lambda: len(truth_open(sim)) == 2, timeout_s=3.0)
            sent = sendtx_count(sim) - frames0  # sendtx requests (a batch counts once)
            print(f"order requests during the REST 429 storm: {sent} (6 txs executed)")
            assert sent >= 2 and conn.budget.level is BudgetLevel.BLOCKED
            sim.call(lambda s: s.faults.clear())

    run(body())
