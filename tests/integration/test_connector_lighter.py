"""LighterConnector against the simulator over real sockets on 127.0.0.1 (no faults here).

Time is a ScaledTime shared by the simulator and the connector, so deadlines and backoffs take
a fraction of real time and every figure is asserted in simulated time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from mmfast._core.book import ASK, BID
from mmfast.connector.lighter.auth import SignerTokenProvider
from mmfast.connector.lighter.config import LighterConfig
from mmfast.connector.lighter.connector import LighterConnector
from mmfast.core.events import BookUpdated, ConnectorState, EventBus, PullQuotes
from mmfast.core.timesource import ScaledTime
from mmfast.sim.config import FlowConfig, SimConfig
from mmfast.sim.thread import SimThread

SCALE = 20.0
ACCOUNT = 1001
KEY = 5


def make_sim_config(**kw: Any) -> SimConfig:
    # Server pings every 10 s: each is answered with a pong that counts against the client's
    # 200 messages a minute, as on the venue.
    # The premium tier the connector's budget keeps to (the simulator's default is standard).
    base: dict[str, Any] = dict(
        seed=11,
        ws_ping_interval_ms=10_000,
        ws_pong_timeout_ms=30_000,
        speed_bumps=False,
        flow=FlowConfig(),
        tier="premium",
    )
    base.update(kw)
    return SimConfig(**base)


@pytest.fixture
def stime() -> ScaledTime:
    return ScaledTime(SCALE)


@pytest.fixture
def sim_config() -> SimConfig:
    return make_sim_config()


class Recorder:
    """Collects the connector's events from the bus."""

    def __init__(self, bus: EventBus) -> None:
        self.states: list[ConnectorState] = []
        self.pulls: list[PullQuotes] = []
        self.book_events = 0
        bus.subscribe(ConnectorState, self.states.append)
        bus.subscribe(PullQuotes, self.pulls.append)
        bus.subscribe(BookUpdated, self._book)

    def _book(self, ev: BookUpdated) -> None:
        self.book_events += 1


def connector_config(sim: SimThread, markets: tuple[int, ...] = (0, 1), **kw: Any) -> LighterConfig:
    base: dict[str, Any] = dict(
        rest_url=sim.rest_url,
        ws_url=sim.ws_url,
        account_index=ACCOUNT,
        api_key_index=KEY,
        markets=markets,
        seed=3,
    )
    base.update(kw)
    return LighterConfig(**base)


async def signer_provider(
    chain_id: int, sim: SimThread | None = None
) -> tuple[SignerTokenProvider, Any]:
    """A token provider on lighter-sdk's signer with a throwaway key (no network calls); its
    public key is registered with ``sim`` (the simulator verifies auth tokens)."""
    import lighter
    from lighter.signer_client import create_api_key

    priv, pub, err = create_api_key()
    assert err is None
    if sim is not None:
        sim.register_api_key(ACCOUNT, KEY, pub)
    client = lighter.SignerClient(
        url="http://127.0.0.1:1",
        account_index=ACCOUNT,
        api_private_keys={KEY: priv},
        chain_id=chain_id,
    )
    return SignerTokenProvider(client, KEY), client


async def run_connector(
    sim: SimThread, stime: ScaledTime, body: Callable[[LighterConnector, Recorder], Any], **cfg: Any
) -> None:
    provider, client = await signer_provider(sim.config.chain_id, sim)
    bus = EventBus()
    rec = Recorder(bus)
    conn = LighterConnector(connector_config(sim, **cfg), provider, time=stime, bus=bus)
    try:
        await conn.start()
        await body(conn, rec)
    finally:
        await conn.stop()
        await client.close()


