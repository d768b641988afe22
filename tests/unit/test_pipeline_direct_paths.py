"""``mmfast._core.pipeline.Pipeline`` on the paths its twin test does not take: the step's own
first tx when it is a cancel, a sender whose ``send`` raises or refuses, the constructor's and
``set_params``' refusals, a budget snapshot that is not ints, and the ladder centred on the last
trade. The pipeline, sender and room come from test_pipeline_twin.py's helpers."""

from __future__ import annotations

import base64
import collections
import json
import time
from typing import Any

import orjson
import pytest
from test_pipeline_twin import (  # the step's harness (same directory)
    SNAP,
    _level,
    _parts,
    _pipe,
    _room,
    _Sender,
)
from test_signer_native import _less_sig  # same directory

from mmfast._core import signer as S
from mmfast._core.pipeline import Pipeline
from mmfast.core.plan_types import ActionKind, PlannerParams
from mmfast.core.types import Order, OrderStatus, Side
from mmfast.risk import RiskReason

CHAIN, ACC, AK = 300, 7, 3
SK = S.scalar_op("add", bytes(range(40)), bytes(40))
PK = S.public_key(SK)
NONCE = 40  # the room's next nonce
EXPIRY_MS = 599_000
APPLIED = 0
HEAD_CANCEL = b'{"type":"jsonapi/sendtx","data":{"tx_type":15,"tx_info":'

# The ladder SNAP gives (mid 300_005, spread 10, two levels 5 apart, 100 lots).
BIDS = [(299_995, 100), (299_990, 100)]
ASKS = [(300_015, 100), (300_020, 100)]


def _open(coi: int, side: Side, price: int, size: int = 100) -> Order:
    o = Order(coi, 0, side, price, size)
    o.status = OrderStatus.OPEN
    return o


def _on_target_plus(p: Pipeline, x: Any, surplus: Order) -> None:
    """The ladder resting at the venue (cois 1-4) and one order of ours beyond it."""
    ladder = [(Side.BUY, px) for px, _ in BIDS] + [(Side.SELL, px) for px, _ in ASKS]
    for coi, (side, price) in enumerate(ladder, 1):
        x.orders[coi] = _open(coi, side, price)
    x.orders[surplus.client_order_index] = surplus
    p.version += 1


@pytest.fixture
def native() -> Any:
    ns = S.NativeSigner(SK, chain_id=CHAIN, account_index=ACC, api_key_index=AK, pool_size=0)
    yield ns
    ns.close()


# ------------------------------------------------------------------ the step's first tx: a cancel
@pytest.mark.parametrize(
    "surplus",
    [_open(9, Side.BUY, 299_985), _open(11, Side.SELL, 300_100, 50)],
    ids=["bid-beyond-the-ladder", "ask-beyond-the-ladder"],
)
def test_step_signs_and_sends_its_first_cancel_itself(native: Any, surplus: Order) -> None:
    p, x = _pipe()
    assert p.on_frame(SNAP, 1) == APPLIED and p.target() == (BIDS, ASKS)
    _on_target_plus(p, x, surplus)
    room = _room()
    sender = _Sender(room, native)
    p.attach_sender(sender)
    assert room.watched
    before = time.time_ns() // 1_000_000
    assert p.requote(5) == 1
    after = time.time_ns() // 1_000_000
    assert p.action(0) == (
        ActionKind.CANCEL,
        surplus.side,
        -1,
        surplus.price_ticks,
        surplus.size_lots,
        surplus,
        RiskReason.OK,
        False,
        False,
    )
    # Sent here: the room's nonce, its flags held until order entry publishes again.
    assert p.direct_i == 0 and p.direct_sends == 1 and p.direct_sent is True
    assert p.direct_nonce == NONCE and room.next_nonce == NONCE + 1
    assert not room.entry_ok and not room.ws_ok
    assert before + EXPIRY_MS <= p.direct_expired_at <= after + EXPIRY_MS
    assert p.t_ready <= p.t_signed <= p.t_sent
    assert native.fresh == 1 and native.pooled == 0
    (frame,) = sender.frames
    assert frame.startswith(HEAD_CANCEL) and frame.endswith(b"}}")
    assert p.direct_info == frame[len(HEAD_CANCEL) : -2].decode()
    msg = orjson.loads(frame)
    assert msg["type"] == "jsonapi/sendtx" and msg["data"]["tx_type"] == 15
    info = msg["data"]["tx_info"]
    assert info["MarketIndex"] == 0 and info["Index"] == surplus.client_order_index
    assert info["Nonce"] == NONCE and info["ExpiredAt"] == p.direct_expired_at
    assert info["L2TxAttributes"] is None
    # The venue's hash of what was sent is the step's, signed by our key...
    h = S.tx_info_hash(15, info, CHAIN)
    assert h.hex() == p.direct_hash
    assert S.verify_hashed(PK, h, base64.b64decode(info["Sig"], validate=True))
    # ... and the tx is the module signer's cancel_order of that order, less the signature.
    ref_info, ref_h = S.sign_tx(
        "cancel_order",
        {"market_index": 0, "index": surplus.client_order_index},
        sk=SK,
        chain_id=CHAIN,
        account_index=ACC,
        api_key_index=AK,
        nonce=NONCE,
        expired_at=p.direct_expired_at,
    )
    assert ref_h == h
    assert _less_sig(p.direct_info) == _less_sig(ref_info)
    assert p.errors == 0 and p.last_error is None


