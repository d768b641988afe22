"""Reconciliation against the simulator: restart with orders left on the venue (adopted or
cancelled per config), the fail-closed triggers, out-of-band fills and liquidations (item 18),
leverage at start, and a canary key that must appear in no output."""

from __future__ import annotations

import base64
import contextlib
import io
import logging
from pathlib import Path

from test_orders_harness import (
    ACCOUNT,
    MARK,
    MARKET,
    bot,
    capture_logs,
    run,
    sim_config,
    stime,
    truth_open,
    until,
)

from mmfast.connector.lighter.orders import OrderEntryError
from mmfast.connector.lighter.signer import (
    CreateOrderRequest,
    MarginMode,
    SignerError,
    imf_for_leverage,
)
from mmfast.core.timesource import ScaledTime
from mmfast.core.types import OrderStatus, Side, TimeInForce
from mmfast.sim.thread import SimThread

__all__ = ["sim_config", "stime"]


async def _leave_orders(sim: SimThread, stime: ScaledTime, state: Path, n: int) -> list[int]:
    """A first run that places ``n`` orders and stops without cancelling them."""
    async with bot(sim, stime, state) as (conn, _):
        orders = [conn.place_limit(MARKET, Side.BUY, MARK - 300 - i, 100) for i in range(n)]
        assert await until(stime, lambda: all(o.status is OrderStatus.OPEN for o in orders))
        return [o.client_order_index for o in orders]


