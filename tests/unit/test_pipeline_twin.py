"""The compiled step against its Python twin: ``market_making`` on ``mmfast._core.pipeline``
(book frames through ``on_frame``, as the connector's stream delivers them) and on the Python
path (quote, ``plan_requotes``, the gate per order call, on book events), driven with the same
frames, acks, fills, rejects, venue-shown modifies, position messages and clock, must send the
same order calls in the same order, deny the same orders and end with the same gate state."""

from __future__ import annotations

import asyncio
import itertools
import random
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmfast._core.book import OrderBook
from mmfast._core.clock import Clock
from mmfast._core.pipeline import Pipeline
from mmfast.conf import parse_config
from mmfast.core.events import EventBus
from mmfast.core.market_view import MarketView
from mmfast.core.plan_types import PlannerParams
from mmfast.core.types import Fill, Order, OrderStatus, Position, Side, TimeInForce
from mmfast.risk import MarketRules, RiskReason
from mmfast.strategy import MarketMaking

RULES = MarketRules(market=0, price_decimals=2, size_decimals=4, min_size_lots=50, min_notional=0)


class ManualTime:
    """A TimeSource the test moves by hand."""

    scale = 1.0

    def __init__(self) -> None:
        self.ns = 1_000_000_000

    def monotonic_ns(self) -> int:
        return self.ns

    def wall_ms(self) -> int:
        return 1_700_000_000_000 + self.ns // 1_000_000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)

    def call_later(self, delay: float, cb: Any, *args: Any) -> Any:
        return asyncio.get_running_loop().call_later(3600, cb, *args)


class Conn:
    """Order calls recorded; orders go PENDING_NEW and the test moves them."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.ready = True
        self.cois = itertools.count(1)
        self.orders: dict[int, Order] = {}
        self.modified: list[tuple[Order, int, int]] = []

    def place_limit(
        self,
        market: int,
        side: Side,
        price_ticks: int,
        size_lots: int,
        *,
        tif: TimeInForce,
        reduce_only: bool = False,
        expiry_ms: int = 0,
    ) -> Order:
        coi = next(self.cois)
        o = Order(
            coi,
            market,
            side,
            price_ticks,
            size_lots,
            tif=tif,
            reduce_only=reduce_only,
            expiry_ms=expiry_ms,
        )
        self.orders[coi] = o
        self.calls.append(("place", side, price_ticks, size_lots))
        return o

    def modify(self, order: Order, price_ticks: int, size_lots: int) -> None:
        self.calls.append(("modify", order.client_order_index, price_ticks, size_lots))
        self.modified.append((order, price_ticks, size_lots))

    def cancel(self, order: Order) -> None:
        self.calls.append(("cancel", order.client_order_index))
        if not order.status.is_terminal:
            order.status = OrderStatus.PENDING_CANCEL  # as order entry marks it

    async def cancel_all(self, market: int, timeout: float) -> int:
        self.calls.append(("cancel_all", market))
        return 0


class Steps:
    """A connector's frame route (MarketData.attach_step) for one market."""

    def __init__(self) -> None:
        self.step: Any = None

    def attach_step(self, market: int, step: Any, fast: Any = None) -> bool:
        self.step = step
        return True


def _cfg(extra: str) -> Any:
    spreads = "" if "spread_ticks" in extra else "bid_spread_ticks = 10\nask_spread_ticks = 20"
    return parse_config(f"""
[market]
market_id = 0
[strategy.market_making]
{spreads}
levels = 3
level_spread_ticks = 5
order_amount_lots = 100
amount_step_lots = 50
refresh_tolerance_ticks = 2
size_tolerance_lots = 10
max_order_age_s = 2.0
{extra}
[risk]
max_position_lots = 600
max_order_notional_usdc = 100000
max_open_orders = 9
require_margin_stats = false
[risk.kill_switch]
max_drawdown_usdc = 1000000.0
max_fills_per_min = 1000
max_order_txs_per_min = 100000
pause_cooldown_s = 0.0
""")


def _level(price: int, size: int) -> dict[str, str]:
    return {"price": f"{price / 100:.2f}", "size": f"{size / 10_000:.4f}"}


