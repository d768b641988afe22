"""Maker-only API keys and skip-nonce recovery against the simulator over real sockets:
the simulator refuses a maker-only key's taker-capable create (21511) while order entry,
configured maker-only, never sends one; skip-nonce recovery ends the simulator's 21104 cases
without a nextNonce fetch when every skipped nonce is proven lost, and with one when not."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from test_orders_harness import (
    ACCOUNT,
    KEY,
    MARK,
    MARKET,
    TEST_KEY,
    bot,
    run,
    sendtx_count,
    sim_config,
    stime,
    until,
)
from test_strategy_sim import Run, _cleanup, cfg_text

from mmfast._core.signer import public_key
from mmfast.connector.lighter.orders import OrderEntryError
from mmfast.connector.lighter.secret import ApiKey
from mmfast.core.timesource import ScaledTime
from mmfast.core.types import OrderStatus, Side, TimeInForce
from mmfast.run import EXIT_OK
from mmfast.sim.engine import TX_CANCEL_ALL, TX_CANCEL_ORDER, TX_CREATE_ORDER, TX_MODIFY_ORDER
from mmfast.sim.thread import SimThread

__all__ = ["_cleanup", "sim_config", "stime"]


def register_maker_only(sim: SimThread) -> None:
    sim.register_api_key(ACCOUNT, KEY, public_key(ApiKey(TEST_KEY).reveal()).hex(), maker_only=True)


def venue_nonce(sim: SimThread) -> int:
    return sim.call(lambda s: s.truth.next_nonce(ACCOUNT, KEY))


def next_nonce_requests(sim: SimThread) -> int:
    return len(sim.call(lambda s: s.truth.request_log("GET /api/v1/nextNonce")))


# ------------------------------------------------------------------------------ maker-only
def test_simulator_refuses_a_gtt_create_from_a_maker_only_key(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    """Order entry not told the key is maker-only sends a GTT create: the venue refuses it
    with 21511 at the API (nonce kept); a post-only create of the same key rests."""

    async def body() -> None:
        register_maker_only(sim)
        async with bot(sim, stime, tmp_path) as (conn, _):
            e = conn.orders
            now = stime.wall_ms()
            gtt = conn.place_limit(
                MARKET, Side.BUY, MARK - 300, 100, tif=TimeInForce.GTT, expiry_ms=now + 600_000
            )
            assert await until(stime, lambda: gtt.status is OrderStatus.REJECTED)
            assert conn.tracker.get(gtt.client_order_index).reject_code == 21511
            quote = conn.place_limit(MARKET, Side.BUY, MARK - 300, 100)
            assert await until(stime, lambda: quote.status is OrderStatus.OPEN)
            assert e.nonces.next_nonce == venue_nonce(sim)
        assert sim.call(lambda s: s.exchange.accounts[ACCOUNT].keys[KEY].maker_only)

    run(body())


def test_maker_only_order_entry_never_sends_a_taker_create(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    async def body() -> None:
        register_maker_only(sim)
        async with bot(sim, stime, tmp_path, maker_only=True) as (conn, _):
            before = sendtx_count(sim)
            for tif in (TimeInForce.IOC, TimeInForce.GTT):
                with pytest.raises(OrderEntryError, match="maker-only API key"):
                    conn.place_limit(
                        MARKET,
                        Side.SELL,
                        MARK - 1000,
                        100,
                        tif=tif,
                        expiry_ms=0 if tif is TimeInForce.IOC else stime.wall_ms() + 600_000,
                    )
            await asyncio.sleep(0.05)
            assert sendtx_count(sim) == before  # nothing reached the venue
            q = conn.place_limit(MARKET, Side.SELL, MARK + 300, 100)
            assert await until(stime, lambda: q.status is OrderStatus.OPEN)
            conn.modify(q, MARK + 310, 100)
            assert await until(stime, lambda: q.price_ticks == MARK + 310)
            conn.cancel(q)
            assert await until(stime, lambda: q.status is OrderStatus.CANCELED)
            assert conn.orders.reject_codes.get(21511, 0) == 0

    run(body())


def test_bot_quotes_end_to_end_with_a_maker_only_key(tmp_path: Path) -> None:
    """The whole runner, [venue] maker_only (and skip_nonce_recovery) on: the simulator has
    the key maker-only, the bot quotes and is filled, and every tx of its key the venue saw
    is a post-only create, a modify or a cancel; none was refused as not allowed."""
    text = cfg_text().replace(
        "[market]", "[venue]\nmaker_only = true\nskip_nonce_recovery = true\n[market]", 1
    )
    r = Run(tmp_path, text)
    acct, key_index = r.cfg.venue.account_index, r.cfg.venue.api_key_index
    assert r.cfg.venue.maker_only and acct is not None and key_index is not None

    code = asyncio.run(r.go(6.0))
    assert code == EXIT_OK, r.out.getvalue() + r.err.getvalue()

    def key_txs(s: Any) -> list[tuple[int, dict[str, Any]]]:
        return [
            (t.type, t.fields)
            for t in s.exchange.txs.values()
            if t.account == acct and t.api_key == key_index
        ]

    assert r.sim.call(lambda s: s.exchange.accounts[acct].keys[key_index].maker_only)
    txs = r.sim.call(key_txs)
    creates = [f for t, f in txs if t == TX_CREATE_ORDER]
    assert len(creates) >= 4
    assert all(f["TimeInForce"] == 2 for f in creates)  # post-only
    assert {t for t, _ in txs} <= {TX_CREATE_ORDER, TX_MODIFY_ORDER, TX_CANCEL_ORDER, TX_CANCEL_ALL}
    assert not [x for x in r.records() if "21511" in str(x)]
    assert r.truth(lambda t: t.open_orders(acct, MARKET)) == []


# ------------------------------------------------------------------------------ skip-nonce
@pytest.mark.parametrize("frames", [1, 4])
def test_api_reject_in_the_middle_recovers_by_skip_nonce_without_a_fetch(
    sim: SimThread, stime: ScaledTime, tmp_path: Path, frames: int
) -> None:
    """24 orders queued at once, the 12th refused at the API (below the minimum size, 21706):
    its nonce and those of every tx sent behind it (21104, several frames out) are lost, and
    every one has the venue's answer. Recovery steps over them with skip-nonce: no nextNonce
    request after the start, every other order open exactly once, nonces equal to the
    venue's."""

    async def body() -> None:
        async with bot(sim, stime, tmp_path, max_ws_frames=frames, skip_nonce_recovery=True) as (
            conn,
            _,
        ):
            e = conn.orders
            fetches = next_nonce_requests(sim)
            sim.call(lambda s: s.faults.delay_acks(100))  # txs queue up behind slow acks
            orders = [
                conn.place_limit(MARKET, Side.BUY, MARK - 200 - i, 10 if i == 11 else 100)
                for i in range(24)
            ]
            assert await until(
                stime,
                lambda: all(o.status in (OrderStatus.OPEN, OrderStatus.REJECTED) for o in orders),
            )
            sim.call(lambda s: s.faults.delay_acks(0))
            bad = orders[11]
            assert bad.status is OrderStatus.REJECTED
            assert all(o.status is OrderStatus.OPEN for o in orders if o is not bad)
            cois = sim.call(
                lambda s: [
                    o.client_order_index for o in s.exchange.orders.values() if o.account == ACCOUNT
                ]
            )
            assert sorted(cois) == sorted(o.client_order_index for o in orders if o is not bad)
            assert e.nonces.skips >= 1
            assert next_nonce_requests(sim) == fetches  # no fetch: skip-nonce did it
            assert e.nonces.next_nonce == venue_nonce(sim)
            assert e.sends_while_blocked == 0
            more = [conn.place_limit(MARKET, Side.SELL, MARK + 300 + i, 100) for i in range(4)]
            assert await until(stime, lambda: all(o.status is OrderStatus.OPEN for o in more))

    run(body())