def test_direct_cancel_waits_for_order_entry_to_publish(native: Any) -> None:
    # The room spoke for its frame: until order entry publishes again, a second step's cancel
    # is order entry's to send (no second nonce taken, nothing sent here).
    p, x = _pipe()
    p.on_frame(SNAP, 1)
    _on_target_plus(p, x, _open(9, Side.BUY, 299_985))
    room = _room()
    sender = _Sender(room, native)
    p.attach_sender(sender)
    p.requote(5)
    assert p.direct_sends == 1 and room.next_nonce == NONCE + 1
    x.orders[12] = _open(12, Side.SELL, 300_200)
    p.version += 1
    assert p.requote(6) >= 1 and p.action(0)[0] is ActionKind.CANCEL
    assert p.direct_i == -1 and p.direct_sends == 1 and len(sender.frames) == 1
    assert room.next_nonce == NONCE + 1
    # Published again: the next step's first cancel goes here, with the next nonce.
    room.entry_ok = room.ws_ok = True
    p.version += 1
    p.requote(7)
    assert p.direct_i == 0 and p.direct_sends == 2 and p.direct_nonce == NONCE + 1
    assert orjson.loads(sender.frames[-1])["data"]["tx_info"]["Nonce"] == NONCE + 1


@pytest.mark.parametrize(
    ("ok", "fail"),
    [(True, True), (False, False), (None, False), (0, False)],
    ids=["send-raises", "send-false", "send-none", "send-zero"],
)
def test_a_send_that_raises_or_refuses_leaves_the_step_whole(
    native: Any, ok: Any, fail: bool
) -> None:
    surplus = _open(9, Side.BUY, 299_985)
    ref, rx = _pipe()
    ref.on_frame(SNAP, 1)
    _on_target_plus(ref, rx, surplus)
    ref.attach_sender(_Sender(_room(), native))
    ref.requote(5)

    p, x = _pipe()
    p.on_frame(SNAP, 1)
    _on_target_plus(p, x, surplus)
    room = _room()
    sender = _Sender(room, native, ok=ok, fail=fail)
    p.attach_sender(sender)
    assert p.requote(5) == ref.n_out == 1
    # The plan and its gating are those of a step whose send went through.
    assert [p.action(i) for i in range(p.n_out)] == [ref.action(i) for i in range(ref.n_out)]
    assert p.target() == ref.target()
    assert p.errors == 0 and p.last_error is None
    # Signed, handed over once, booked as a lost frame: the nonce stays spoken for.
    assert p.direct_i == 0 and p.direct_sends == 1 and p.direct_sent is False
    assert len(sender.frames) == 1 and room.next_nonce == NONCE + 1
    assert (
        p.direct_info is not None
        and p.direct_info == sender.frames[0][len(HEAD_CANCEL) : -2].decode()
    )
    info = json.loads(p.direct_info)
    assert S.tx_info_hash(15, info, CHAIN).hex() == p.direct_hash
    assert S.verify_hashed(PK, bytes.fromhex(p.direct_hash), base64.b64decode(info["Sig"]))


def test_a_send_that_raises_on_the_frame_path_is_not_a_step_error(native: Any) -> None:
    # on_frame counts a step that raises in ``errors``: a failing socket is not one.
    p, x = _pipe()
    p.on_frame(SNAP, 1)
    _on_target_plus(p, x, _open(9, Side.BUY, 299_985))
    sender = _Sender(_room(), native, fail=True)
    p.attach_sender(sender)
    deep = orjson.dumps(
        {
            "type": "update/order_book",
            "channel": "order_book:0",
            "order_book": {
                "asks": [],
                "bids": [_level(290_000, 500)],
                "nonce": 2,
                "begin_nonce": 1,
            },
        }
    )
    assert p.on_frame(deep, 5) == APPLIED
    assert p.n_out == 1 and p.action(0)[0] is ActionKind.CANCEL
    assert p.errors == 0 and p.last_error is None
    assert p.direct_sends == 1 and p.direct_sent is False and len(sender.frames) == 1