class Twin:
    """One strategy instance (compiled or Python path) with its own connector, book and bus."""

    def __init__(self, compiled: bool, extra: str, time: ManualTime) -> None:
        cfg = _cfg(extra + f"\ncompiled_step = {'true' if compiled else 'false'}")
        self.compiled = compiled
        self.conn = Conn()
        self.bus = EventBus()
        self.book = OrderBook(0, 2, 4)
        self.steps = Steps()
        self.view = MarketView(0, book=self.book, steps=self.steps if compiled else None)
        self.journal: list[tuple[str, dict[str, Any]]] = []
        self.s = MarketMaking(
            0,
            self.conn,
            cfg.strategy.market_making,
            risk=cfg.risk,
            rules=RULES,
            time=time,
            view=self.view,
            journal=SimpleNamespace(write=lambda k, **f: self.journal.append((k, f))),
        )
        core = SimpleNamespace(bus=self.bus, clock=Clock(100, manual=True))
        self.s.start(core)

    def frame(self, data: bytes, now: int) -> None:
        if self.compiled:
            assert self.steps.step is not None, "the compiled step is not on the stream"
            self.steps.step(data, now)
            self.s.on_book(self.book, now)  # the stream's BookUpdated: already planned
        else:
            self.book.apply_frame(data)
            self.s.on_book(self.book, now)

    def order(self, coi: int) -> Order | None:
        return self.conn.orders.get(coi)

    def update(self, o: Order) -> None:
        self.s.on_order_update(o)


async def _settle() -> None:
    for _ in range(6):
        await asyncio.sleep(0)


EXTRAS = st.sampled_from(
    [
        "",
        'reference_price = "microprice"',
        "filled_order_delay_s = 0.5",
        "price_ceiling_ticks = 300010\nprice_floor_ticks = 299990",
        "bid_spread_ticks = 30\nask_spread_ticks = 5",
        'mode = "avellaneda_stoikov"',
    ]
)


