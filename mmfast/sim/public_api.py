"""REST endpoints for clients beyond the official SDK (ccxt's Lighter client among them): the
exchange status (`/`), `assetDetails`, `candles`, `fundings`, `funding-rates`,
`exchangeStats`, `accountsByL1Address` and `accountLimits`, plus the funded account's
throwaway L1 (Ethereum) key that lets such a client register an API key with a ChangePubKey.

Kept apart from server.py so the server only gains one `install` call. Shapes follow the
captured payloads in tests/fixtures/lighter where one exists (candles, fundings) and
lighter-sdk's models otherwise (every field the SDK requires is present).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from aiohttp import web

from mmfast.sim import errors as E
from mmfast.sim import wire
from mmfast.sim.errors import VenueError
from mmfast.sim.units import USDC_DECIMALS, fmt_fixed

if TYPE_CHECKING:
    from mmfast.sim.server import Simulator

API = "/api/v1"
USDC_ASSET_ID = 3  # the venue's asset id for USDC (as in `account.assets`)
# Candle resolutions the venue accepts, in ms.
RESOLUTIONS_MS = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "1w": 604_800_000,
}
FUNDING_RESOLUTIONS_MS = {"1h": 3_600_000, "1d": 86_400_000}
MAX_CANDLES = 500  # per call, as the venue documents
MAX_FUNDINGS = 750
MAX_TIMESTAMP = 5_000_000_000_000  # the SDK's bound on start/end_timestamp (ms)


def throwaway_l1_key(seed: int) -> tuple[str, str]:
    """(private key hex, checksummed address) of the funded account's L1 key, derived from the
    simulator's seed so a run is reproducible. A test key: it holds nothing anywhere."""
    from eth_account import Account as EthAccount

    digest = hashlib.sha256(b"mmfast.sim throwaway L1 key:" + str(seed).encode()).digest()
    key = "0x" + digest.hex()
    return key, EthAccount.from_key(key).address


def install(sim: Simulator, router: web.UrlDispatcher) -> None:
    """Give the funded account its L1 address and add the endpoints to `router`."""
    key, address = throwaway_l1_key(sim.config.seed)
    sim.l1_private_key, sim.l1_address = key, address
    sim.exchange.accounts[sim.config.account_index].l1_address = address
    api = PublicApi(sim)
    router.add_get("/", api.status)
    for name, handler in (
        ("assetDetails", api.asset_details),
        ("candles", api.candles),
        ("fundings", api.fundings),
        ("funding-rates", api.funding_rates),
        ("exchangeStats", api.exchange_stats),
        ("accountsByL1Address", api.accounts_by_l1_address),
        ("accountLimits", api.account_limits),
    ):
        router.add_get(f"{API}/{name}", handler)


def query_int(
    q: Any, name: str, default: int | None = None, lo: int | None = None, hi: int | None = None
) -> int:
    """A query integer (VenueError 21501 naming the parameter when missing or malformed)."""
    v = q.get(name)
    if v is None or v == "":
        if default is None:
            raise VenueError(E.INVALID_TX_INFO, f"{name} is required")
        return default
    try:
        n = int(v)
    except ValueError:
        raise VenueError(E.INVALID_TX_INFO, f"{name} must be an integer, got {v!r}") from None
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        raise VenueError(E.INVALID_TX_INFO, f"{name} must be within {lo}..{hi}, got {n}")
    return n


def _resolution(q: Any, table: dict[str, int]) -> tuple[str, int]:
    """The query's ``resolution`` and its step in ms (VenueError 21501 if not in ``table``)."""
    res = q.get("resolution", "")
    step = table.get(res)
    if step is None:
        raise VenueError(
            E.INVALID_TX_INFO, f"resolution must be one of {', '.join(table)}, got {res!r}"
        )
    return res, step


def _ok(body: dict[str, Any]) -> web.Response:
    return web.json_response(body)