def run(coro: Any, timeout_s: float = 60.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


def sim_levels(sim: SimThread, market: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The simulator's aggregated book and its nonce, read atomically on its loop."""
    return sim.call(lambda s: (s.exchange.levels(market), s.exchange.markets[market].book_nonce))


# ------------------------------------------------------------------------------------- tests
def test_ready_with_metadata_books_and_account_streams(sim: SimThread, stime: ScaledTime) -> None:
    async def body(conn: LighterConnector, rec: Recorder) -> None:
        assert await conn.wait_ready(10.0), conn.readiness.failing()
        eth = conn.market_data.markets[0]
        assert (eth.size_decimals, eth.price_decimals, eth.min_base_lots) == (4, 2, 50)
        assert eth.min_quote_micro == 10_000_000 and eth.taker_fee_1e6 == 196
        assert eth.default_imf_1e4 == 500 and eth.is_active
        for m in (0, 1):
            assert conn.market_data.books[m].in_sync()
            book = conn.market_data.books[m]
            assert book.level_count(BID) + book.level_count(ASK) > 0
        await stime.sleep(2.0)
        assert rec.book_events > 0
        assert conn.market_data.stats[0].mark_price_ticks > 0
        assert conn.account.user_stats  # user_stats first frame was read
        assert rec.states and rec.states[-1].ready
        assert conn.rest.sessions_opened == 1
        # The market view reads the parts' own objects.
        view = conn.market_view(0)
        assert view is conn.market_view(0) and view.book is conn.market_data.books[0]
        assert view.info is conn.market_data.markets[0] and view.ready
        assert view.stats is conn.market_data.stats[0] and view.trades is conn.market_data.trades[0]
        assert view.user_stats is conn.account.user_stats and view.budget is conn.budget
        assert view.in_flight() == 0  # no order entry on this connector
        assert view.order_record(1) is None and view.venue_statuses() == {}

    run(run_connector(sim, stime, body))


def test_book_equals_simulator_at_aligned_nonces(sim: SimThread, stime: ScaledTime) -> None:
    """Sample the simulator's book and ours whenever their nonces align (30 s of flow)."""

    async def body(conn: LighterConnector, rec: Recorder) -> None:
        assert await conn.wait_ready(10.0), (conn.readiness.failing(), conn.status())
        aligned = 0
        for _ in range(300):
            await stime.sleep(0.1)
            for m in (0, 1):
                (asks, bids), nonce = sim_levels(sim, m)
                book = conn.market_data.books[m]
                if book.nonce != nonce:
                    continue
                aligned += 1
                assert book.top(ASK, 10_000) == sorted(asks)
                assert book.top(BID, 10_000) == sorted(bids, reverse=True)
        assert aligned >= 20, aligned
        assert conn.market_data.gaps == 0 and conn.market_data.stream is not None
        assert conn.market_data.stream.malformed == 0

    run(run_connector(sim, stime, body))


def test_rest_endpoints_and_account_stream(
    sim: SimThread, stime: ScaledTime, caplog: pytest.LogCaptureFixture
) -> None:
    """Every REST call of the issue, one session for the connector's life, the order showing up
    on the account stream, and no auth token in any captured log record."""
    caplog.set_level(logging.DEBUG)
    tokens_seen: list[str] = []

    async def body(conn: LighterConnector, rec: Recorder) -> None:
        assert await conn.wait_ready(10.0), conn.readiness.failing()
        assert conn.tokens is not None
        tokens_seen.append(await conn.tokens.get())
        rest = conn.rest
        nonce = await rest.next_nonce(ACCOUNT, KEY)
        assert nonce == sim.call(lambda s: s.truth.next_nonce(ACCOUNT, KEY))
        acct = await rest.account(ACCOUNT)
        assert acct["index"] == ACCOUNT
        client = signer_client[0]
        expiry = stime.wall_ms() + 3_600_000
        txs = []
        for i in range(3):
            tx_type, tx_info, _h, err = client.sign_create_order(
                0,
                7000 + i,
                1000,
                290_000 - i,
                0,
                client.ORDER_TYPE_LIMIT,
                client.ORDER_TIME_IN_FORCE_POST_ONLY,
                False,
                0,
                expiry,
                nonce=nonce + i,
                api_key_index=KEY,
            )
            assert err is None
            txs.append((tx_type, tx_info))
        res = await rest.send_tx(*txs[0])
        assert isinstance(res.tx_hash, str) and len(res.tx_hash) == 80
        assert res.volume_quota_remaining == conn.budget.volume_quota_remaining
        batch = await rest.send_tx_batch([t for t, _ in txs[1:]], [i for _, i in txs[1:]])
        assert isinstance(batch.tx_hash, tuple) and len(batch.tx_hash) == 2
        tx = await rest.tx(res.tx_hash)
        assert tx["hash"] == res.tx_hash
        for _ in range(100):  # the account stream reports the orders open
            await stime.sleep(0.05)
            if len(conn.account.account_orders.get(0, {})) >= 3:
                break
        cois = {o["client_order_index"] for o in conn.account.account_orders[0].values()}
        assert {7000, 7001, 7002} <= cois
        active = await rest.account_active_orders(ACCOUNT, 0)
        assert {o["client_order_index"] for o in active} >= {7000, 7001, 7002}
        by_coi = await rest.account_orders(ACCOUNT, [7000, 7002, 424242])
        assert sorted(o["client_order_index"] for o in by_coi) == [7000, 7002]
        with pytest.raises(ValueError):
            await rest.account_orders(ACCOUNT, list(range(1, 22)))
        page = await rest.account_inactive_orders(ACCOUNT, limit=10)
        assert page["orders"] == [] and "next_cursor" in page
        assert await conn.cancel_all(0, 5.0) == 3  # part 1: reports what is still open
        assert conn.rest.sessions_opened == 1
        session = conn.rest.session
        assert session is not None and not session.closed
        sessions.append(session)

    signer_client: list[Any] = []
    sessions: list[Any] = []

    async def main() -> None:
        provider, client = await signer_provider(sim.config.chain_id, sim)
        signer_client.append(client)
        bus = EventBus()
        rec = Recorder(bus)
        conn = LighterConnector(connector_config(sim), provider, time=stime, bus=bus)
        try:
            await conn.start()
            await body(conn, rec)
        finally:
            await conn.stop()
            await client.close()

    run(main())
    assert sessions and sessions[0].closed  # closed on stop
    text = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert caplog.records  # debug logging was on and captured
    for tok in tokens_seen:
        assert tok not in text
        assert tok.split(":")[3] not in text


# The roll-over runs: timeouts with room for a loaded machine at 20x; skew is not what they
# test (a millisecond of real jitter is 20 of venue time).
ROLL_CFG: dict[str, Any] = dict(request_timeout_s=60.0, max_clock_skew_ms=10_000)


def _roll_sim(lifetime_s: int) -> tuple[ScaledTime, SimThread]:
    """A started simulator (20x) that drops connections at ``lifetime_s`` (the venue: 24 h)."""
    stime = ScaledTime(SCALE)
    sim = SimThread(make_sim_config(ws_max_lifetime_s=lifetime_s), stime)
    sim.start()
    return stime, sim


def _roll_over_run(max_age_s: float) -> dict[str, Any]:
    """The connector for 200 simulated seconds against a venue that drops connections at
    2 minutes (the venue's 24 h, scaled down), with connections replaced at ``max_age_s``."""
    stime, sim = _roll_sim(120)
    out: dict[str, Any] = {}

    async def body(conn: LighterConnector, rec: Recorder) -> None:
        assert await conn.wait_ready(30.0), conn.readiness.failing()
        seen = len(rec.states)
        t0 = stime.monotonic_ns()
        aligned = mismatched = 0
        not_ready = 0
        while stime.monotonic_ns() - t0 < 200 * 1_000_000_000:
            await stime.sleep(1.0)
            if not conn.ready:
                not_ready += 1
            for m in (0, 1):
                (asks, bids), nonce = sim_levels(sim, m)
                book = conn.market_data.books[m]
                if book.nonce == nonce:
                    aligned += 1
                    mismatched += book.top(ASK, 10_000) != sorted(asks) or book.top(
                        BID, 10_000
                    ) != sorted(bids, reverse=True)
        streams = {"market": conn.market_data.stream, "account": conn.account.stream}
        out.update(
            streams={
                k: {
                    n: s.stats()[n]
                    for n in ("rollovers", "rollovers_abandoned", "connects", "disconnects")
                }
                for k, s in streams.items()
            },
            aligned=aligned,
            mismatched=mismatched,
            not_ready=not_ready,
            pulls=len(rec.pulls),
            gaps=conn.market_data.gaps,
            downs=[s.reason for s in rec.states[seen:] if not s.ready],
            drops=sim.call(lambda s: dict(s.rule_drops)),
        )

    try:
        run(
            run_connector(
                sim, stime, body, ws_max_age_s=max_age_s, connect_timeout_s=30.0, **ROLL_CFG
            ),
            timeout_s=120,
        )
    finally:
        sim.stop()
    return out


def test_connections_roll_over_before_the_venue_drops_them_with_no_gap() -> None:
    got = _roll_over_run(40.0)
    for name, st in got["streams"].items():
        # Replaced every 40 simulated seconds, never lost: one connection opened by a
        # connect, the others by roll-overs.
        assert st["rollovers"] >= 3 and st["rollovers_abandoned"] == 0, (name, st)
        assert (st["connects"], st["disconnects"]) == (1, 0), (name, st)
    assert got["drops"] == {"lifetime": 0, "idle": 0}  # the venue never had to drop one
    # No gap: never not ready, no quote pull, no book gap; the book right all along.
    assert (got["not_ready"], got["pulls"], got["gaps"], got["downs"]) == (0, 0, 0, [])
    assert got["aligned"] >= 10 and got["mismatched"] == 0


def test_without_roll_over_the_venue_drops_connections_and_quoting_stops() -> None:
    got = _roll_over_run(23.5 * 3600)  # never within the run: the venue's 2 minutes bite
    assert got["drops"]["lifetime"] >= 2
    assert all(st["disconnects"] >= 1 and st["rollovers"] == 0 for st in got["streams"].values()), (
        got["streams"]
    )
    assert got["pulls"] >= 1 and got["downs"]


def test_volume_quota_tracked_from_sendtx_answers_and_a_refusal_blocks_no_cancel(
    sim: SimThread, stime: ScaledTime
) -> None:
    """The quota each sendTx answer reports is the budget's; the free tx on an empty quota goes
    through; the next create is refused (RateLimited, 23000 naming the quota) without blocking
    the sendTx limit, so a cancel goes straight after; a refill shows in the next answer."""
    from mmfast.connector.lighter.budget import QuotaLevel
    from mmfast.connector.lighter.rest import RateLimited

    got: dict[str, Any] = {}

    async def main() -> None:
        provider, client = await signer_provider(sim.config.chain_id, sim)
        conn = LighterConnector(connector_config(sim), provider, time=stime, bus=EventBus())
        try:
            await conn.start()
            assert await conn.wait_ready(10.0), conn.readiness.failing()
            rest = conn.rest
            nonce = await rest.next_nonce(ACCOUNT, KEY)
            expiry = stime.wall_ms() + 3_600_000

            def create(i: int) -> tuple[int, str]:
                tx_type, tx_info, _h, err = client.sign_create_order(
                    0,
                    8000 + i,
                    1000,
                    280_000 - i,
                    0,
                    client.ORDER_TYPE_LIMIT,
                    client.ORDER_TIME_IN_FORCE_POST_ONLY,
                    False,
                    0,
                    expiry,
                    nonce=nonce + i,
                    api_key_index=KEY,
                )
                assert err is None
                return tx_type, tx_info

            got["start"] = (await rest.send_tx(*create(0))).volume_quota_remaining
            sim.call(lambda s: s.set_volume_quota(ACCOUNT, 0, free_now=True))
            got["free"] = (await rest.send_tx(*create(1))).volume_quota_remaining
            got["level"] = conn.budget.quota_level
            with pytest.raises(RateLimited) as ei:
                await rest.send_tx(*create(2))
            got["refused"] = ei.value.code, ei.value.message
            st = conn.budget.state()
            got["blocked_for_s"], got["refusals"] = st.blocked_for_s, conn.budget.quota_refusals
            tx_type, tx_info, _h, err = client.sign_cancel_order(
                0, 8000, nonce=nonce + 2, api_key_index=KEY
            )
            assert err is None
            got["cancel"] = (await rest.send_tx(tx_type, tx_info)).tx_hash
            sim.call(lambda s: s.set_volume_quota(ACCOUNT, 3000))
            tx_type, tx_info = create(3)
            got["refilled"] = (await rest.send_tx(tx_type, tx_info)).volume_quota_remaining
            got["status"] = conn.status()["budget"]
            await conn.cancel_all(0, 5.0)
        finally:
            await conn.stop()
            await client.close()

    run(main())
    assert got["start"] == 999  # the simulator's start (1000) less this create
    assert got["free"] == 0 and got["level"] is QuotaLevel.EXHAUSTED
    assert got["refused"][0] == 23000 and "volume quota" in got["refused"][1]
    assert got["blocked_for_s"] == 0.0 and got["refusals"] == 1
    assert isinstance(got["cancel"], str) and len(got["cancel"]) == 80
    assert got["refilled"] == 2999
    assert got["status"]["volume_quota_remaining"] == 2999
    assert got["status"]["volume_quota_level"] == "ok" and got["status"]["tier"] == "premium"


def test_a_successor_that_cannot_connect_is_abandoned_and_the_current_connection_kept() -> None:
    """The venue refuses new connections when the roll-over comes: the successor is abandoned,
    the current connection keeps serving (no disconnect, no gap), and once the venue takes
    connections again the next try rolls over."""
    stime, sim = _roll_sim(600)
    got: dict[str, Any] = {}

    async def body(conn: LighterConnector, rec: Recorder) -> None:
        assert await conn.wait_ready(30.0), conn.readiness.failing()
        seen = len(rec.states)
        md = conn.market_data.stream
        sim.call(lambda s: s.faults.refuse_connections(True))
        t0 = stime.monotonic_ns()
        while md.rollovers_abandoned < 1 and stime.monotonic_ns() - t0 < 120 * 10**9:
            await stime.sleep(1.0)
        got["abandoned_while_refused"] = md.rollovers_abandoned
        got["rolled_while_refused"] = md.rollovers
        got["ready_while_refused"] = conn.ready
        sim.call(lambda s: s.faults.refuse_connections(False))
        t0 = stime.monotonic_ns()
        while md.rollovers < 1 and stime.monotonic_ns() - t0 < 120 * 10**9:
            await stime.sleep(1.0)
        got["stats"] = {k: md.stats()[k] for k in ("rollovers", "connects", "disconnects")}
        got["downs"] = [s.reason for s in rec.states[seen:] if not s.ready]
        got["pulls"] = len(rec.pulls)
        got["in_sync"] = conn.market_data.books[0].in_sync()

    try:
        run(
            run_connector(sim, stime, body, ws_max_age_s=30.0, connect_timeout_s=5.0, **ROLL_CFG),
            timeout_s=120,
        )
    finally:
        sim.stop()
    assert got["abandoned_while_refused"] >= 1 and got["rolled_while_refused"] == 0, got
    assert got["ready_while_refused"]
    assert got["stats"]["rollovers"] >= 1, got
    assert (got["stats"]["connects"], got["stats"]["disconnects"]) == (1, 0), got
    assert got["downs"] == [] and got["pulls"] == 0 and got["in_sync"], got


def test_the_compiled_listener_follows_the_roll_over() -> None:
    """On the host's clock the market-data stream listens with the compiled BookFeed; after a
    roll-over the successor's BookFeed is the stream's, with the stream's compiled steps."""
    from mmfast.core.timesource import REAL_TIME

    sim = SimThread(make_sim_config(ws_max_lifetime_s=600), REAL_TIME)
    sim.start()
    got: dict[str, Any] = {}

    async def body(conn: LighterConnector, rec: Recorder) -> None:
        assert await conn.wait_ready(10.0), conn.readiness.failing()
        md = conn.market_data.stream
        if md._feed is None:
            pytest.skip("the compiled listener is not built for this picows")
        while md.rollovers < 1:
            await asyncio.sleep(0.05)
        feed = md._feed
        got.update(
            gen=(feed.gen if feed is not None else None, md.generation),
            steps=feed is not None and feed.fast is md.fast,
            stats=md.stats(),
        )

    try:
        run(
            run_connector(sim, REAL_TIME, body, ws_max_age_s=1.5, markets=(0,)),  # type: ignore[arg-type]
            timeout_s=30,
        )
    finally:
        sim.stop()
    assert got["gen"][0] == got["gen"][1] and got["steps"], got
    assert (got["stats"]["connects"], got["stats"]["disconnects"]) == (1, 0), got
