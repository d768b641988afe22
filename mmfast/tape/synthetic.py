"""A seeded synthetic tape in mmfast's format: a market to backtest against without recording
one (tests, the backtest-speed benchmark, a first try of ``mmfast backtest``).

The messages are the venue's (``subscribed/order_book`` then chained ``update/order_book``
deltas every ``step_ms``, ``update/trade``, ``update/market_stats`` once a second), as
``mmfast record`` would have written them. The market: a fair price doing a Gaussian random
walk (``vol_ticks`` per step), a book of ``depth`` levels a side around it that follows it,
sizes that change (orders added and cancelled) at random, and Poisson trades
(``trades_per_s``) taking the touch, a few of them sweeping deeper levels. The same seed
gives the same tape, byte for byte.

``python -m mmfast.tape.synthetic OUT [--seconds S] [--seed N]`` writes one.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path

import orjson

from mmfast.core.units import format_units
from mmfast.tape.events import TapeMarket
from mmfast.tape.file import TapeWriter

__all__ = ["SYNTHETIC_ETH", "write_synthetic_tape"]

SYNTHETIC_ETH = TapeMarket(
    0, "ETH", price_decimals=2, size_decimals=4, min_base_lots=50, min_quote_micro=10_000_000
)
_START_WALL_NS = 1_790_000_000_000_000_000  # a fixed start: the same seed, the same bytes


def _poisson(rng: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def write_synthetic_tape(
    path: str | Path,
    *,
    seconds: float,
    seed: int = 1,
    market: TapeMarket = SYNTHETIC_ETH,
    mid_ticks: int = 300_000,
    step_ms: int = 50,
    depth: int = 25,
    half_spread_ticks: int = 2,
    vol_ticks: float = 0.6,
    trades_per_s: float = 8.0,
    churn_per_step: float = 3.0,
) -> int:
    """Write the tape (see the module doc); returns the number of messages."""
    rng = random.Random(f"synthetic-tape:{seed}")
    mid = market.market_id
    pd, sd = market.price_decimals, market.size_decimals
    unit = market.min_base_lots
    w = TapeWriter(
        path,
        (market,),
        source={"synthetic": {"seed": seed, "seconds": seconds}},
        start_wall_ns=_START_WALL_NS,
        start_mono_ns=0,
    )

    def px(p: int) -> str:
        return format_units(p, pd)

    def sz(q: int) -> str:
        return format_units(q, sd)

    fair = float(mid_ticks)
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    nonce = 1000
    trade_id = 10**9

    def refill(changed_b: dict[int, int], changed_a: dict[int, int]) -> None:
        """The book around the fair price: levels crossed by it go, missing ones appear."""
        bb = math.floor(fair) - half_spread_ticks
        ba = math.ceil(fair) + half_spread_ticks
        for p in [p for p in bids if p > bb or p < bb - depth]:
            del bids[p]
            changed_b[p] = 0
        for p in [p for p in asks if p < ba or p > ba + depth]:
            del asks[p]
            changed_a[p] = 0
        for i in range(depth):
            for book, p, ch in ((bids, bb - i, changed_b), (asks, ba + i, changed_a)):
                if p > 0 and p not in book:
                    book[p] = ch[p] = unit * rng.randint(1, 20)

    def levels(ch: dict[int, int], reverse: bool) -> list[dict[str, str]]:
        return [{"price": px(p), "size": sz(q)} for p, q in sorted(ch.items(), reverse=reverse)]

    def book_msg(typ: str, b: dict[int, int], a: dict[int, int], begin: int, t_ms: int) -> bytes:
        return orjson.dumps(
            {
                "channel": f"order_book:{mid}",
                "offset": nonce,
                "order_book": {
                    "code": 0,
                    "asks": levels(a, False),
                    "bids": levels(b, True),
                    "offset": nonce,
                    "nonce": nonce,
                    "begin_nonce": begin,
                },
                "timestamp": t_ms,
                "type": typ,
            }
        )

    refill({}, {})
    n = 0
    w.message(
        _START_WALL_NS,
        0,
        book_msg("subscribed/order_book", bids, asks, 0, _START_WALL_NS // 1_000_000),
    )
    n += 1
    steps = int(seconds * 1000 / step_ms)
    last_stats = 0
    for step in range(1, steps + 1):
        t_ns = step * step_ms * 1_000_000
        t_ms = (_START_WALL_NS + t_ns) // 1_000_000
        fair = max(10.0, fair + rng.gauss(0.0, vol_ticks))
        cb: dict[int, int] = {}
        ca: dict[int, int] = {}
        # Trades: the taker side leans with the last move; a large one sweeps levels.
        trades = []
        for _ in range(_poisson(rng, trades_per_s * step_ms / 1000)):
            buy = rng.random() < 0.5
            book, ch = (asks, ca) if buy else (bids, cb)
            want = unit * max(1, int(rng.expovariate(1 / 6)))
            for p in sorted(book, reverse=not buy):
                if want <= 0:
                    break
                take = min(want, book[p])
                want -= take
                trade_id += 1
                trades.append(
                    {
                        "trade_id": trade_id,
                        "market_id": mid,
                        "price": px(p),
                        "size": sz(take),
                        "is_maker_ask": buy,
                        "timestamp": t_ms,
                        "type": "trade",
                    }
                )
                if take == book[p]:
                    del book[p]
                    ch[p] = 0
                else:
                    book[p] -= take
                    ch[p] = book[p]
        if trades:
            w.message(
                _START_WALL_NS + t_ns,
                t_ns,
                orjson.dumps(
                    {
                        "channel": f"trade:{mid}",
                        "liquidation_trades": [],
                        "nonce": nonce,
                        "trades": trades,
                        "type": "update/trade",
                    }
                ),
            )
            n += 1
        # Orders added and cancelled at random levels.
        for _ in range(_poisson(rng, churn_per_step)):
            book, ch = (asks, ca) if rng.random() < 0.5 else (bids, cb)
            if not book:
                continue
            p = rng.choice(sorted(book))
            book[p] = max(unit, book[p] + unit * rng.randint(-3, 4))
            ch[p] = book[p]
        refill(cb, ca)
        if cb or ca:
            begin = nonce
            nonce += len(cb) + len(ca)
            w.message(
                _START_WALL_NS + t_ns + 1_000_000,
                t_ns + 1_000_000,
                book_msg("update/order_book", cb, ca, begin, t_ms),
            )
            n += 1
        if t_ns - last_stats >= 1_000_000_000:
            last_stats = t_ns
            mark = px(round(fair))
            w.message(
                _START_WALL_NS + t_ns + 2_000_000,
                t_ns + 2_000_000,
                orjson.dumps(
                    {
                        "channel": f"market_stats:{mid}",
                        "timestamp": t_ms,
                        "type": "update/market_stats",
                        "market_stats": {
                            "market_id": mid,
                            "symbol": market.symbol,
                            "mark_price": mark,
                            "index_price": mark,
                        },
                    }
                ),
            )
            n += 1
            w.flush()  # a frame a second, as mmfast record writes them
    w.close(
        _START_WALL_NS + steps * step_ms * 1_000_000 + 3_000_000,
        steps * step_ms * 1_000_000 + 3_000_000,
        "synthetic tape end",
    )
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m mmfast.tape.synthetic", description="write a seeded synthetic ETH tape"
    )
    p.add_argument("out", help="the tape to write (must not exist)")
    p.add_argument("--seconds", type=float, default=600.0, help="tape length (default 600)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    a = p.parse_args(argv)
    try:
        n = write_synthetic_tape(a.out, seconds=a.seconds, seed=a.seed)
    except (OSError, ValueError) as exc:
        print(f"synthetic tape: {exc}", file=sys.stderr)
        return 2
    print(f"{a.out}: {n} messages, {a.seconds:g} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