async def _drive(extra: str, ops: list[tuple[Any, ...]], warm: bool = False) -> tuple[Twin, Twin]:
    """Both twins through ``ops``; ``warm``: the compiled one's ``Pipeline.warm`` after every
    op, as a busy-polling loop calls it between frames (it must change nothing it plans)."""
    time = ManualTime()
    a, b = Twin(True, extra, time), Twin(False, extra, time)
    nonce = 1
    bid, ask = 300_000, 300_010
    snap = orjson.dumps(
        {
            "type": "subscribed/order_book",
            "channel": "order_book:0",
            "order_book": {
                "asks": [_level(ask, 10_000)],
                "bids": [_level(bid, 10_000)],
                "nonce": nonce,
            },
        }
    )
    for t in (a, b):
        t.frame(snap, time.ns)
    await _settle()
    trade = itertools.count(1)
    for op in ops:
        kind = op[0]
        if kind == "book":
            nb = 300_000 + op[1]
            na = nb + op[2]
            size = op[3] * 10_000
            frame = orjson.dumps(
                {
                    "type": "update/order_book",
                    "channel": "order_book:0",
                    "order_book": {
                        "asks": [_level(ask, 0), _level(na, size)],
                        "bids": [_level(bid, 0), _level(nb, size)],
                        "nonce": nonce + 1,
                        "begin_nonce": nonce,
                    },
                }
            )
            nonce += 1
            bid, ask = nb, na
            for t in (a, b):
                t.frame(frame, time.ns)
        elif kind in ("ack", "reject", "cancelled", "fill"):
            # The op[1]-th (modulo) order that is not terminal, the same on both twins.
            live = sorted(c for c, o in a.conn.orders.items() if not o.status.is_terminal)
            if not live:
                continue
            coi = live[op[1] % len(live)]
            tid = next(trade)
            for t in (a, b):
                o = t.order(coi)
                if o is None or o.status.is_terminal:
                    continue
                if kind == "ack":
                    if o.status is not OrderStatus.PENDING_NEW:
                        continue
                    o.status = OrderStatus.OPEN
                elif kind == "reject":
                    if o.status is not OrderStatus.PENDING_NEW:
                        continue
                    o.status = OrderStatus.REJECTED
                elif kind == "cancelled":
                    o.status = OrderStatus.CANCELED  # the venue's cancel (ours or its own)
                else:
                    if o.status is OrderStatus.PENDING_NEW:
                        continue
                    size = min(op[2], o.size_lots - o.filled_lots)
                    if size <= 0:
                        continue
                    o.filled_lots += size
                    t.s.on_fill(Fill(tid, 0, o.side, o.price_ticks, size, 0, True, coi, None, 0))
                    o.status = (
                        OrderStatus.FILLED
                        if o.filled_lots >= o.size_lots
                        else OrderStatus.PARTIALLY_FILLED
                    )
                t.update(o)
        elif kind == "deep":
            # A level far from the touch: the book moves, the ladder does not.
            frame = orjson.dumps(
                {
                    "type": "update/order_book",
                    "channel": "order_book:0",
                    "order_book": {
                        "asks": [],
                        "bids": [_level(290_000, op[1] * 100)],
                        "nonce": nonce + 1,
                        "begin_nonce": nonce,
                    },
                }
            )
            nonce += 1
            for t in (a, b):
                t.frame(frame, time.ns)
        elif kind == "ack_all":
            for t in (a, b):
                for o in list(t.conn.orders.values()):
                    if o.status is OrderStatus.PENDING_NEW:
                        o.status = OrderStatus.OPEN
                        t.update(o)
        elif kind == "shown":
            for t in (a, b):
                mods = t.conn.modified if op[1] else t.conn.modified[:1]
                for order, price, size in list(mods):
                    order.price_ticks = price
                    order.size_lots = order.filled_lots + size
                    t.update(order)
                    t.conn.modified.remove((order, price, size))
        elif kind == "position":
            for t in (a, b):
                t.s.on_position(Position(0, size_lots=op[1]))
        elif kind == "time":
            time.ns += op[1] * 1_000_000
            for t in (a, b):
                await t.s.on_tick(time.ns // 1_000_000)
        elif kind == "ready":
            for t in (a, b):
                t.conn.ready = op[1]
                t.s.gate.connector_ready = op[1]
                if op[1]:
                    t.s.request_requote(time.ns)
        await _settle()
        assert a.conn.calls == b.conn.calls, (kind, a.conn.calls[-6:], b.conn.calls[-6:])
        if warm:
            _warm_changes_nothing(a, time.ns)
    return a, b


def _warm_changes_nothing(t: Twin, now: int) -> None:
    p = t.s.pipe
    assert p is not None
    seen = lambda: (  # noqa: E731
        p.target(),
        p.n_out,
        [p.action(i) for i in range(p.n_out)],
        p.steps,
        p.skipped,
        p.frames,
        p.degrade,
        p.deferred,
        p.direct_sends,
        len(t.conn.calls),
        t.s.gate.admitted,
        t.s.gate.denials,
        t.s.gate.sends_in_window(now),
        (t.s.gate.open_orders, t.s.gate.open_bid_lots, t.s.gate.open_ask_lots),
        (t.book.nonce, t.book.messages, t.book.snapshots, t.book.gaps, t.book.malformed),
        (t.book.top(0, 64), t.book.top(1, 64), t.book.level_count(0), t.book.level_count(1)),
    )
    before, warms = seen(), p.warms
    ran = p.warm(now)
    assert seen() == before
    assert p.warms == warms + ran


def _session(seed: int, n: int = 80) -> list[tuple[Any, ...]]:
    """A long session with a market maker's mix: mostly book moves, acks after most of them,
    fills, venue-shown modifies, a few rejects, cancels, position messages, time steps and
    readiness flaps (seeded: the same list for a seed)."""
    rng = random.Random(seed)
    ops: list[tuple[Any, ...]] = []
    mid = 0
    for _ in range(n):
        r = rng.random()
        if r < 0.35:
            mid = max(-60, min(60, mid + rng.choice((-7, -3, -1, 0, 1, 2, 5, 11))))
            ops.append(("book", mid, rng.randint(1, 30), rng.randint(1, 5)))
        elif r < 0.45:
            ops.append(("deep", rng.randint(1, 50)))
        elif r < 0.60:
            ops.append(("ack_all",))
        elif r < 0.68:
            ops.append(("fill", rng.randrange(30), rng.choice((5, 10, 50, 100, 200))))
        elif r < 0.76:
            ops.append(("shown", rng.randint(0, 1)))
        elif r < 0.79:
            ops.append(("reject", rng.randrange(30)))
        elif r < 0.82:
            ops.append(("cancelled", rng.randrange(30)))
        elif r < 0.86:
            ops.append(("position", rng.randint(-700, 700)))
        elif r < 0.96:
            ops.append(("time", rng.choice((1, 50, 400, 1_000, 2_100, 3_100))))
        else:
            ops.append(("ready", rng.random() < 0.6))
    ops.append(("ready", True))
    return ops


@settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(extra=EXTRAS, seed=st.integers(0, 2**32 - 1))
def test_compiled_step_sends_what_the_python_path_sends(extra: str, seed: int) -> None:
    a, b = asyncio.run(_drive(extra, _session(seed)))
    assert a.s.pipe is not None and b.s.pipe is None
    assert a.conn.calls == b.conn.calls
    assert a.s.counts == b.s.counts
    ga, gb = a.s.gate, b.s.gate
    for f in ("open_orders", "open_bid_lots", "open_ask_lots", "position_lots", "admitted"):
        assert getattr(ga, f) == getattr(gb, f), f
    assert ga.denials == gb.denials
    denied = lambda t: [f for k, f in t.journal if k == "denied"]  # noqa: E731
    assert denied(a) == denied(b)


@pytest.mark.parametrize(
    ("extra", "seed"),
    [
        ("", 164982546),  # a wait ran out between frames: open lots counted alike
        ("bid_spread_ticks = 30\nask_spread_ticks = 5", 1881749525),  # a shrinking modify
        ('mode = "avellaneda_stoikov"', 1036892246),
        ('reference_price = "microprice"', 133874039),
    ],
)
def test_twin_sessions_with_pending_modifies(extra: str, seed: int) -> None:
    """Sessions that once set the two paths apart over modifies the venue had not shown
    (their waits running out between frames, a modify shrinking an order while the gate
    counts the larger remaining): the same calls and the same gate state."""
    a, b = asyncio.run(_drive(extra, _session(seed)))
    assert a.conn.calls == b.conn.calls
    for f in ("open_orders", "open_bid_lots", "open_ask_lots", "position_lots"):
        assert getattr(a.s.gate, f) == getattr(b.s.gate, f), f


@settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(extra=EXTRAS, seed=st.integers(0, 2**32 - 1))
def test_warming_between_events_changes_nothing(extra: str, seed: int) -> None:
    """``Pipeline.warm`` after every event of a session (the busy-poll loop's idle time): each
    call leaves the step's output, target, counters and risk gate as they were, and the
    compiled twin still sends what the Python path sends; it ran on most events, not on none,
    its dry acting half too."""
    a, b = asyncio.run(_drive(extra, _session(seed), warm=True))
    assert a.conn.calls == b.conn.calls
    for f in ("open_orders", "open_bid_lots", "open_ask_lots", "position_lots"):
        assert getattr(a.s.gate, f) == getattr(b.s.gate, f), f
    assert a.s.gate.denials == b.s.gate.denials
    p = a.s.pipe
    assert p is not None and p.warms > 0 and p.warm_plans > 0 and p.warm_scans == p.warms


def test_warm_runs_only_on_the_last_steps_inputs() -> None:
    """Moved inputs (the book top without a step, a guard) make warm a no-op."""
    a, _b = asyncio.run(_drive("", [("book", 0, 10, 1), ("ack_all",)]))
    p = a.s.pipe
    assert p is not None
    now = 2_000_000_000
    assert p.warm(now) is True
    target = p.target()
    a.s.gate.position_lots += 50  # an input the last step did not see
    assert p.warm(now) is False and p.target() == target
    a.s.gate.position_lots -= 50
    assert p.warm(now) is True
    p.running = False
    assert p.warm(now) is False
    p.running = True
    a.book.apply_frame(
        orjson.dumps(
            {
                "type": "update/order_book",
                "channel": "order_book:0",
                "order_book": {
                    "asks": [],
                    "bids": [_level(300_005, 10_000)],
                    "nonce": a.book.nonce + 1,
                    "begin_nonce": a.book.nonce,
                },
            }
        )
    )
    assert p.warm(now) is False and p.target() == target  # a new top, no step yet


def test_twin_drive_exercises_every_kind_of_action() -> None:
    """The drive above is not vacuous: one fixed sequence creates, modifies, cancels and denies
    on both paths alike."""
    ops = [
        ("book", 0, 10, 1),
        ("deep", 3),
        ("ack_all",),
        ("book", 30, 10, 1),
        ("deep", 4),
        ("shown", 1),
        ("book", -30, 12, 2),
        ("position", 650),
        ("book", 10, 10, 1),
        ("time", 2_100),
        ("book", 15, 10, 1),
    ]
    a, b = asyncio.run(_drive("", ops))
    kinds = {c[0] for c in a.conn.calls}
    assert kinds == {"place", "modify", "cancel"}, a.conn.calls
    assert a.s.counts["denied"] > 0
    assert a.s.pipe.steps > 0
    # Frames between changes of our orders plan from the slots, not the Order objects.
    assert 0 < a.s.pipe.order_reads < a.s.pipe.steps
    assert a.conn.calls == b.conn.calls


# ------------------------------------------------------------------ the Pipeline itself
def _parts() -> tuple[OrderBook, Any, Any]:
    """The book, a fixed 2-level quote engine and a ready gate a Pipeline is built on."""
    from mmfast._core.gate import GateCore
    from mmfast._core.quote import MODE_FIXED, QuoteEngine, QuoteParams
    from mmfast.risk.limits import RiskLimits

    cfg = _cfg("")
    book = OrderBook(0, 2, 4)
    engine = QuoteEngine(
        QuoteParams(
            mode=MODE_FIXED,
            spread_ticks=10,
            n_levels=2,
            level_spacing_ticks=5,
            size_lots=100,
            max_long_lots=1000,
            max_short_lots=1000,
        ),
        min_size_lots=50,
        min_notional=0,
    )
    gate = GateCore(RiskLimits.from_config(cfg.risk, RULES), RULES)
    gate.connector_ready = True
    return book, engine, gate


def _pipe(**kw: Any) -> tuple[Pipeline, Any]:
    book, engine, gate = _parts()
    orders: dict[int, Order] = {}
    args = dict(orders=orders, intents={}, calls=set())
    args.update(kw)
    p = Pipeline(book, engine, gate, PlannerParams(), **args)
    p.running = True
    return p, SimpleNamespace(book=book, gate=gate, orders=orders)


SNAP = orjson.dumps(
    {
        "type": "subscribed/order_book",
        "channel": "order_book:0",
        "order_book": {
            "asks": [_level(300_010, 10_000)],
            "bids": [_level(300_000, 10_000)],
            "nonce": 1,
        },
    }
)


def test_pipeline_frame_to_gated_actions_and_skip() -> None:
    p, x = _pipe()
    assert p.on_frame(SNAP, 10) == 0  # APPLIED
    assert p.n_out == 4 and p.steps == 1
    acts = [p.action(i) for i in range(p.n_out)]
    assert all(a[0].name == "CREATE" and not a[6] for a in acts)
    assert sorted(a[3] for a in acts) == [299_990, 299_995, 300_015, 300_020]
    assert p.target() == ([(299_995, 100), (299_990, 100)], [(300_015, 100), (300_020, 100)])
    assert x.gate.open_orders == 4 and x.gate.open_bid_lots == 200  # the recount's values
    for i, a in enumerate(acts):
        o = Order(i + 1, 0, a[1], a[3], a[4])
        o.status = OrderStatus.OPEN
        x.orders[i + 1] = o
    p.version += 1
    assert p.requote(20) == 0 and p.steps == 2  # on target: nothing
    assert p.requote(30) == 0 and p.skipped == 1  # same inputs again: skipped
    with pytest.raises(IndexError):
        p.action(0)
    stages = p.drain_stages()
    assert len(stages) == 2 and p.drain_stages() == []
    assert all(e <= q <= pl <= g for e, q, pl, g in stages)


def test_pipeline_guards_and_bad_input() -> None:
    p, x = _pipe()
    x.gate.connector_ready = False
    p.on_frame(SNAP, 1)
    assert p.n_out == 0 and p.steps == 0
    from mmfast._core.book import BookError

    with pytest.raises(BookError):
        p.on_frame(b'{"type":"update/order_book","order_book":{"asks":[{"price":"x"}]', 2)
    x.gate.connector_ready = True
    x.orders[1] = "not an order"  # type: ignore[assignment]
    p.version += 1
    with pytest.raises(ValueError, match="does not take"):
        p.requote(3)
    with pytest.raises(TypeError):
        Pipeline(x.book, p.engine, x.gate, object(), orders={}, intents={}, calls=set())
    with pytest.raises(ValueError):
        _pipe(reference="vwap")


def test_pipeline_budget_snapshot_backs_off() -> None:
    # A budget with no room left: creates are not urgent cancels, so nothing is chosen.
    p, _ = _pipe(room=lambda: (True, 100, 100, 0, 100))
    p.on_frame(SNAP, 1)
    assert p.n_out == 0 and p.deferred == 0 and p.degrade == 3  # ONE_SIDE, flat: no side
    cap = PlannerParams().max_inflight
    p2, _ = _pipe(room=lambda: (True, 0, 100, 0, 100), in_flight=lambda: cap - 1)
    p2.on_frame(SNAP, 1)
    assert p2.n_out == 1 and p2.deferred == 3  # the in-flight cap leaves one slot


# ------------------------------------------------------------------ the step's own first tx
class _Sender:
    """Order entry's DirectSender as the step sees it: a room, a signer and a socket."""

    def __init__(self, room: Any, native: Any, ok: Any = True, fail: bool = False) -> None:
        self.room = room
        self.native = native
        self.frames: list[bytes] = []
        self.ok = ok
        self.fail = fail  # send raises, as a socket gone mid-write

    def send(self, data: bytes) -> Any:
        self.frames.append(data)
        if self.fail:
            raise ConnectionResetError("socket gone")
        return self.ok


def _resting(p: Pipeline, x: Any) -> None:
    """The four orders of the first step resting at the venue, as the strategy books them."""
    for i in range(p.n_out):
        a = p.action(i)
        o = Order(i + 1, 0, a[1], a[3], a[4])
        o.status = OrderStatus.OPEN
        x.orders[i + 1] = o
    p.version += 1


def _room(ready: bool = True) -> Any:
    from mmfast._core.pipeline import SendRoom

    r = SendRoom(16, 599_000)
    r.next_nonce, r.nonce_ready, r.entry_ok, r.ws_ok = 40, ready, ready, ready
    r.usable, r.sendtx_used, r.sendtx_cap, r.ws_used, r.ws_cap = True, 0, 100, 0, 100
    return r


def test_step_signs_and_sends_its_first_modify_itself() -> None:
    from mmfast._core import signer as S

    sk = S.scalar_op("add", bytes(range(40)), bytes(40))
    ns = S.NativeSigner(sk, chain_id=300, account_index=7, api_key_index=3)
    try:
        p, x = _pipe()
        p.on_frame(SNAP, 1)
        _resting(p, x)
        room = _room()
        sender = _Sender(room, ns)
        p.attach_sender(sender)
        moved = orjson.dumps(
            {
                "type": "update/order_book",
                "channel": "order_book:0",
                "order_book": {
                    "asks": [_level(300_010, 0), _level(300_030, 10_000)],
                    "bids": [_level(300_000, 0), _level(300_020, 10_000)],
                    "nonce": 2,
                    "begin_nonce": 1,
                },
            }
        )
        p.on_frame(moved, 2)
        assert p.n_out > 0 and p.direct_i == 0 and p.direct_sends == 1
        kind, _side, _lvl, price, size, order, reason, _u, _i = p.action(0)
        assert kind.name == "MODIFY" and not reason
        # The nonce came from the room, whose flags now wait for order entry to publish.
        assert p.direct_nonce == 40 and room.next_nonce == 41
        assert not room.entry_ok and not room.ws_ok
        assert p.t_ready <= p.t_signed <= p.t_sent
        (frame,) = sender.frames
        msg = orjson.loads(frame)
        assert msg["type"] == "jsonapi/sendtx" and msg["data"]["tx_type"] == 17
        info = msg["data"]["tx_info"]
        assert info["Index"] == order.client_order_index and info["Price"] == price
        assert info["BaseAmount"] == size and info["Nonce"] == 40
        assert info["ExpiredAt"] == p.direct_expired_at
        assert (
            p.direct_info
            == frame[len(b'{"type":"jsonapi/sendtx","data":{"tx_type":17,"tx_info":') : -2].decode()
        )
        import base64

        h = S.tx_info_hash(17, info, 300)
        assert S.verify_hashed(S.public_key(sk), h, base64.b64decode(info["Sig"]))
        # Not ready (a frame outstanding, nonce refresh...): order entry sends it instead.
        p2, x2 = _pipe()
        p2.on_frame(SNAP, 1)
        _resting(p2, x2)
        s2 = _Sender(_room(ready=False), ns)
        p2.attach_sender(s2)
        p2.on_frame(moved, 2)
        assert p2.n_out > 0 and p2.direct_i == -1 and s2.frames == []
        assert s2.room.next_nonce == 40
    finally:
        ns.close()


def test_step_with_a_closed_signer_leaves_the_nonce_for_order_entry_to_give_back() -> None:
    from mmfast._core import signer as S

    ns = S.NativeSigner(
        S.scalar_op("add", bytes(range(40)), bytes(40)),
        chain_id=300,
        account_index=7,
        api_key_index=3,
    )
    ns.close()
    p, x = _pipe()
    p.on_frame(SNAP, 1)
    _resting(p, x)
    sender = _Sender(_room(), ns)
    p.attach_sender(sender)
    p.requote(5)
    p.on_frame(
        orjson.dumps(
            {
                "type": "update/order_book",
                "channel": "order_book:0",
                "order_book": {
                    "asks": [],
                    "bids": [_level(300_005, 10_000)],
                    "nonce": 2,
                    "begin_nonce": 1,
                },
            }
        ),
        6,
    )
    assert p.direct_i >= 0 and p.direct_info is None and sender.frames == []
    assert sender.room.next_nonce == 41  # taken: the strategy hands it back (give_back)


def test_send_room_publishes() -> None:
    from mmfast._core.pipeline import SendRoom

    r = SendRoom(4, 1000)
    r.set_inflight(7, 3)
    r.set_inflight(9, 1)
    r.set_inflight(7, 2)
    assert r.in_flight(7) == 2 and r.in_flight(9) == 1 and r.in_flight(1) == 0
    r.pending = 5
    assert r.in_flight(7) == 5  # every pending tx counts, as MarketView.in_flight
    r.usable, r.sendtx_used, r.sendtx_cap, r.ws_used, r.ws_cap = True, 1, 2, 3, 4
    assert r.order_room() == (True, 1, 2, 3, 4)
    for m in range(100, 162):
        r.set_inflight(m, 1)
    with pytest.raises(ValueError, match="64 markets"):
        r.set_inflight(999, 1)


def test_a_new_step_reads_as_empty_before_it_planned() -> None:
    p, _ = _pipe()
    assert p.target() == ([], []) and p.n_out == 0 and p.drain_stages() == []
    with pytest.raises(IndexError):
        p.action(0)


def test_the_steps_recount_keeps_lots_filled_but_not_yet_reported() -> None:
    """Lots an order showed filled before their fill moved the position (set by the strategy
    as the gate's ``unreported_*``) stay exposure through the step's own recount after each
    admitted create: with 450 such bid lots and a 600-lot cap, the first 100-lot bid fits,
    the second does not (it would have, had the recount forgotten them)."""
    p, x = _pipe()
    assert x.gate.limits.max_position_lots == 600
    x.gate.unreported_bid_lots = 450
    x.gate.set_orders([])
    assert x.gate.open_bid_lots == 450
    assert p.on_frame(SNAP, 10) == 0
    bids = [p.action(i) for i in range(p.n_out) if p.action(i)[1] is Side.BUY]
    assert len(bids) == 2
    assert [bool(a[6]) for a in bids] == [False, True]  # admitted, then denied
    assert bids[1][6] is RiskReason.MAX_POSITION
    assert x.gate.open_bid_lots == 450 + 100
