"""mmfast.sim.engine: maker-only API keys (21511, the 0 ms lane) and skip-nonce (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from mmfast.sim import errors as E
from mmfast.sim.clock import ManualClock
from mmfast.sim.config import SimConfig
from mmfast.sim.engine import (
    TX_CANCEL_ALL,
    TX_CANCEL_ORDER,
    TX_CREATE_ORDER,
    TX_EXECUTED,
    TX_MODIFY_ORDER,
    TX_PENDING,
    TX_UPDATE_LEVERAGE,
    Exchange,
    TxRecord,
)
from mmfast.sim.errors import VenueError

MAIN = 1001
MAKER_KEY = 5  # registered maker-only
PLAIN_KEY = 3  # an ordinary key of the same account
MIN = 60_000
IOC, GTT, POST_ONLY = 0, 1, 2


class Key:
    """tx_info dicts as the signer lays them out, for one (account, key), own nonce count."""

    def __init__(self, ex: Exchange, clock: ManualClock, key: int) -> None:
        self.ex, self.clock, self.key = ex, clock, key
        self.nonce = 0

    def info(self, skip: bool = False, **kw: Any) -> dict[str, Any]:
        d: dict[str, Any] = {"AccountIndex": MAIN, "ApiKeyIndex": self.key}
        d.update(kw)
        d.setdefault("ExpiredAt", self.clock.wall_ms() + 10 * MIN - 1000)
        d.setdefault("Nonce", self.nonce)
        d["Sig"] = "c2ln"
        d.setdefault("L2TxAttributes", {"4": 1} if skip else None)
        return d

    def create_info(
        self, price: int, tif: int, coi: int, *, is_ask: bool = False, **kw: Any
    ) -> dict[str, Any]:
        expiry = 0 if tif == IOC else self.clock.wall_ms() + 60 * MIN
        return self.info(
            MarketIndex=0,
            ClientOrderIndex=coi,
            BaseAmount=100,
            Price=price,
            IsAsk=int(is_ask),
            Type=0,
            TimeInForce=tif,
            ReduceOnly=0,
            TriggerPrice=0,
            OrderExpiry=expiry,
            **kw,
        )

    def send(self, tx_type: int, info: dict[str, Any]) -> TxRecord:
        rec = self.ex.submit(tx_type, info)
        self.nonce = info["Nonce"] + 1
        return rec


def make(**cfg: Any) -> tuple[Exchange, ManualClock, Key, Key]:
    clock = ManualClock()
    cfg.setdefault("speed_bumps", False)
    cfg.setdefault("verify_signatures", False)  # stand-in signatures
    cfg.setdefault("api_key_indexes", (PLAIN_KEY,))
    ex = Exchange(SimConfig(**cfg), clock)
    ex.register_api_key(MAIN, MAKER_KEY, maker_only=True)
    return ex, clock, Key(ex, clock, MAKER_KEY), Key(ex, clock, PLAIN_KEY)


def refused(ex: Exchange, tx_type: int, info: dict[str, Any]) -> int:
    with pytest.raises(VenueError) as ei:
        ex.submit(tx_type, info)
    return ei.value.code


# ---------------------------------------------------------------- maker-only keys
@pytest.mark.parametrize("tif", [IOC, GTT])
def test_maker_only_key_refuses_a_create_that_is_not_post_only(tif: int) -> None:
    ex, _clock, mk, _ = make()
    # A resting bid at 2990.00 would not cross; the refusal is by time in force alone.
    code = refused(ex, TX_CREATE_ORDER, mk.create_info(299_000, tif, coi=1))
    assert code == E.INVALID_TX_TYPE_FOR_ACCOUNT == 21511
    assert ex.next_nonce(MAIN, MAKER_KEY) == 0  # an API-level refusal keeps the nonce
    assert ex.open_orders(MAIN) == []


def test_maker_only_key_sends_post_only_creates_modifies_and_cancels() -> None:
    ex, _clock, mk, _ = make()
    rec = mk.send(TX_CREATE_ORDER, mk.create_info(299_000, POST_ONLY, coi=1))
    assert rec.status == TX_EXECUTED
    assert (
        mk.send(
            TX_MODIFY_ORDER,
            mk.info(MarketIndex=0, Index=1, BaseAmount=100, Price=298_000, TriggerPrice=0),
        ).error
        is None
    )
    assert mk.send(TX_CANCEL_ORDER, mk.info(MarketIndex=0, Index=1)).error is None
    mk.send(TX_CREATE_ORDER, mk.create_info(299_000, POST_ONLY, coi=2))
    mk.send(TX_CANCEL_ALL, mk.info(TimeInForce=0, Time=0, L2TxAttributes={"5": 0}))
    assert ex.open_orders(MAIN) == [] and ex.next_nonce(MAIN, MAKER_KEY) == 5


def test_maker_only_key_refuses_to_modify_an_order_that_is_not_post_only() -> None:
    ex, _clock, mk, plain = make()
    plain.send(TX_CREATE_ORDER, plain.create_info(299_000, GTT, coi=7))  # rests, GTT
    info = mk.info(MarketIndex=0, Index=7, BaseAmount=100, Price=298_000, TriggerPrice=0)
    assert refused(ex, TX_MODIFY_ORDER, info) == E.INVALID_TX_TYPE_FOR_ACCOUNT
    # ... but may cancel it (cancels are always allowed)
    assert mk.send(TX_CANCEL_ORDER, mk.info(MarketIndex=0, Index=7)).error is None


def test_maker_only_key_refuses_other_tx_types() -> None:
    ex, _clock, mk, _ = make()
    info = mk.info(MarketIndex=0, InitialMarginFraction=500, MarginMode=0)
    assert refused(ex, TX_UPDATE_LEVERAGE, info) == E.INVALID_TX_TYPE_FOR_ACCOUNT


def test_a_batch_with_one_taker_create_is_refused_whole() -> None:
    ex, _clock, mk, _ = make()
    infos = [
        mk.create_info(299_000, POST_ONLY, coi=1),
        mk.create_info(299_100, IOC, coi=2, Nonce=1),
    ]
    with pytest.raises(VenueError) as ei:
        ex.submit_batch([TX_CREATE_ORDER, TX_CREATE_ORDER], infos)
    assert ei.value.code == E.INVALID_TX_TYPE_FOR_ACCOUNT
    assert ex.next_nonce(MAIN, MAKER_KEY) == 0 and ex.open_orders(MAIN) == []


def test_ordinary_key_of_the_same_account_is_not_restricted() -> None:
    ex, _clock, _mk, plain = make()
    assert plain.send(TX_CREATE_ORDER, plain.create_info(299_000, GTT, coi=1)).error is None
    assert ex.accounts[MAIN].keys[PLAIN_KEY].maker_only is False


def test_maker_only_key_takes_the_0ms_lane_on_premium() -> None:
    # Lanes set slow on purpose: the ordinary key waits them, the maker-only key does not.
    _ex, _clock, mk, plain = make(tier="premium", maker_delay_ms=50, cancel_delay_ms=50)
    slow = plain.send(TX_CREATE_ORDER, plain.create_info(299_000, POST_ONLY, coi=1))
    fast = mk.send(TX_CREATE_ORDER, mk.create_info(298_000, POST_ONLY, coi=2))
    assert slow.status == TX_PENDING and fast.status == TX_EXECUTED
    assert mk.send(TX_CANCEL_ORDER, mk.info(MarketIndex=0, Index=2)).status == TX_EXECUTED


def test_maker_only_key_waits_the_standard_lanes() -> None:
    _ex, _clock, mk, _ = make(tier="standard", speed_bumps=True)
    rec = mk.send(TX_CREATE_ORDER, mk.create_info(299_000, POST_ONLY, coi=1))
    assert rec.status == TX_PENDING  # 200 ms maker lane: no 0 ms lane off premium


def test_registration_keeps_or_changes_the_flag() -> None:
    ex, _clock, _mk, _ = make()
    assert ex.register_api_key(MAIN, MAKER_KEY).maker_only is True  # None: unchanged
    assert ex.register_api_key(MAIN, MAKER_KEY, maker_only=False).maker_only is False
    assert ex.register_api_key(MAIN, 9).maker_only is False  # a new slot: not maker-only


def test_sim_config_registers_maker_only_keys() -> None:
    pk = "11" * 40
    cfg = SimConfig(api_keys=((SimConfig().account_index, 6, pk, True),))
    with pytest.raises(ValueError, match="maker_only must be a bool"):
        SimConfig(api_keys=((SimConfig().account_index, 6, pk, 1),))  # type: ignore[arg-type]
    assert cfg.api_keys[0][3] is True


# ---------------------------------------------------------------- skip-nonce
def test_skip_nonce_jumps_ahead_and_the_plain_tx_gets_21104() -> None:
    ex, _clock, _mk, k = make()
    k.send(TX_CREATE_ORDER, k.create_info(299_000, GTT, coi=1))  # nonce 0
    assert ex.next_nonce(MAIN, PLAIN_KEY) == 1
    # Nonce 4 without the attribute: 21104, as before.
    assert (
        refused(ex, TX_CREATE_ORDER, k.create_info(298_000, GTT, coi=2, Nonce=4)) == E.INVALID_NONCE
    )
    assert ex.next_nonce(MAIN, PLAIN_KEY) == 1
    # With it: accepted, and the key's next nonce is 5 (nonces 1..3 are gone).
    rec = k.send(TX_CREATE_ORDER, k.create_info(298_000, GTT, coi=2, Nonce=4, skip=True))
    assert rec.error is None and ex.next_nonce(MAIN, PLAIN_KEY) == 5
    assert refused(ex, TX_CANCEL_ORDER, k.info(MarketIndex=0, Index=1, Nonce=3)) == E.INVALID_NONCE


def test_skip_nonce_never_goes_back_and_is_harmless_at_the_expected_nonce() -> None:
    ex, _clock, _mk, k = make()
    k.nonce = 3
    k.send(TX_CANCEL_ALL, k.info(TimeInForce=0, Time=0, L2TxAttributes={"4": 1, "5": 0}))
    assert ex.next_nonce(MAIN, PLAIN_KEY) == 4
    info = k.info(TimeInForce=0, Time=0, Nonce=2, skip=True)
    assert refused(ex, TX_CANCEL_ALL, info) == E.INVALID_NONCE
    k.send(TX_CANCEL_ALL, k.info(TimeInForce=0, Time=0, Nonce=4, skip=True))
    assert ex.next_nonce(MAIN, PLAIN_KEY) == 5


def test_skip_nonce_refused_by_another_rule_keeps_the_nonce() -> None:
    ex, _clock, _mk, k = make()
    bad = k.create_info(0, GTT, coi=1, Nonce=9, skip=True)  # price 0: an API-level refusal
    assert refused(ex, TX_CREATE_ORDER, bad) == E.INVALID_PRICE
    assert ex.next_nonce(MAIN, PLAIN_KEY) == 0


def test_skip_nonce_in_a_batch_jumps_at_its_first_tx() -> None:
    ex, _clock, _mk, k = make()
    infos = [
        k.create_info(299_000, GTT, coi=1, Nonce=7, skip=True),
        k.create_info(298_000, GTT, coi=2, Nonce=8),
    ]
    ex.submit_batch([TX_CREATE_ORDER, TX_CREATE_ORDER], infos)
    assert ex.next_nonce(MAIN, PLAIN_KEY) == 9