def test_restart_cancels_orders_left_on_the_venue(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    async def body() -> None:
        left = await _leave_orders(sim, stime, tmp_path, 3)
        assert len(truth_open(sim)) == 3
        async with bot(sim, stime, tmp_path) as (conn, _):
            rep = conn.reconciler.last_report
            assert rep is not None and rep.venue_open == 3 and len(rep.cancelled) == 3
            assert truth_open(sim) == []  # 0 orphans, before ready
            # The new run never reuses an id (the allocator starts above its mark).
            o = conn.place_limit(MARKET, Side.BUY, MARK - 250, 100)
            assert o.client_order_index > max(left)
            assert await until(stime, lambda: o.status is OrderStatus.OPEN)

    run(body())


def test_restart_adopts_orders_left_on_the_venue(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    async def body() -> None:
        left = await _leave_orders(sim, stime, tmp_path, 3)
        async with bot(sim, stime, tmp_path, unexpected_orders="adopt") as (conn, _):
            rep = conn.reconciler.last_report
            assert rep is not None and len(rep.adopted) == 3 and rep.cancelled == []
            for coi in left:
                t = conn.tracker.get(coi)
                assert t is not None and t.ours and t.status is OrderStatus.OPEN
            assert len(truth_open(sim)) == 3
            conn.cancel(left[0])  # adopted orders are ours to cancel by coi
            assert await until(stime, lambda: len(truth_open(sim)) == 2)

    run(body())


def test_fail_closed_order_still_open_after_3_cancel_attempts(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    async def body() -> None:
        await _leave_orders(sim, stime, tmp_path, 1)
        # Every cancel is accepted, then fails in the sequencer: the order stays open.
        sim.call(lambda s: s.faults.late_reject(10, code=21715))
        async with bot(sim, stime, tmp_path, wait_ready=False) as (conn, _):
            assert await until(stime, lambda: conn.reconcile_error is not None, 15.0)
            assert not conn.ready
            assert conn.reconcile_error.startswith("cancel_failed:")
            assert "still open after 3 cancel attempts" in conn.not_ready_reason
            assert len(truth_open(sim)) == 1
            # Fail closed: no new exposure while not ready.
            try:
                conn.place_limit(MARKET, Side.BUY, MARK - 900, 100)
            except OrderEntryError as exc:
                assert "not ready" in str(exc)
            else:
                raise AssertionError("an order was accepted while failed closed")
        sim.call(lambda s: s.faults.clear())

    run(body())


def test_fail_closed_on_position_mismatch(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    """The venue's position moves with no trade we can see (an ADL the streams never report):
    after replaying fills it differs from the venue's, so reconciliation fails closed."""

    async def body() -> None:
        async with bot(sim, stime, tmp_path, position_check_interval_s=1.0) as (conn, ev):

            def adl(s) -> None:  # type: ignore[no-untyped-def]
                from mmfast.sim.engine import Position

                acct = s.exchange.account(ACCOUNT)
                acct.positions.setdefault(MARKET, Position()).size += 70

            t0 = stime.monotonic_ns()
            sim.call(adl)
            assert await until(stime, lambda: conn.reconcile_error is not None, 15.0)
            assert conn.reconcile_error.startswith("position_mismatch:")
            # In the market's units (4 size decimals), with the lots the journal holds.
            assert (
                "venue position 0.0070, fills replayed 0.0000 (70 vs 0 lots)"
                in conn.reconcile_error
            ), conn.reconcile_error
            detected = conn.out_of_band_events[0][0]
            assert (detected - t0) / 1e9 <= 10.0  # within the position-check interval
            assert not conn.ready and any(p.market in (MARKET, None) for p in ev.pulls)

    run(body())


def test_fail_closed_when_rest_unreachable(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    async def body() -> None:
        async with bot(sim, stime, tmp_path, rest_unreachable_s=4.0) as (conn, _):
            sim.call(lambda s: s.faults.http_status_storm(503, 100_000))
            sim.call(lambda s: s.faults.drop(1006, conn=f"account_orders:{MARKET}:{ACCOUNT}"))
            assert await until(stime, lambda: conn.reconcile_error is not None, 30.0)
            assert conn.reconcile_error.startswith("rest_unreachable:")
            assert "REST API unreachable" in conn.readiness.failing()["orders:reconcile"]
            assert not conn.ready
            sim.call(lambda s: s.faults.clear())
            # It keeps trying: REST back, reconciled, ready again.
            assert await until(stime, lambda: conn.ready, 30.0), conn.not_ready_reason
            assert conn.reconcile_error is None

    run(body(), timeout_s=90.0)


def test_out_of_band_fill_and_liquidation_detected(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    """Item 18: an out-of-band fill and a liquidation are detected within the position-check
    interval (<= 10 s), quotes are pulled, no order is placed in reaction, and after
    reconciliation the position equals the venue's."""

    async def body() -> None:
        async with bot(sim, stime, tmp_path, position_check_interval_s=2.0) as (conn, ev):
            o = conn.place_limit(MARKET, Side.SELL, MARK + 400, 100)
            assert await until(stime, lambda: o.status is OrderStatus.OPEN)
            sent = conn.orders.txs_sent
            orders_before = sim.call(
                lambda s: len([x for x in s.exchange.orders.values() if x.account == ACCOUNT])
            )
            t0 = stime.monotonic_ns()
            sim.call(lambda s: s.faults.out_of_band_fill(ACCOUNT, MARKET, "buy", 120, 0))
            assert await until(stime, lambda: len(conn.out_of_band_events) >= 1, 10.0)
            assert (conn.out_of_band_events[0][0] - t0) / 1e9 <= 10.0
            assert any(p.market == MARKET for p in ev.pulls)
            assert await until(stime, lambda: conn.ready, 10.0)
            pos = sim.call(lambda s: s.truth.position(ACCOUNT, MARKET))
            assert pos.size == 120
            assert conn.tracker.venue_position(MARKET).size_lots == 120
            assert conn.tracker.position_mismatches() == {}
            n_events = len(conn.out_of_band_events)
            t1 = stime.monotonic_ns()
            sim.call(lambda s: s.faults.liquidation(ACCOUNT, MARKET))
            assert await until(stime, lambda: len(conn.out_of_band_events) > n_events, 10.0)
            assert (conn.out_of_band_events[n_events][0] - t1) / 1e9 <= 10.0
            assert await until(stime, lambda: o.status is OrderStatus.CANCELED, 10.0)
            assert o.cancel_reason == "canceled-liquidation"
            assert await until(stime, lambda: conn.ready, 10.0)
            assert conn.tracker.venue_position(MARKET).size_lots == 0
            # 0 corrective orders: nothing was sent in reaction to either event.
            assert conn.orders.txs_sent == sent
            orders_after = sim.call(
                lambda s: [x for x in s.exchange.orders.values() if x.account == ACCOUNT]
            )
            assert all(x.client_order_index == 0 for x in orders_after[orders_before:])

    run(body())


def test_leverage_applied_at_start(sim: SimThread, stime: ScaledTime, tmp_path: Path) -> None:
    """UpdateLeverage from the config is signed, checked and sent at start, before ready: the
    venue then holds the configured margin fraction and mode for the market."""

    async def body() -> None:
        async with bot(sim, stime, tmp_path, leverage={MARKET: (4, MarginMode.ISOLATED)}) as (
            conn,
            _,
        ):
            assert conn.ready
            assert sim.call(lambda s: s.truth.leverage(ACCOUNT, MARKET)) == (
                imf_for_leverage(4),
                int(MarginMode.ISOLATED),
            )
            assert not conn.orders.reject_codes

    run(body())


def test_leverage_refused_by_the_venue_fails_closed(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    """A leverage the venue refuses (above the market's maximum: 1000x) keeps the connector not
    ready with the venue's error, instead of quoting at a margin nobody asked for."""

    async def body() -> None:
        async with bot(
            sim, stime, tmp_path, wait_ready=False, leverage={MARKET: (1000, MarginMode.CROSS)}
        ) as (conn, _):
            assert await until(
                stime,
                lambda: (
                    "orders:leverage" in conn.readiness.failing()
                    and "FAILED" in conn.readiness.failing()["orders:leverage"]
                ),
                10.0,
            )
            reason = conn.readiness.failing()["orders:leverage"]
            assert "market 0" in reason and "21501" in reason
            assert not conn.ready
            assert conn.orders.reject_codes == {21501: 1}

    run(body())


def _key_forms(hex_key: str) -> list[str]:
    raw = bytes.fromhex(hex_key)
    forms = [hex_key, hex_key.upper(), "0x" + hex_key]
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        b = enc(raw).decode()
        forms += [b, b.rstrip("=")]
    return forms


def _leaks(text: str, forms: list[str]) -> list[str]:
    grams = {f[i : i + 16] for f in forms for i in range(len(f) - 15)}
    return [text[i : i + 16] for i in range(len(text) - 15) if text[i : i + 16] in grams]


def test_canary_key_appears_nowhere(sim: SimThread, stime: ScaledTime, tmp_path: Path) -> None:
    """Items 25/26 (the connector's half): a canary key through a full order flow with errors
    forced (signer refusal, bad arguments, API rejects, lost acks): logs at DEBUG (ours and the
    SDK's), stderr/stdout, exception texts and reprs, status output carry no part of it."""
    canary = "c0ffee" + "5eed" * 18 + "ba"
    assert len(canary) == 80
    out, err = io.StringIO(), io.StringIO()
    texts: list[str] = []

    async def body() -> None:
        with (
            capture_logs() as logs,
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            root = logging.getLogger()
            old = root.level
            root.setLevel(logging.DEBUG)
            root.addHandler(logs)
            try:
                async with bot(
                    sim,
                    stime,
                    tmp_path,
                    key=canary,
                    dbg=lambda m, *a: logging.getLogger("mmfast.core").debug(m, *a),
                ) as (conn, _):
                    sim.call(lambda s: s.faults.lose_acks(1, execute=True))
                    o = conn.place_limit(MARKET, Side.BUY, MARK - 300, 100)
                    bad = conn.place_limit(MARKET, Side.BUY, MARK - 301, 1)  # 21706
                    assert await until(
                        stime,
                        lambda: o.status is OrderStatus.OPEN and bad.status is OrderStatus.REJECTED,
                        10.0,
                    )
                    for call in (
                        lambda: conn.orders.place_limit(MARKET, Side.BUY, 0, 1),
                        lambda: conn.orders.place_limit(
                            MARKET, Side.BUY, MARK, 100, tif=TimeInForce.GTT, expiry_ms=1
                        ),
                    ):
                        try:
                            call()
                        except Exception as exc:
                            texts.extend([str(exc), repr(exc)])
                    try:  # a request the signer refuses, on the worker thread
                        await conn.signer.sign(
                            CreateOrderRequest(
                                MARKET, 1, 100, MARK, False, TimeInForce.GTT, 10**6, False, 0
                            )
                        )
                    except SignerError as exc:
                        texts.extend([str(exc), repr(exc)])
                    texts.extend(
                        [
                            repr(conn),
                            repr(conn.orders),
                            repr(conn.signer),
                            repr(conn.orders.signed_create(o.client_order_index)),
                            str(conn.status()),
                            repr(conn.orders.nonces),
                            repr(conn.tracker.get(o.client_order_index)),
                        ]
                    )
            finally:
                root.setLevel(old)
                root.removeHandler(logs)
        texts.extend(logs.lines)

    run(body())
    blob = "\n".join([*texts, out.getvalue(), err.getvalue()])
    assert len(texts) > 20 and "place_limit submit:" in blob and "SignerError" in blob
    assert "error=21706" in blob  # the API reject's result line
    assert _leaks(blob, _key_forms(canary)) == []
