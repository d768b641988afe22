"""The venue's JSON shapes, built from engine state.

Field names and JSON types follow the captured payloads in tests/fixtures/lighter/ and, where a
message has no capture, lighter-sdk's models (every field the SDK requires is present, so its
strict models parse these). Decimal values are strings with the market's fixed precision.
"""

from __future__ import annotations

import json
from typing import Any

from mmfast.core.units import to_float
from mmfast.sim.engine import (
    TIF_NAMES,
    TX_FAILED,
    TYPE_NAMES,
    Account,
    Exchange,
    MarketState,
    Order,
    Position,
    TxRecord,
)
from mmfast.sim.units import USDC_DECIMALS, div_round, fmt_fixed

USDC = USDC_DECIMALS


def _px(m: MarketState, ticks: int) -> str:
    return fmt_fixed(ticks, m.spec.price_decimals)


def _sz(m: MarketState, lots: int) -> str:
    return fmt_fixed(lots, m.spec.size_decimals)


def _usd(micro: int) -> str:
    return fmt_fixed(micro, USDC)


def _pct4(fee_1e6: int) -> str:
    """Fee rate in 1e-6 -> the venue's percent string with 4 decimals (196 -> "0.0196")."""
    return fmt_fixed(fee_1e6, 4)


def _float(ticks: int, decimals: int) -> float:
    return to_float(ticks, decimals)


# ---------------------------------------------------------------- markets
def order_book_summary(m: MarketState) -> dict[str, Any]:
    """One entry of `orderBooks.order_books`."""
    s = m.spec
    return {
        "symbol": s.symbol,
        "market_id": s.market_id,
        "market_type": "perp",
        "base_asset_id": 0,
        "quote_asset_id": 0,
        "status": "active",
        "taker_fee": _pct4(s.taker_fee),
        "is_taker_fee_enabled": True,
        "maker_fee": _pct4(s.maker_fee),
        "is_maker_fee_enabled": True,
        "liquidation_fee": "1.0000",
        "min_base_amount": _sz(m, s.min_base_amount),
        "min_quote_amount": _usd(s.min_quote_amount),
        "order_quote_limit": _usd(s.order_quote_limit),
        "supported_size_decimals": s.size_decimals,
        "supported_price_decimals": s.price_decimals,
        "supported_quote_decimals": USDC,
        "created_at": "0",
        "multiplier": "1",
        "start_timestamp": 0,
        "end_timestamp": 0,
        "settlement_type": 0,
        "settlement_price": 0,
        "settlement_cap": 0,
        "outcome": 0,
        "default_price": 0,
        "operator_account_index": 0,
        "is_frozen": False,
        "open_interest": _sz(m, m.open_interest),
    }


def order_book_detail(m: MarketState) -> dict[str, Any]:
    """One entry of `orderBookDetails.order_book_details`."""
    s = m.spec
    out = order_book_summary(m)
    last = m.last_trade_price or m.mark_price
    out.update(
        {
            "size_decimals": s.size_decimals,
            "price_decimals": s.price_decimals,
            "quote_multiplier": 1,
            "default_initial_margin_fraction": s.default_initial_margin_fraction,
            "min_initial_margin_fraction": s.min_initial_margin_fraction,
            "maintenance_margin_fraction": s.maintenance_margin_fraction,
            "closeout_margin_fraction": s.closeout_margin_fraction,
            "last_trade_price": _float(m.last_trade_price, s.price_decimals),
            "daily_trades_count": m.trade_count,
            "daily_base_token_volume": _float(m.base_volume, s.size_decimals),
            "daily_quote_token_volume": _float(m.quote_volume, USDC),
            "daily_price_low": _float(last, s.price_decimals),
            "daily_price_high": _float(last, s.price_decimals),
            "daily_price_change": 0.0,
            "open_interest": _float(m.open_interest, s.size_decimals),
            "daily_chart": {},
            "market_config": {
                "market_margin_mode": 0,
                "insurance_fund_account_index": 281474976710655,
                "liquidation_mode": 0,
                "force_reduce_only": False,
                "trading_hours": "",
                "funding_fee_discounts_enabled": False,
                "hidden": False,
                "rfq_enabled": False,
            },
            "strategy_index": 0,
            "funding_clamp_small": "0.0500",
            "funding_clamp_big": "4.0000",
            "base_interest_rate": "0.0100",
            "mark_price": _px(m, m.mark_price),
            "index_price": _px(m, m.mark_price),
            "market_flags": 0,
            "funding_premium_multiplier": 0,
        }
    )
    return out