# ------------------------------------------------------------------ constructor refusals
SHAPES = "orders and intents must be dicts, calls a set"


@pytest.mark.parametrize(
    "kw",
    [
        dict(orders=[]),
        dict(orders=collections.OrderedDict()),
        dict(orders=None),
        dict(intents=[]),
        dict(intents=collections.defaultdict(tuple)),
        dict(calls=[]),
        dict(calls=frozenset()),
        dict(calls={}),
    ],
    ids=repr,
)
def test_orders_intents_calls_of_the_wrong_type_are_refused(kw: dict[str, Any]) -> None:
    book, engine, gate = _parts()
    args: dict[str, Any] = dict(orders={}, intents={}, calls=set()) | kw
    with pytest.raises(TypeError) as ei:
        Pipeline(book, engine, gate, PlannerParams(), **args)
    assert str(ei.value) == SHAPES


@pytest.mark.parametrize(
    "kw",
    [dict(widen_ticks=-1), dict(ceiling=-1), dict(floor=-1), dict(fill_delay_s=-0.001)],
    ids=repr,
)
def test_negative_shaping_is_refused(kw: dict[str, Any]) -> None:
    book, engine, gate = _parts()
    with pytest.raises(ValueError) as ei:
        Pipeline(book, engine, gate, PlannerParams(), orders={}, intents={}, calls=set(), **kw)
    assert str(ei.value) == "widen_ticks, ceiling, floor and fill_delay_s must be >= 0"
    # Zero is no shaping, and taken.
    zero = {k: 0 for k in kw}
    Pipeline(book, engine, gate, PlannerParams(), orders={}, intents={}, calls=set(), **zero)


def test_an_unknown_reference_is_refused() -> None:
    book, engine, gate = _parts()
    with pytest.raises(ValueError) as ei:
        Pipeline(
            book,
            engine,
            gate,
            PlannerParams(),
            orders={},
            intents={},
            calls=set(),
            reference="vwap",
        )
    assert (
        str(ei.value) == "reference must be one of ['last_trade', 'microprice', 'mid'], got 'vwap'"
    )


@pytest.mark.parametrize(
    "params", [None, object(), {}, PlannerParams], ids=["none", "object", "dict", "the-class"]
)
def test_params_not_a_planner_params_are_refused(params: Any) -> None:
    book, engine, gate = _parts()
    with pytest.raises(TypeError) as ei:
        Pipeline(book, engine, gate, params, orders={}, intents={}, calls=set())
    assert str(ei.value) == "params must be a PlannerParams"
    p, _ = _pipe()
    version = p.version
    with pytest.raises(TypeError) as ei:
        p.set_params(params)
    assert str(ei.value) == "params must be a PlannerParams"
    assert p.version == version  # nothing taken
    p.set_params(PlannerParams())
    assert p.version == version + 1


# ------------------------------------------------------------------ the budget snapshot
@pytest.mark.parametrize(
    ("snap", "shown"),
    [
        ((True, 0, 100, 0.0, 100), "float"),
        ((True, "0", 100, 0, 100), "str"),
        ((1.0, 0, 100, 0, 100), "float"),
        ((True, 0, None, 0, 100), "NoneType"),
        ((True, 0, 100, 0, RiskReason.OK), "RiskReason"),
    ],
    ids=["float", "str", "float-usable", "none", "int-subclass"],
)
def test_a_room_that_gives_no_int_is_an_error(snap: tuple[Any, ...], shown: str) -> None:
    want = f"order_room gave {shown}, not an int"
    p, _ = _pipe(room=lambda: snap)
    # on a frame: the book applied, the step counted in errors, no actions.
    assert p.on_frame(SNAP, 1) == APPLIED
    assert p.errors == 1 and isinstance(p.last_error, TypeError)
    assert str(p.last_error) == want and p.n_out == 0
    assert p.book.best_bid() == 300_000
    # on a requote: raised to the caller.
    with pytest.raises(TypeError) as ei:
        p.requote(2)
    assert str(ei.value) == want
    # A budget of ints plans the ladder.
    p2, _ = _pipe(room=lambda: (True, 0, 100, 0, 100))
    p2.on_frame(SNAP, 1)
    assert p2.errors == 0 and p2.target() == (BIDS, ASKS) and p2.n_out == 4


# ------------------------------------------------------------------ reference = last trade
def _shift(levels: list[tuple[int, int]], d: int) -> list[tuple[int, int]]:
    return [(px + d, q) for px, q in levels]