class PublicApi:
    """The handlers; errors are raised as VenueError and answered by the server's middleware
    (HTTP 400 `{"code", "message"}`)."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.ex = sim.exchange
        self.started_ms = sim.clock.wall_ms()  # funding rounds start here

    def _market(self, q: Any) -> Any:
        mid = query_int(q, "market_id")
        m = self.ex.markets.get(mid)
        if m is None:
            raise VenueError(E.INVALID_MARKET_INDEX, str(mid))
        return m

    def _window(self, q: Any) -> tuple[int, int, int]:
        start = query_int(q, "start_timestamp", lo=0, hi=MAX_TIMESTAMP)
        end = query_int(q, "end_timestamp", lo=0, hi=MAX_TIMESTAMP)
        count_back = query_int(q, "count_back", lo=0)
        if end < start:
            raise VenueError(
                E.INVALID_TX_INFO, f"end_timestamp {end} is before start_timestamp {start}"
            )
        return start, end, count_back

    async def status(self, request: web.Request) -> web.Response:
        # The venue's root answers status "200" (ccxt's fetch_status/fetch_time read it).
        return _ok(
            {
                "status": 200,
                "network_id": self.sim.config.chain_id,
                "timestamp": self.sim.clock.wall_ms() // 1000,
            }
        )

    async def asset_details(self, request: web.Request) -> web.Response:
        asset_id = query_int(request.query, "asset_id", 0)
        if asset_id not in (0, USDC_ASSET_ID):  # 0 = every asset
            raise VenueError(E.INVALID_TX_INFO, f"unknown asset_id {asset_id}")
        usdc = {
            "asset_id": USDC_ASSET_ID,
            "symbol": "USDC",
            "l1_decimals": USDC_DECIMALS,
            "decimals": USDC_DECIMALS,
            "min_transfer_amount": "1.000000",
            "min_withdrawal_amount": "1.000000",
            "margin_mode": "enabled",
            "index_price": "1.000000",
            "l1_address": "0x" + "0" * 40,
            "global_supply_cap": "0.000000",
            "liquidation_fee": "0.000000",
            "liquidation_threshold": "0.000000",
            "loan_to_value": "0.000000",
            "price_decimals": USDC_DECIMALS,
            "total_supplied": "0.000000",
            "user_supply_cap": "0.000000",
            "liquidation_factor": "0.000000",
            "multiplier": "1",
        }
        return _ok({"code": 200, "asset_details": [usdc]})

    async def candles(self, request: web.Request) -> web.Response:
        q = request.query
        m = self._market(q)
        res, step = _resolution(q, RESOLUTIONS_MS)
        start, end, count_back = self._window(q)
        self.ex.poll()
        s = m.spec
        buckets: dict[int, dict[str, Any]] = {}
        # Built from the trades the simulator keeps (`recent_trades_kept`): older candles are
        # gone with them.
        for t in m.trades:
            ts = t["timestamp"]
            b = ts - ts % step
            if not start <= b <= end:
                continue
            px = wire._float(t["price"], s.price_decimals)
            c = buckets.get(b)
            if c is None:
                c = buckets[b] = {
                    "t": b,
                    "o": px,
                    "h": px,
                    "l": px,
                    "c": px,
                    "v": 0,
                    "V": 0,
                    "i": 0,
                }
            c["h"], c["l"], c["c"] = max(c["h"], px), min(c["l"], px), px
            c["v"] += t["size"]
            c["V"] += t["usd_amount"]
            c["i"] = t["trade_id"]
        out = [buckets[b] for b in sorted(buckets)]
        if count_back:
            out = out[-count_back:]
        out = out[-MAX_CANDLES:]
        for c in out:
            c["v"] = wire._float(c["v"], s.size_decimals)
            c["V"] = wire._float(c["V"], USDC_DECIMALS)
        # The venue answers null for no candles (http_candles_null.json); lighter-sdk's model
        # requires a list, so an empty window is [] here.
        return _ok({"code": 200, "r": res, "c": out})

    async def fundings(self, request: web.Request) -> web.Response:
        q = request.query
        m = self._market(q)
        res, step = _resolution(q, FUNDING_RESOLUTIONS_MS)
        start, end, count_back = self._window(q)
        # Funding is not simulated: every round since the simulator started is a zero rate.
        now = self.sim.clock.wall_ms()
        first = max(start, self.started_ms)
        first += -first % step
        rounds = range(first, min(end, now) + 1, step)
        stamps = list(rounds[-count_back:] if count_back else rounds)[-MAX_FUNDINGS:]
        del m  # the market only needs to exist
        return _ok(
            {
                "code": 200,
                "resolution": res,
                "fundings": [
                    {
                        "timestamp": ts // 1000,
                        "value": fmt_fixed(0, 8),
                        "rate": fmt_fixed(0, 4),
                        "direction": "long",
                    }
                    for ts in stamps
                ],
            }
        )

    async def funding_rates(self, request: web.Request) -> web.Response:
        return _ok(
            {
                "code": 200,
                "funding_rates": [
                    {"market_id": mid, "exchange": "lighter", "symbol": m.spec.symbol, "rate": 0.0}
                    for mid, m in sorted(self.ex.markets.items())
                ],
            }
        )

    async def exchange_stats(self, request: web.Request) -> web.Response:
        stats = []
        trades = 0
        usd = 0
        for _, m in sorted(self.ex.markets.items()):
            s = m.spec
            stats.append(
                {
                    "symbol": s.symbol,
                    "last_trade_price": wire._float(m.last_trade_price, s.price_decimals),
                    "daily_trades_count": m.trade_count,
                    "daily_base_token_volume": wire._float(m.base_volume, s.size_decimals),
                    "daily_quote_token_volume": wire._float(m.quote_volume, USDC_DECIMALS),
                    "daily_price_change": 0.0,
                }
            )
            trades += m.trade_count
            usd += m.quote_volume
        return _ok(
            {
                "code": 200,
                "total": len(stats),
                "order_book_stats": stats,
                "daily_usd_volume": wire._float(usd, USDC_DECIMALS),
                "daily_trades_count": trades,
            }
        )

    async def accounts_by_l1_address(self, request: web.Request) -> web.Response:
        addr = request.query.get("l1_address", "")
        if not addr:
            raise VenueError(E.INVALID_TX_INFO, "l1_address is required")
        # L1 addresses compare case-insensitively (checksummed or lowercase hex).
        accts = sorted(
            (a for a in self.ex.accounts.values() if a.l1_address.lower() == addr.lower()),
            key=lambda a: a.index,
        )
        if not accts:
            raise VenueError(E.ACCOUNT_NOT_FOUND, addr)
        self.ex.poll()
        return _ok(
            {
                "code": 200,
                "l1_address": accts[0].l1_address,
                "sub_accounts": [wire.account_json(self.ex, a) for a in accts],
            }
        )

    async def account_limits(self, request: web.Request) -> web.Response:
        account = query_int(request.query, "account_index")
        self.sim._auth(request, account)
        tier = self.sim.config.tier
        return _ok(
            {
                "code": 200,
                "max_llp_percentage": 25,
                "user_tier": tier,
                "can_create_public_pool": False,
                "max_llp_amount": "0.000000",
                "current_maker_fee_tick": 0,
                "current_taker_fee_tick": 0,
                "effective_lit_stakes": "0.00000000",
                "leased_lit": "0.00000000",
                "user_tier_name": tier,
                "user_tier_last_update": 0,
                "bo_user_tier_name": tier,
                "bo_fee_rate": 1,
            }
        )