def market_stats(m: MarketState) -> dict[str, Any]:
    """The `market_stats` object of one market."""
    s = m.spec
    best_ask, best_bid = m.asks.best(), m.bids.best()
    mid = "" if best_ask is None or best_bid is None else _px(m, (best_ask + best_bid) // 2)
    last = m.last_trade_price or m.mark_price
    return {
        "symbol": s.symbol,
        "market_id": s.market_id,
        "index_price": _px(m, m.mark_price),
        "mark_price": _px(m, m.mark_price),
        "mid_price": mid,
        "open_interest": _sz(m, m.open_interest),
        "open_interest_limit": "72057594037927936.000000",
        "funding_clamp_small": "0.0500",
        "funding_clamp_big": "4.0000",
        "base_interest_rate": "0.0100",
        "last_trade_price": _px(m, m.last_trade_price),
        "current_funding_rate": "0.0000",
        "funding_rate": "0.0000",
        "funding_timestamp": 0,
        "daily_base_token_volume": _float(m.base_volume, s.size_decimals),
        "daily_quote_token_volume": _float(m.quote_volume, USDC),
        "daily_price_low": _float(last, s.price_decimals),
        "daily_price_high": _float(last, s.price_decimals),
        "daily_price_change": 0.0,
    }


def levels_json(m: MarketState, levels: list[tuple[int, int]]) -> list[dict[str, str]]:
    return [{"price": _px(m, p), "size": _sz(m, q)} for p, q in levels]


# ---------------------------------------------------------------- orders and trades
def order_json(ex: Exchange, o: Order) -> dict[str, Any]:
    """An account order, as in accountActiveOrders / account_orders."""
    m = ex.markets[o.market]
    return {
        "order_index": o.order_index,
        "client_order_index": o.client_order_index,
        "order_id": str(o.order_index),
        "client_order_id": str(o.client_order_index),
        "market_index": o.market,
        "owner_account_index": o.account,
        "initial_base_amount": _sz(m, o.initial),
        "price": _px(m, o.price),
        "nonce": o.nonce,
        "remaining_base_amount": _sz(m, o.remaining),
        "is_ask": o.is_ask,
        "base_size": o.initial,
        "base_price": o.price,
        "filled_base_amount": _sz(m, o.filled_base),
        "filled_quote_amount": _usd(o.filled_quote),
        "side": "sell" if o.is_ask else "buy",
        "type": TYPE_NAMES[o.type],
        "time_in_force": TIF_NAMES[o.tif],
        "reduce_only": o.reduce_only,
        "trigger_price": _px(m, 0),
        "order_expiry": o.expiry_ms,
        "status": o.status,
        "trigger_status": "na",
        "trigger_time": 0,
        "parent_order_index": 0,
        "parent_order_id": "0",
        "to_trigger_order_id_0": "0",
        "to_trigger_order_id_1": "0",
        "to_cancel_order_id_0": "0",
        "integrator_fee_collector_index": "0",
        "integrator_taker_fee": "0",
        "integrator_maker_fee": "0",
        "block_height": o.block_height,
        "timestamp": o.updated_ms,
        "created_at": o.created_ms,
        "updated_at": o.updated_ms,
        "transaction_time": o.transaction_time_us,
        "order_flags": 0,
        "order_version": 0,
        "market_symbol": m.spec.symbol,
        "market_kind": "perp",
    }


def simple_order_json(ex: Exchange, o: Order) -> dict[str, Any]:
    """A resting order in orderBookOrders."""
    m = ex.markets[o.market]
    return {
        "order_index": o.order_index,
        "order_id": str(o.order_index),
        "owner_account_index": o.account,
        "initial_base_amount": _sz(m, o.initial),
        "remaining_base_amount": _sz(m, o.remaining),
        "price": _px(m, o.price),
        "order_expiry": o.expiry_ms,
        "transaction_time": o.transaction_time_us,
    }


def trade_json(ex: Exchange, t: dict[str, Any], account: int | None = None) -> dict[str, Any]:
    """A trade, as in recentTrades, trade/{m} and account_all_trades.

    `account` fills the per-account realized PnL fields (bid/ask_account_pnl) for that account.
    """
    m = ex.markets[t["market_id"]]
    t_size, t_entry = t["taker_before"]
    m_size, m_entry = t["maker_before"]
    maker_is_ask = t["is_maker_ask"]
    taker_buys = maker_is_ask
    t_after = t_size + (t["size"] if taker_buys else -t["size"])
    m_after = m_size + (-t["size"] if taker_buys else t["size"])
    ask_pnl = t["maker_pnl"] if maker_is_ask else t["taker_pnl"]
    bid_pnl = t["taker_pnl"] if maker_is_ask else t["maker_pnl"]
    imf = m.spec.default_initial_margin_fraction
    return {
        "trade_id": t["trade_id"],
        "trade_id_str": str(t["trade_id"]),
        "tx_hash": t["tx_hash"],
        "type": t.get("kind", "trade"),
        "market_id": t["market_id"],
        "size": _sz(m, t["size"]),
        "price": _px(m, t["price"]),
        "usd_amount": _usd(t["usd_amount"]),
        "ask_id": t["ask_id"],
        "ask_id_str": str(t["ask_id"]),
        "bid_id": t["bid_id"],
        "bid_id_str": str(t["bid_id"]),
        "ask_client_id": t["ask_client_id"],
        "ask_client_id_str": str(t["ask_client_id"]),
        "bid_client_id": t["bid_client_id"],
        "bid_client_id_str": str(t["bid_client_id"]),
        "ask_account_id": t["ask_account_id"],
        "bid_account_id": t["bid_account_id"],
        "is_maker_ask": maker_is_ask,
        "block_height": t["block_height"],
        "timestamp": t["timestamp"],
        "taker_fee": t["taker_fee"],
        "taker_position_size_before": _sz(m, t_size),
        "taker_entry_quote_before": _usd(t_entry),
        "taker_initial_margin_fraction_before": imf,
        "taker_position_sign_changed": (t_size > 0 > t_after) or (t_size < 0 < t_after),
        "maker_fee": t["maker_fee"],
        "maker_position_size_before": _sz(m, m_size),
        "maker_entry_quote_before": _usd(m_entry),
        "maker_initial_margin_fraction_before": imf,
        "maker_position_sign_changed": (m_size > 0 > m_after) or (m_size < 0 < m_after),
        "transaction_time": t["transaction_time"],
        "bid_account_pnl": _usd(bid_pnl if account in (None, t["bid_account_id"]) else 0),
        "ask_account_pnl": _usd(ask_pnl if account in (None, t["ask_account_id"]) else 0),
        "integrator_maker_fee": 0,
        "integrator_maker_fee_collector_index": 0,
        "integrator_taker_fee": 0,
        "integrator_taker_fee_collector_index": 0,
        "taker_allocated_margin_usdc_before": 0,
        "taker_allocated_margin_usdc_after": 0,
        "maker_allocated_margin_usdc_before": 0,
        "maker_allocated_margin_usdc_after": 0,
        "bid_order_version": 0,
        "ask_order_version": 0,
        "market_symbol": m.spec.symbol,
        "market_kind": "perp",
    }


# ---------------------------------------------------------------- accounts
def position_json(ex: Exchange, acct: Account, market: int) -> dict[str, Any]:
    m = ex.markets[market]
    p = acct.positions.get(market) or Position()
    size = abs(p.size)
    value = size * m.mark_price * m.spec.quote_scale
    avg = div_round(p.entry_quote, size * m.spec.quote_scale) if size else 0
    imf = ex.margin_fraction(acct, market)
    live = [o for o in acct.live.values() if o.market == market]
    return {
        "market_id": market,
        "symbol": m.spec.symbol,
        "initial_margin_fraction": fmt_fixed(imf, 2),
        "open_order_count": len(live),
        "pending_order_count": 0,
        "position_tied_order_count": 0,
        "sign": -1 if p.size < 0 else 1,
        "position": _sz(m, size),
        "avg_entry_price": _px(m, avg),
        "position_value": _usd(value),
        "unrealized_pnl": _usd(ex.unrealized_pnl(acct, market)),
        "realized_pnl": _usd(p.realized_pnl),
        "liquidation_price": "0",
        "total_funding_paid_out": "0.000000",
        "margin_mode": acct.leverage.get(market, (0, 0))[1],
        "allocated_margin": "0.000000",
        "total_discount": "0.000000",
        "margin_set_flag": 0,
    }


def position_markets(acct: Account) -> list[int]:
    """Markets where the account has a position record or a live order."""
    return sorted(set(acct.positions) | {o.market for o in acct.live.values()})


def account_json(ex: Exchange, acct: Account) -> dict[str, Any]:
    """One DetailedAccount."""
    equity = ex.equity(acct)
    imr = ex.initial_margin(acct)
    mmr = sum(
        abs(p.size)
        * ex.markets[mid].mark_price
        * ex.markets[mid].spec.quote_scale
        * ex.markets[mid].spec.maintenance_margin_fraction
        // 10_000
        for mid, p in acct.positions.items()
    )
    return {
        "code": 0,
        "account_type": 0,
        "index": acct.index,
        "l1_address": acct.l1_address,
        "cancel_all_time": acct.cancel_all_time,
        "total_order_count": acct.total_order_count,
        "total_isolated_order_count": 0,
        "pending_order_count": 0,
        "available_balance": _usd(equity - imr),
        "status": 1,
        "collateral": _usd(acct.collateral),
        "transaction_time": 0,
        "account_trading_mode": 0,
        "account_index": acct.index,
        "name": "",
        "description": "",
        "can_invite": False,
        "referral_points_percentage": "",
        "can_rfq": False,
        "can_rfq_market_ids": [],
        "created_at": 0,
        "metadata": {"color": ""},
        "positions": [position_json(ex, acct, mid) for mid in position_markets(acct)],
        "assets": [
            {
                "symbol": "USDC",
                "asset_id": 3,
                "balance": _usd(acct.collateral),
                "locked_balance": "0.000000",
                "margin_mode": "disabled",
                "margin_balance": _usd(equity),
                "multiplier": "1",
            }
        ],
        "total_asset_value": _usd(equity),
        "cross_asset_value": _usd(equity),
        "cross_initial_margin_requirement": _usd(imr),
        "cross_maintenance_margin_requirement": _usd(mmr),
        "shares": [],
        "pending_unlocks": [],
        "approved_integrators": [],
        "pool_info": {
            "status": 0,
            "operator_fee": "0",
            "min_operator_share_rate": "0",
            "total_shares": 0,
            "operator_shares": 0,
            "annual_percentage_yield": 0,
            "daily_returns": [],
            "share_prices": [],
            "sharpe_ratio": 0,
            "strategies": [],
        },
        "agent_enabled": False,
    }


def user_stats_json(ex: Exchange, acct: Account) -> dict[str, Any]:
    equity = ex.equity(acct)
    imr = ex.initial_margin(acct)
    notional = sum(
        abs(p.size) * ex.markets[mid].mark_price * ex.markets[mid].spec.quote_scale
        for mid, p in acct.positions.items()
    )
    leverage = div_round(notional * 100, equity) if equity > 0 else 0
    usage = div_round(imr * 10_000, equity) if equity > 0 else 0
    stats = {
        "available_balance": _usd(equity - imr),
        "buying_power": "0",
        "collateral": _usd(acct.collateral),
        "leverage": fmt_fixed(leverage, 2),
        "margin_usage": fmt_fixed(usage, 2),
        "portfolio_value": _usd(equity),
    }
    return {
        "account_trading_mode": 0,
        **stats,
        "cross_stats": dict(stats),
        "total_stats": dict(stats),
    }


def tx_json(ex: Exchange, rec: TxRecord) -> dict[str, Any]:
    """EnrichedTx for `tx?by=hash`."""
    if rec.status == TX_FAILED and rec.error is not None:
        event_info = json.dumps({"error": rec.error.to_json()})
    else:
        event_info = json.dumps({"order_index": rec.order_index} if rec.order_index else {})
    return {
        "code": 200,
        "hash": rec.hash,
        "type": rec.type,
        "info": rec.info,
        "event_info": event_info,
        "status": rec.status,
        "transaction_index": rec.seq,
        "l1_address": ex.accounts[rec.account].l1_address if rec.account in ex.accounts else "",
        "account_index": rec.account,
        "nonce": rec.nonce,
        "expire_at": rec.expired_at,
        "block_height": rec.block_height,
        "queued_at": rec.queued_at_ms,
        "executed_at": rec.executed_at_ms,
        "sequence_index": rec.seq,
        "parent_hash": "",
        "api_key_index": rec.api_key,
        "transaction_time": rec.executed_at_ms * 1000,
        "committed_at": rec.executed_at_ms,
        "verified_at": rec.executed_at_ms,
    }