def test_nonce_taken_by_another_sender_falls_back_to_the_fetch(
    sim: SimThread, stime: ScaledTime, tmp_path: Path
) -> None:
    """The other 21104 case: the venue's nonce moved past ours (another sender on the key).
    The skip tx cannot go back, gets its own 21104, and the next refresh asks nextNonce."""

    async def body() -> None:
        async with bot(sim, stime, tmp_path, skip_nonce_recovery=True) as (conn, _):
            e = conn.orders
            fetches = next_nonce_requests(sim)
            sim.call(
                lambda s: setattr(
                    s.exchange._key(s.exchange.account(ACCOUNT), KEY, create=False),
                    "nonce",
                    s.truth.next_nonce(ACCOUNT, KEY) + 5,
                )
            )
            probe = conn.place_limit(MARKET, Side.BUY, MARK - 450, 100)
            assert await until(stime, lambda: probe.status is OrderStatus.OPEN)
            assert e.reject_codes.get(21104, 0) == 2  # the probe, then its skip attempt
            assert e.nonces.skips == 1
            assert next_nonce_requests(sim) == fetches + 1
            assert e.nonces.next_nonce == venue_nonce(sim)

    run(body())


def test_default_recovery_is_the_fetch(sim: SimThread, stime: ScaledTime, tmp_path: Path) -> None:
    async def body() -> None:
        async with bot(sim, stime, tmp_path) as (conn, _):
            e = conn.orders
            fetches = next_nonce_requests(sim)
            bad = conn.place_limit(MARKET, Side.BUY, MARK - 200, 10)  # 21706 at the API
            good = conn.place_limit(MARKET, Side.BUY, MARK - 201, 100)
            assert await until(stime, lambda: good.status is OrderStatus.OPEN)
            assert bad.status is OrderStatus.REJECTED
            assert e.nonces.skips == 0 and next_nonce_requests(sim) >= fetches + 1

    run(body())