def test_last_trade_reference_centres_the_ladder_on_the_last_trade() -> None:
    mid, _ = _pipe(reference="mid")
    mid.last_trade_ref = 300_003  # not read with reference mid
    last, _ = _pipe(reference="last_trade")
    last.last_trade_ref = 300_003
    for p in (mid, last):
        assert p.on_frame(SNAP, 1) == APPLIED
    assert (mid.book.best_bid(), mid.book.best_ask()) == (
        last.book.best_bid(),
        last.book.best_ask(),
    )
    assert mid.target() == (BIDS, ASKS)  # centred on the mid, 300_005
    # Centred 2 ticks lower, the same spread, levels and sizes.
    assert last.target() == (_shift(BIDS, -2), _shift(ASKS, -2))
    prices = sorted(last.action(i)[3] for i in range(last.n_out))
    assert prices == sorted(px for px, _ in _shift(BIDS, -2) + _shift(ASKS, -2))
    assert all(last.action(i)[0] is ActionKind.CREATE for i in range(last.n_out))
    # A new last trade moves the ladder at the next step (not skipped as the same inputs).
    last.last_trade_ref = 300_007
    steps = last.steps
    last.requote(2)
    assert last.steps == steps + 1 and last.skipped == 0
    assert last.target() == (_shift(BIDS, 2), _shift(ASKS, 2))


@pytest.mark.parametrize("ref", [0, -5])
def test_last_trade_reference_without_a_trade_is_the_mid(ref: int) -> None:
    p, _ = _pipe(reference="last_trade")
    p.last_trade_ref = ref
    p.on_frame(SNAP, 1)
    assert p.target() == (BIDS, ASKS)


def test_warm_with_a_sender_warms_its_signer_and_sends_nothing(native: Any) -> None:
    """Between frames, a step with a direct path warms the signer too: nothing signed,
    sent, or taken from the room; the next step's direct tx is as without the warm-up."""
    p, x = _pipe()
    assert p.on_frame(SNAP, 1) == APPLIED
    surplus = _open(901, Side.BUY, 299_000)
    _on_target_plus(p, x, surplus)
    room = _room()
    sender = _Sender(room, native)
    p.attach_sender(sender)
    assert p.requote(5) == 1 and p.direct_sends == 1  # the step's inputs now recorded
    # The send checks refuse until order entry publishes again: the dry acting half plans and
    # gates, and stops there.
    out = (p.n_out, p.action(0), p.direct_i, p.target())
    gate = (p.gate.admitted, p.gate.denials, p.gate.sends_in_window(6))
    assert p.warm(6) is True and (p.warm_plans, p.warm_directs) == (1, 0)
    room.entry_ok = room.ws_ok = True  # order entry published again
    counts = (native.fresh, native.pooled, room.next_nonce, len(sender.frames), p.direct_sends)
    for _ in range(3):
        assert p.warm(6) is True
    assert native.warms == 4 and p.warms == 4
    # Each ran the acting half up to the direct path's send checks, and kept nothing of it.
    assert (p.warm_plans, p.warm_directs) == (4, 3)
    assert (native.fresh, native.pooled, room.next_nonce, len(sender.frames), p.direct_sends) == (
        counts
    )
    assert (p.n_out, p.action(0), p.direct_i, p.target()) == out
    assert (p.gate.admitted, p.gate.denials, p.gate.sends_in_window(6)) == gate
    assert p.requote(7) == 1 and p.direct_sends == 2 and p.direct_nonce == NONCE + 1


# ------------------------------------------------------------------ warm-up: the book's scanner
def test_warm_runs_the_scanner_on_a_shadow_and_leaves_the_book() -> None:
    """warm() runs the frame scanner on a private shadow book (a snapshot, then a delta on
    it), each time: the market's book keeps its levels, nonce and counters."""
    p, x = _pipe()
    assert p.on_frame(SNAP, 1) == APPLIED
    book = x.book
    seen = lambda: (  # noqa: E731
        book.top(0, 64),
        book.top(1, 64),
        book.nonce,
        book.messages,
        book.snapshots,
        book.gaps,
        book.malformed,
        book.not_book,
    )
    before = seen()
    for k in range(1, 4):
        assert p.warm(2) is True and p.warm_scans == k
    assert seen() == before


def test_warm_without_a_shadow_to_make_still_warms_the_rest() -> None:
    """A book whose top is too low to copy (bid under 9 ticks) gets no shadow: warm() runs
    the rest and counts no scan."""
    p, _x = _pipe()
    low = orjson.dumps(
        {
            "type": "subscribed/order_book",
            "channel": "order_book:0",
            "order_book": {"asks": [_level(20, 10_000)], "bids": [_level(5, 10_000)], "nonce": 1},
        }
    )
    assert p.on_frame(low, 1) == APPLIED
    assert p.warm(2) is True and p.warm(3) is True
    assert (p.warms, p.warm_scans) == (2, 0)
