"""Message shapes: every simulated message with a fixture carries the fixture's field names and
JSON types; messages with no fixture parse with lighter-sdk's own models."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from lighter.models.account_api_keys import AccountApiKeys
from lighter.models.detailed_accounts import DetailedAccounts
from lighter.models.enriched_tx import EnrichedTx
from lighter.models.next_nonce import NextNonce
from lighter.models.order_book_details import OrderBookDetails
from lighter.models.order_book_orders import OrderBookOrders
from lighter.models.order_books import OrderBooks
from lighter.models.orders import Orders
from lighter.models.resp_send_tx import RespSendTx
from lighter.models.resp_send_tx_batch import RespSendTxBatch
from lighter.models.trades import Trades
from websockets.asyncio.client import connect

from mmfast.sim.config import SimConfig
from mmfast.sim.thread import SimThread

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lighter"
MAIN, OTHER, KEY = 1001, 2002, 3


@pytest.fixture
def sim_config() -> SimConfig:
    # Stand-in signatures and tokens: shapes only (test_sim_signatures checks verification).
    return SimConfig(
        tier="premium",
        verify_signatures=False,
        seed=7,
        ws_ping_interval_ms=1000,
        ws_pong_timeout_ms=5000,
        speed_bumps=False,
    )


MIN = 60_000


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _jtype(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    return type(v).__name__


def assert_shape(want: Any, got: Any, path: str = "$") -> None:
    """`got` has every field of `want`, with the same JSON type, recursively.

    A null in the fixture accepts any type. Objects keyed by ids ("0", "2048") are maps: each
    fixture value is compared with each of ours. Array items are compared with the fixture's
    first item.
    """
    if want is None:
        return
    assert _jtype(got) == _jtype(want), f"{path}: {_jtype(got)} != {_jtype(want)}"
    if isinstance(want, dict):
        if want and all(k.isdigit() for k in want):
            assert got, f"{path}: empty map, fixture has entries"
            assert all(k.isdigit() for k in got), f"{path}: keys {list(got)}"
            for wv in want.values():
                for k, gv in got.items():
                    assert_shape(wv, gv, f"{path}[{k}]")
            return
        for k, wv in want.items():
            assert k in got, f"{path}.{k} missing"
            assert_shape(wv, got[k], f"{path}.{k}")
    elif isinstance(want, list) and want:
        assert got, f"{path}: empty list, fixture has items"
        for i, gv in enumerate(got):
            assert_shape(want[0], gv, f"{path}[{i}]")


def assert_frame(want: dict[str, Any], got: dict[str, Any]) -> None:
    assert got["type"] == want["type"]
    assert re.sub(r"\d+", "N", got["channel"]) == re.sub(r"\d+", "N", want["channel"])
    assert_shape(want, got)
    assert_decimals(want, got)


def wall_ms(st: SimThread) -> int:
    return st.call(lambda s: s.clock.wall_ms())


def order_info(
    now: int, account: int, nonce: int, coi: int, price: int, size: int, is_ask: bool, tif: int = 1
) -> dict[str, Any]:
    return {
        "AccountIndex": account,
        "ApiKeyIndex": KEY,
        "MarketIndex": 0,
        "ClientOrderIndex": coi,
        "BaseAmount": size,
        "Price": price,
        "IsAsk": int(is_ask),
        "Type": 0,
        "TimeInForce": tif,
        "ReduceOnly": 0,
        "TriggerPrice": 0,
        "OrderExpiry": 0 if tif == 0 else now + 60 * MIN,
        "ExpiredAt": now + 10 * MIN,
        "Nonce": nonce,
        "Sig": "c2ln",
        "L2TxAttributes": None,
    }


def token(st: SimThread, account: int) -> str:
    now_s = st.call(lambda s: s.clock.wall_ms()) // 1000
    return f"{now_s + 600}:{account}:{KEY}:{'ab' * 40}"


def populate(st: SimThread) -> None:
    """Two resting orders, a trade, a position and a finished order for MAIN."""

    def setup(sim):
        now = sim.clock.wall_ms()
        sim.exchange.add_account(OTHER, 10**12)
        ex = sim.exchange
        ex.submit(14, order_info(now, OTHER, 0, 1, 300_100, 500, True))
        ex.submit(14, order_info(now, MAIN, 0, 11, 299_000, 300, False))
        ex.submit(14, order_info(now, MAIN, 1, 12, 300_100, 200, False, tif=0))
        ex.submit(14, order_info(now, MAIN, 2, 13, 298_000, 300, False))
        ex.submit(
            15,
            {
                "AccountIndex": MAIN,
                "ApiKeyIndex": KEY,
                "MarketIndex": 0,
                "Index": 13,
                "ExpiredAt": sim.clock.wall_ms() + 10 * MIN,
                "Nonce": 3,
                "Sig": "c2ln",
                "L2TxAttributes": None,
            },
        )

    st.call(setup)


async def _get(session: aiohttp.ClientSession, url: str, **params: Any) -> Any:
    headers = {}
    if "authorization" in params:
        headers["authorization"] = params.pop("authorization")
    async with session.get(url, params=params, headers=headers) as r:
        body = await r.json()
        return r.status, body


def test_rest_messages_match_fixtures_and_sdk_models(sim: SimThread, run) -> None:
    populate(sim)
    base = sim.rest_url + "/api/v1/"
    auth = token(sim, MAIN)

    async def main() -> dict[str, Any]:
        async with aiohttp.ClientSession() as s:
            out = {}
            for name, ep, params in (
                ("books", "orderBooks", {}),
                ("details", "orderBookDetails", {"market_id": 0}),
                ("ob_orders", "orderBookOrders", {"market_id": 0, "limit": 10}),
                ("trades", "recentTrades", {"market_id": 0, "limit": 10}),
                ("nonce", "nextNonce", {"account_index": MAIN, "api_key_index": KEY}),
                ("account", "account", {"by": "index", "value": MAIN}),
                (
                    "active",
                    "accountActiveOrders",
                    {"account_index": MAIN, "market_id": 0, "authorization": auth},
                ),
                (
                    "inactive",
                    "accountInactiveOrders",
                    {"account_index": MAIN, "limit": 10, "authorization": auth},
                ),
                (
                    "by_coi",
                    "accountOrders",
                    {"account_index": MAIN, "client_order_indexes": "11,13", "authorization": auth},
                ),
                ("apikeys", "apikeys", {"account_index": MAIN, "api_key_index": 255}),
            ):
                status, body = await _get(s, base + ep, **params)
                assert status == 200, (ep, body)
                out[name] = body
            return out

    r = run(main())
    assert_shape(fixture("http_order_books.json"), r["books"])
    assert_decimals(fixture("http_order_books.json"), r["books"])
    OrderBooks.from_dict(r["books"])
    assert_shape(fixture("http_order_book_details.json"), r["details"])
    assert_decimals(fixture("http_order_book_details.json"), r["details"])
    OrderBookDetails.from_dict(r["details"])
    assert_shape(fixture("http_order_book_orders.json"), r["ob_orders"])
    assert_decimals(fixture("http_order_book_orders.json"), r["ob_orders"])
    OrderBookOrders.from_dict(r["ob_orders"])
    assert r["ob_orders"]["asks"][0]["remaining_base_amount"] == "0.0300"
    assert_shape(fixture("http_recent_trades.json"), r["trades"])
    assert_decimals(fixture("http_recent_trades.json"), r["trades"])
    Trades.from_dict(r["trades"])
    assert r["trades"]["trades"][0]["size"] == "0.0200"
    assert_shape(fixture("http_next_nonce.json"), r["nonce"])
    assert_decimals(fixture("http_next_nonce.json"), r["nonce"])
    assert NextNonce.from_dict(r["nonce"]).nonce == 4
    assert_shape(fixture("http_account.json"), r["account"])
    assert_decimals(fixture("http_account.json"), r["account"])
    DetailedAccounts.from_dict(r["account"])
    pos = r["account"]["accounts"][0]["positions"][0]
    assert (pos["position"], pos["sign"], pos["avg_entry_price"]) == ("0.0200", 1, "3001.00")
    for name in ("active", "inactive", "by_coi"):
        assert_shape(fixture("http_orders.json"), r[name])
        assert_decimals(fixture("http_orders.json"), r[name])
        Orders.from_dict(r[name])
    assert [o["client_order_index"] for o in r["active"]["orders"]] == [11]
    statuses = {o["client_order_index"]: o["status"] for o in r["inactive"]["orders"]}
    assert statuses == {12: "filled", 13: "canceled"}
    assert {o["client_order_index"] for o in r["by_coi"]["orders"]} == {11, 13}
    keys = AccountApiKeys.from_dict(r["apikeys"]).api_keys
    assert [(k.api_key_index, k.nonce) for k in keys] == [(KEY, 4)]


def test_send_tx_tx_lookup_and_errors(sim: SimThread, run) -> None:
    base = sim.rest_url + "/api/v1/"

    async def main():
        async with aiohttp.ClientSession() as s:
            info = order_info(wall_ms(sim), MAIN, 0, 5, 299_000, 100, False)
            async with s.post(
                base + "sendTx", data={"tx_type": "14", "tx_info": json.dumps(info)}
            ) as r:
                ok = (r.status, await r.json())
            # the same nonce again: 21104, HTTP 400
            async with s.post(
                base + "sendTx", data={"tx_type": "14", "tx_info": json.dumps(info)}
            ) as r:
                bad = (r.status, await r.json())
            infos = [
                json.dumps(order_info(wall_ms(sim), MAIN, n, 10 + n, 298_000, 100, False))
                for n in (1, 2)
            ]
            async with s.post(
                base + "sendTxBatch", data={"tx_types": "[14, 14]", "tx_infos": json.dumps(infos)}
            ) as r:
                batch = (r.status, await r.json())
            _, tx = await _get(s, base + "tx", by="hash", value=ok[1]["tx_hash"])
            missing = await _get(s, base + "tx", by="hash", value="00" * 40)
            unauth = await _get(s, base + "accountActiveOrders", account_index=MAIN, market_id=0)
            return ok, bad, batch, tx, missing, unauth

    ok, bad, batch, tx, missing, unauth = run(main())
    assert ok[0] == 200
    resp = RespSendTx.from_dict(ok[1])
    assert resp.code == 200 and len(resp.tx_hash) == 80
    assert bad == (400, {"code": 21104, "message": "invalid nonce: expected 1, got 0"})
    assert batch[0] == 200
    assert len(RespSendTxBatch.from_dict(batch[1]).tx_hash) == 2
    enriched = EnrichedTx.from_dict(tx)
    assert (enriched.status, enriched.type, enriched.nonce) == (2, 14, 0)
    assert json.loads(enriched.info)["ClientOrderIndex"] == 5
    assert missing[0] == 400 and missing[1]["code"] == 21500
    assert unauth[0] == 400 and unauth[1]["code"] == 21120


async def _recv_type(ws: Any, typ: str, timeout: float = 5.0) -> dict[str, Any]:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if msg.get("type") == typ:
            return msg


def test_ws_messages_match_fixtures(sim: SimThread, run) -> None:
    populate(sim)
    auth = token(sim, MAIN)

    async def main() -> dict[str, Any]:
        got: dict[str, Any] = {}
        async with connect(sim.ws_url) as ws:
            got["connected"] = json.loads(await ws.recv())
            for ch in ("order_book/0", "trade/0", "market_stats/0", "market_stats/all"):
                await ws.send(json.dumps({"type": "subscribe", "channel": ch}))
            for ch in (
                f"account_orders/0/{MAIN}",
                f"account_all_orders/{MAIN}",
                f"account_all_trades/{MAIN}",
                f"account_all_positions/{MAIN}",
                f"user_stats/{MAIN}",
            ):
                await ws.send(json.dumps({"type": "subscribe", "channel": ch, "auth": auth}))
            subscribed = {}
            while len(subscribed) < 9:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                subscribed[msg["channel"]] = msg
            got["subscribed"] = subscribed
            await ws.send(json.dumps({"type": "subscribe", "channel": "order_book/39"}))
            got["failed"] = await _recv_type(ws, "error")
            # MAIN buys more from OTHER's ask: deltas, trades, orders, positions, stats
            info = order_info(wall_ms(sim), MAIN, 4, 21, 300_100, 100, False, tif=0)
            await ws.send(
                json.dumps({"type": "jsonapi/sendtx", "data": {"tx_type": 14, "tx_info": info}})
            )
            updates: dict[str, dict[str, Any]] = {}
            deadline = asyncio.get_running_loop().time() + 5
            want = {
                "jsonapi/sendtx",
                "update/order_book",
                "update/trade",
                "update/account_orders",
                "update/account_all_orders",
                "update/account_all_trades",
                "update/account_all_positions",
                "update/user_stats",
                "update/market_stats",
            }
            while not want <= set(updates) or "market_stats:all" not in updates:
                remaining = deadline - asyncio.get_running_loop().time()
                msg = json.loads(await asyncio.wait_for(ws.recv(), max(remaining, 0.01)))
                updates.setdefault(msg["type"], msg)
                if msg.get("channel") == "market_stats:all":
                    updates["market_stats:all"] = msg
            got["updates"] = updates
        return got

    g = run(main())
    assert g["connected"]["type"] == "connected"
    sub = g["subscribed"]
    book = sub["order_book:0"]
    assert_frame(fixture("ws_order_book_subscribed.json"), book)
    assert book["order_book"]["begin_nonce"] == 0
    assert book["order_book"]["asks"] == [{"price": "3001.00", "size": "0.0300"}]
    assert_frame(fixture("ws_trade_subscribed.json"), sub["trade:0"])
    assert_frame(fixture("ws_market_stats_subscribed_single.json"), sub["market_stats:0"])
    assert_frame(fixture("ws_user_stats_update.json"), sub[f"user_stats:{MAIN}"])
    assert_frame(fixture("ws_user_stats_with_position.json"), sub[f"user_stats:{MAIN}"])
    assert_frame(
        fixture("ws_order_book_subscribe_failed.json") | {"channel": "order_book:39"}, g["failed"]
    )
    assert g["failed"]["code"] == 30012
    up = g["updates"]
    ack = up["jsonapi/sendtx"]["data"]
    assert RespSendTx.from_dict(ack).code == 200
    assert_frame(fixture("ws_order_book_update.json"), up["update/order_book"])
    delta = up["update/order_book"]["order_book"]
    assert delta["begin_nonce"] == book["order_book"]["nonce"]
    assert delta["asks"] == [{"price": "3001.00", "size": "0.0200"}]
    assert_frame(fixture("ws_trade_update.json"), up["update/trade"])
    assert_frame(fixture("ws_account_orders_update.json"), up["update/account_orders"])
    assert_frame(fixture("ws_account_all_trades_update.json"), up["update/account_all_trades"])
    assert_frame(
        fixture("ws_account_all_positions_update.json"), up["update/account_all_positions"]
    )
    pos = up["update/account_all_positions"]["positions"]["0"]
    assert (pos["position"], pos["sign"]) == ("0.0300", 1)
    assert_frame(fixture("ws_market_stats_update_single.json"), up["update/market_stats"])
    assert_frame(fixture("ws_market_stats_update_all.json"), up["market_stats:all"])
    Orders.from_dict({"code": 200, "orders": up["update/account_all_orders"]["orders"]["0"]})
    Trades.from_dict({"code": 200, "trades": up["update/account_all_trades"]["trades"]["0"]})


def test_empty_book_snapshot_matches_fixture(sim: SimThread, run) -> None:
    async def main():
        async with connect(sim.ws_url) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "subscribe", "channel": "order_book/1"}))
            return json.loads(await ws.recv())

    snap = run(main())
    assert_frame(fixture("ws_order_book_subscribed_empty.json"), snap)
    assert snap["order_book"]["asks"] == [] and snap["order_book"]["bids"] == []


@pytest.mark.parametrize(
    "name", ["http_orders.json", "http_recent_trades.json", "ws_account_orders_update.json"]
)
def test_shape_checker_catches_a_missing_or_retyped_field(name: str) -> None:
    want = fixture(name)
    got = json.loads(json.dumps(want))
    assert_shape(want, got)
    items = got.get("orders") or got.get("trades")
    item = items["0"][0] if isinstance(items, dict) else items[0]
    key = next(k for k, v in item.items() if isinstance(v, str))
    item[key] = 1
    with pytest.raises(AssertionError):
        assert_shape(want, got)
    del item[key]
    with pytest.raises(AssertionError):
        assert_shape(want, got)


# ---------------------------------------------------------------- decimal places and units
# The unit of every fixed-precision decimal string the fixtures carry. "price"/"size": the
# market's price_decimals/size_decimals; "usdc": 6 (micro-USDC); "pct2": a percentage with 2
# places (margin fractions, leverage); "fixedN": N places whatever the market.
UNITS: dict[str, str] = {
    **dict.fromkeys(
        (
            "price",
            "avg_entry_price",
            "mark_price",
            "index_price",
            "mid_price",
            "last_trade_price",
            "trigger_price",
        ),
        "price",
    ),
    **dict.fromkeys(
        (
            "size",
            "position",
            "initial_base_amount",
            "remaining_base_amount",
            "filled_base_amount",
            "min_base_amount",
            "open_interest",
            "taker_position_size_before",
            "maker_position_size_before",
        ),
        "size",
    ),
    **dict.fromkeys(
        (
            "collateral",
            "available_balance",
            "balance",
            "locked_balance",
            "margin_balance",
            "total_asset_value",
            "cross_asset_value",
            "cross_initial_margin_requirement",
            "cross_maintenance_margin_requirement",
            "usd_amount",
            "filled_quote_amount",
            "min_quote_amount",
            "order_quote_limit",
            "position_value",
            "unrealized_pnl",
            "realized_pnl",
            "allocated_margin",
            "total_funding_paid_out",
            "total_discount",
            "portfolio_value",
            "taker_entry_quote_before",
            "maker_entry_quote_before",
            "bid_account_pnl",
            "ask_account_pnl",
            "open_interest_limit",
            "max_llp_amount",
        ),
        "usdc",
    ),
    **dict.fromkeys(("initial_margin_fraction", "leverage", "margin_usage"), "pct2"),
    **dict.fromkeys(
        (
            "taker_fee",
            "maker_fee",
            "liquidation_fee",
            "funding_clamp_small",
            "funding_clamp_big",
            "base_interest_rate",
            "current_funding_rate",
            "funding_rate",
            "rate",
        ),
        "fixed4",
    ),
    "value": "fixed8",  # fundings: USDC paid per unit of position
}
# Decimal strings with no fixed precision: integers printed as strings, ids, placeholders.
NOT_FIXED = frozenset(
    {
        "liquidation_price",
        "buying_power",
        "multiplier",
        "created_at",
        "order_id",
        "client_order_id",
        "trade_id_str",
        "ask_id_str",
        "bid_id_str",
        "ask_client_id_str",
        "bid_client_id_str",
        "parent_order_id",
        "to_trigger_order_id_0",
        "to_trigger_order_id_1",
        "to_cancel_order_id_0",
        "integrator_fee_collector_index",
        "integrator_taker_fee",
        "integrator_maker_fee",
        "operator_fee",
        "min_operator_share_rate",
        "nonce",
        "daily_chart",
    }
)
# (market id) -> (price_decimals, size_decimals): the fixtures' ETH and BTC perps (from the
# captured orderBookDetails and the trades), which the simulator's defaults copy.
MARKET_DECIMALS = {0: (2, 4), 1: (1, 5)}
# Where the fixtures disagree with the unit above (the fixtures disagree among themselves
# there; docs/sim.md "Formats" says which source each choice follows).
FIXTURE_DISAGREEMENTS = (
    {
        ("ws_account_all_positions_update.json", f)
        for f in (
            "initial_margin_fraction",
            "position_value",
            "unrealized_pnl",
            "realized_pnl",
            "allocated_margin",
            "total_funding_paid_out",
            "total_discount",
        )
    }
    | {
        (name, f)
        for name in ("ws_market_stats_update_single.json", "ws_market_stats_update_all.json")
        for f in ("open_interest_limit", "current_funding_rate", "funding_rate")
    }
    | {
        ("ws_market_stats_subscribed_single.json", "open_interest"),
        ("ws_account_all_assets_with_position.json", "margin_balance"),
    }
)
_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")


def _places(v: str) -> int:
    return len(v.split(".", 1)[1]) if "." in v else 0


def _expected_places(unit: str, market: int | None, path: str) -> int:
    if unit == "usdc":
        return 6
    if unit == "pct2":
        return 2
    if unit.startswith("fixed"):
        return int(unit[5:])
    assert market in MARKET_DECIMALS, f"{path}: no market for a {unit} field"
    price_dp, size_dp = MARKET_DECIMALS[market]
    return price_dp if unit == "price" else size_dp


def decimal_mismatches(
    want: Any, got: Any, path: str = "$", market: int | None = 0, field: str = ""
) -> list[tuple[str, str, int, int]]:
    """(path, field, places in `got`, places its unit asks) for every fixed-precision decimal
    string of `want` (a fixture) found in `got`; a decimal field of unknown unit is an error.

    The market is the message's own (market_id, market_index, channel, id-keyed map); a body
    that names none (orderBookOrders) is market 0, as its capture and the tests' requests are.
    """
    out: list[tuple[str, str, int, int]] = []
    if isinstance(want, dict) and isinstance(got, dict):
        for k in ("market_id", "market_index"):
            if type(got.get(k)) is int:
                market = got[k]
        ch = got.get("channel")
        if (
            isinstance(ch, str)
            and ch.split(":")[0] in ("order_book", "trade", "market_stats", "ticker")
            and ch[-1].isdigit()
        ):
            market = int(ch.rsplit(":", 1)[1])
        keyed = bool(want) and all(k.isdigit() for k in want)
        for k, wv in want.items():
            if keyed:
                for gk, gv in got.items():
                    out += decimal_mismatches(wv, gv, f"{path}[{gk}]", int(gk), field)
            elif k in got:
                out += decimal_mismatches(wv, got[k], f"{path}.{k}", market, k)
    elif isinstance(want, list) and want and isinstance(got, list):
        for i, gv in enumerate(got):
            out += decimal_mismatches(want[0], gv, f"{path}[{i}]", market, field)
    elif (
        isinstance(want, str)
        and isinstance(got, str)
        and _DECIMAL.match(want)
        and field not in NOT_FIXED
        and not field.endswith(("_at", "_id", "_index"))
    ):
        assert field in UNITS, f"{path}: decimal field {field!r} has no unit in UNITS"
        if _DECIMAL.match(got):
            want_dp = _expected_places(UNITS[field], market, path)
            if _places(got) != want_dp:
                out.append((path, field, _places(got), want_dp))
    return out


def assert_decimals(want: Any, got: Any) -> None:
    """Every fixed-precision decimal of `got` has the places its unit asks."""
    bad = decimal_mismatches(want, got)
    assert not bad, f"decimal places (path, field, got, want): {bad}"


def test_fixture_decimals_follow_the_units_but_where_documented() -> None:
    found = set()
    for path in sorted(FIXTURES.glob("*.json")):
        if "spot" in path.name:
            continue  # no spot markets in the simulator
        data = fixture(path.name)
        found |= {(path.name, f) for _, f, _, _ in decimal_mismatches(data, data)}
    assert found == FIXTURE_DISAGREEMENTS


def test_decimal_check_catches_a_wrong_precision() -> None:
    want = fixture("http_account.json")
    got = json.loads(json.dumps(want))
    assert_decimals(want, got)
    got["accounts"][0]["collateral"] = "0.00"
    got["accounts"][0]["positions"][0]["avg_entry_price"] = "0.00"  # BTC: 1 place
    assert {f for _, f, _, _ in decimal_mismatches(want, got)} == {"collateral", "avg_entry_price"}
