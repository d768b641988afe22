"""Take-profit diagnostics: ``mmfast diagnose tp-mismatch`` and ``mmfast diagnose tp-side-vs-ro``.

The take-profit (TP) side is the side that closes the current position: asks (sell) when long,
bids (buy) when short; a flat account has none.

* **tp-mismatch** compares the market's open orders as the WebSocket account stream shows them
  (``account_orders/{market}/{account}``: snapshot, then updates) with REST
  ``accountActiveOrders``, and reports orders seen on one side only and orders whose fields
  differ. A change in flight shows up on one side first, so a difference counts only if it is
  still there after ``settle_s`` in every one of ``rounds`` REST reads (each read is followed by
  ``settle_s`` for the stream to catch up); the others are reported as transient.
* **tp-side-vs-ro** counts the open orders on the TP side and how many of them are reduce-only,
  and lists the client order indexes of those that are not. Position and orders come from REST
  (``account``, ``accountActiveOrders``) or, with ``source="ws"``, from the account stream.

Exit codes: 0 consistent, 1 differences found, 2 error. Both tools are read-only and close every
connection, session and thread they opened on exit, on success or error (``VenueSession``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from mmfast.connector.lighter.budget import RateBudget
from mmfast.connector.lighter.markets import MarketInfo
from mmfast.connector.lighter.secret import ApiKey, redact
from mmfast.core.timesource import REAL_TIME, TimeSource
from mmfast.diagnostics.venue import DiagError, DiagTarget, OrderView, VenueSession

__all__ = [
    "COMPARED_FIELDS",
    "EXIT_DIFFERENCES",
    "EXIT_ERROR",
    "EXIT_OK",
    "FieldDiff",
    "MismatchReport",
    "TpSideReport",
    "add_diagnose_parsers",
    "check_mismatch",
    "check_tp_side",
    "compare_orders",
    "main_tp_mismatch",
    "main_tp_side_vs_ro",
    "run_tp_mismatch",
    "run_tp_side_vs_ro",
    "tp_mismatch",
    "tp_side_of",
    "tp_side_vs_ro",
]

EXIT_OK = 0
EXIT_DIFFERENCES = 1
EXIT_ERROR = 2

# OrderView fields compared between the two views, in report order.
COMPARED_FIELDS = (
    "client_order_index",
    "is_ask",
    "price_ticks",
    "remaining_lots",
    "initial_lots",
    "reduce_only",
    "time_in_force",
    "status",
)


# --- tp-mismatch ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldDiff:
    """One field of one order that the two views disagree on."""

    order_index: int
    client_order_index: int  # as REST has it
    field: str
    ws: Any
    rest: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "order_index": self.order_index,
            "client_order_index": self.client_order_index,
            "field": self.field,
            "ws": self.ws,
            "rest": self.rest,
        }


def compare_orders(
    ws: dict[int, OrderView], rest: dict[int, OrderView]
) -> tuple[list[OrderView], list[OrderView], list[FieldDiff]]:
    """(only on the stream, only over REST, field differences), each sorted by order_index."""
    only_ws = [ws[i] for i in sorted(ws.keys() - rest.keys())]
    only_rest = [rest[i] for i in sorted(rest.keys() - ws.keys())]
    diffs = []
    for i in sorted(ws.keys() & rest.keys()):
        a, b = ws[i], rest[i]
        for name in COMPARED_FIELDS:
            va, vb = getattr(a, name), getattr(b, name)
            if va != vb:
                diffs.append(FieldDiff(i, b.client_order_index, name, va, vb))
    return only_ws, only_rest, diffs


@dataclass(frozen=True, slots=True)
class MismatchReport:
    """What tp-mismatch found. ``consistent`` when nothing persistent differs."""

    target: DiagTarget
    market: MarketInfo
    ws_orders: int  # open orders on the stream at the last round
    rest_orders: int  # open orders over REST at the last round
    only_ws: tuple[OrderView, ...]
    only_rest: tuple[OrderView, ...]
    field_diffs: tuple[FieldDiff, ...]
    transient: int  # differences seen in a round that were gone by a later one
    rounds: int  # REST reads made
    stream: dict[str, int] = field(default_factory=dict)  # frames, malformed, ...

    @property
    def consistent(self) -> bool:
        return not (self.only_ws or self.only_rest or self.field_diffs)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.consistent else EXIT_DIFFERENCES

    def to_json(self) -> dict[str, Any]:
        m = self.market
        return {
            "tool": "tp-mismatch",
            "consistent": self.consistent,
            **_target_json(self.target, m),
            "ws_open_orders": self.ws_orders,
            "rest_open_orders": self.rest_orders,
            "only_ws": [o.to_json(m) for o in self.only_ws],
            "only_rest": [o.to_json(m) for o in self.only_rest],
            "field_diffs": [d.to_json() for d in self.field_diffs],
            "transient_differences": self.transient,
            "rounds": self.rounds,
            "stream": dict(self.stream),
        }

    def render(self) -> str:
        m = self.market
        lines = [
            f"tp-mismatch: {_where(self.target, m)}",
            f"  open orders: {self.ws_orders} on the account stream, {self.rest_orders} "
            f"over REST (accountActiveOrders); {self.rounds} REST read(s)",
        ]
        if self.consistent:
            lines.append("  consistent: both views hold the same open orders")
        else:
            n = len(self.only_ws) + len(self.only_rest) + len(self.field_diffs)
            lines.append(f"  DIFFERENCES: {n}")
            if self.only_ws:
                lines.append(f"  only on the account stream ({len(self.only_ws)}):")
                lines += [f"    {_order_line(o, m)}" for o in self.only_ws]
            if self.only_rest:
                lines.append(f"  only over REST ({len(self.only_rest)}):")
                lines += [f"    {_order_line(o, m)}" for o in self.only_rest]
            if self.field_diffs:
                lines.append(f"  fields that differ ({len(self.field_diffs)}):")
                lines += [
                    f"    order {d.order_index} coi {d.client_order_index}: {d.field}: "
                    f"stream {_show(d.field, d.ws, m)}, REST {_show(d.field, d.rest, m)}"
                    for d in self.field_diffs
                ]
        if self.transient:
            lines.append(
                f"  transient differences (in flight, gone on a later read): {self.transient}"
            )
        s = self.stream
        if s.get("malformed") or s.get("bad_orders"):
            lines.append(
                f"  stream: {s.get('malformed', 0)} malformed frame(s), "
                f"{s.get('bad_orders', 0)} unparsable order(s) ignored"
            )
        return "\n".join(lines)


async def check_mismatch(
    session: VenueSession, *, settle_s: float = 0.5, rounds: int = 2
) -> MismatchReport:
    """tp-mismatch on an open session whose stream carries the account's orders."""
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    assert session.market is not None
    persistent: set[tuple[str, int, str]] | None = None
    seen: set[tuple[str, int, str]] = set()
    only_ws: list[OrderView] = []
    only_rest: list[OrderView] = []
    diffs: list[FieldDiff] = []
    ws: dict[int, OrderView] = {}
    rest: dict[int, OrderView] = {}
    done = 0
    for _ in range(rounds):
        rest = await session.rest_orders()
        done += 1
        await session.wait(settle_s)  # the stream's copy of a change can trail REST
        ws = session.ws_orders()
        only_ws, only_rest, diffs = compare_orders(ws, rest)
        keys = (
            {("ws", o.order_index, "") for o in only_ws}
            | {("rest", o.order_index, "") for o in only_rest}
            | {("field", d.order_index, d.field) for d in diffs}
        )
        seen |= keys
        persistent = keys if persistent is None else persistent & keys
        if not persistent:
            break
    assert persistent is not None
    return MismatchReport(
        target=session.target,
        market=session.market,
        ws_orders=len(ws),
        rest_orders=len(rest),
        only_ws=tuple(o for o in only_ws if ("ws", o.order_index, "") in persistent),
        only_rest=tuple(o for o in only_rest if ("rest", o.order_index, "") in persistent),
        field_diffs=tuple(d for d in diffs if ("field", d.order_index, d.field) in persistent),
        transient=len(seen - persistent),
        rounds=done,
        stream=session.stream_stats(),
    )


async def tp_mismatch(
    target: DiagTarget,
    key: ApiKey | None = None,
    *,
    time: TimeSource = REAL_TIME,
    budget: RateBudget | None = None,
    timeout_s: float = 10.0,
    settle_s: float = 0.5,
    rounds: int = 2,
    token_provider: Any = None,
) -> MismatchReport:
    """Open a session, run tp-mismatch, close everything (also on error)."""
    async with VenueSession(
        target, key, time=time, budget=budget, timeout_s=timeout_s, token_provider=token_provider
    ) as session:
        await session.open_stream(orders=True)
        return await check_mismatch(session, settle_s=settle_s, rounds=rounds)


# --- tp-side-vs-ro -------------------------------------------------------------------------------


def tp_side_of(position_lots: int) -> bool | None:
    """The TP side as ``is_ask``: True (sell) when long, False (buy) when short, None flat."""
    if position_lots > 0:
        return True
    if position_lots < 0:
        return False
    return None


@dataclass(frozen=True, slots=True)
class TpSideReport:
    """What tp-side-vs-ro found. ``consistent`` when every TP-side order is reduce-only."""

    target: DiagTarget
    market: MarketInfo
    source: str  # "rest" or "ws"
    position_lots: int  # signed
    open_orders: int  # all open orders of the market
    tp_side_orders: tuple[OrderView, ...]  # by order_index
    not_reduce_only: tuple[OrderView, ...]  # TP-side orders that are not reduce-only

    @property
    def tp_is_ask(self) -> bool | None:
        return tp_side_of(self.position_lots)

    @property
    def tp_side(self) -> str | None:
        s = self.tp_is_ask
        return None if s is None else ("sell" if s else "buy")

    @property
    def reduce_only_count(self) -> int:
        return len(self.tp_side_orders) - len(self.not_reduce_only)

    @property
    def not_reduce_only_cois(self) -> tuple[int, ...]:
        return tuple(sorted(o.client_order_index for o in self.not_reduce_only))

    @property
    def consistent(self) -> bool:
        return not self.not_reduce_only

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.consistent else EXIT_DIFFERENCES

    def to_json(self) -> dict[str, Any]:
        m = self.market
        return {
            "tool": "tp-side-vs-ro",
            "consistent": self.consistent,
            **_target_json(self.target, m),
            "source": self.source,
            "position_lots": self.position_lots,
            "position": str(m.size_of(self.position_lots)),
            "tp_side": self.tp_side,
            "open_orders": self.open_orders,
            "tp_side_orders": len(self.tp_side_orders),
            "tp_side_reduce_only": self.reduce_only_count,
            "tp_side_not_reduce_only": len(self.not_reduce_only),
            "not_reduce_only_cois": list(self.not_reduce_only_cois),
            "not_reduce_only": [o.to_json(m) for o in self.not_reduce_only],
        }

    def render(self) -> str:
        m = self.market
        pos = self.position_lots
        lines = [f"tp-side-vs-ro: {_where(self.target, m)} (source: {self.source})"]
        if self.tp_side is None:
            lines.append(
                f"  position: flat; no take-profit side ({self.open_orders} open "
                "order(s) in the market)"
            )
            lines.append("  consistent: nothing to check")
            return "\n".join(lines)
        what = "long" if pos > 0 else "short"
        lines.append(
            f"  position: {what} {m.size_of(abs(pos))} ({pos} lots); take-profit side: "
            f"{self.tp_side}"
        )
        lines.append(
            f"  open orders: {self.open_orders}; on the take-profit side: "
            f"{len(self.tp_side_orders)}, reduce-only: {self.reduce_only_count}, "
            f"not reduce-only: {len(self.not_reduce_only)}"
        )
        if self.consistent:
            lines.append("  consistent: every take-profit-side order is reduce-only")
        else:
            cois = ", ".join(str(c) for c in self.not_reduce_only_cois)
            lines.append(f"  NOT REDUCE-ONLY on the take-profit side, client order indexes: {cois}")
            lines += [f"    {_order_line(o, m)}" for o in self.not_reduce_only]
        return "\n".join(lines)


def check_tp_side(
    target: DiagTarget,
    market: MarketInfo,
    source: str,
    position_lots: int,
    orders: dict[int, OrderView],
) -> TpSideReport:
    """The tp-side-vs-ro counts from a position and the open orders (pure)."""
    side = tp_side_of(position_lots)
    tp = tuple(orders[i] for i in sorted(orders) if side is not None and orders[i].is_ask == side)
    return TpSideReport(
        target=target,
        market=market,
        source=source,
        position_lots=position_lots,
        open_orders=len(orders),
        tp_side_orders=tp,
        not_reduce_only=tuple(o for o in tp if not o.reduce_only),
    )


async def tp_side_vs_ro(
    target: DiagTarget,
    key: ApiKey | None = None,
    *,
    source: str = "rest",
    time: TimeSource = REAL_TIME,
    budget: RateBudget | None = None,
    timeout_s: float = 10.0,
    token_provider: Any = None,
) -> TpSideReport:
    """Open a session, run tp-side-vs-ro from ``source`` ("rest" or "ws"), close everything."""
    if source not in ("rest", "ws"):
        raise ValueError("source must be 'rest' or 'ws'")
    async with VenueSession(
        target, key, time=time, budget=budget, timeout_s=timeout_s, token_provider=token_provider
    ) as session:
        assert session.market is not None
        if source == "ws":
            await session.open_stream(orders=True, positions=True)
            position, orders = session.ws_position(), session.ws_orders()
        else:
            position = await session.rest_position()
            orders = await session.rest_orders()
        return check_tp_side(target, session.market, source, position, orders)


# --- output helpers ------------------------------------------------------------------------------


def _target_json(t: DiagTarget, m: MarketInfo) -> dict[str, Any]:
    return {
        "mode": t.mode,
        "rest_url": t.rest_url,
        "ws_url": t.ws_url,
        "account_index": t.account_index,
        "api_key_index": t.api_key_index,
        "market_id": m.market_id,
        "symbol": m.symbol,
    }


def _where(t: DiagTarget, m: MarketInfo) -> str:
    return f"account {t.account_index}, market {m.symbol} ({m.market_id}), {t.mode} at {t.rest_url}"


def _order_line(o: OrderView, m: MarketInfo) -> str:
    ro = " reduce-only" if o.reduce_only else ""
    return (
        f"order {o.order_index} coi {o.client_order_index}: {o.side} "
        f"{m.size_of(o.remaining_lots)} @ {m.price_of(o.price_ticks)} "
        f"({o.remaining_lots} lots @ {o.price_ticks} ticks){ro} [{o.status}]"
    )


def _show(name: str, value: Any, m: MarketInfo) -> str:
    if name == "price_ticks":
        return f"{m.price_of(value)} ({value} ticks)"
    if name in ("remaining_lots", "initial_lots"):
        return f"{m.size_of(value)} ({value} lots)"
    if name == "is_ask":
        return "sell" if value else "buy"
    return str(value)


# --- command line --------------------------------------------------------------------------------


def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="mmfast config (default: the shipped sim config, for a running "
        "`mmfast sim`); the venue and the market come from it",
    )
    p.add_argument(
        "--market",
        default=None,
        help="market symbol (ETH) or id (0), instead of the config's [market]",
    )
    p.add_argument(
        "--rest-url", default=None, help="REST base URL (sim: the `rest:` line `mmfast sim` prints)"
    )
    p.add_argument("--ws-url", default=None, help="WebSocket URL (default: the REST URL's /stream)")
    p.add_argument("--account-index", type=int, default=None, help="account to inspect")
    p.add_argument(
        "--api-key-index",
        type=int,
        default=None,
        help="API key whose auth token reads the account's private data",
    )
    p.add_argument(
        "--live", action="store_true", help="required with a mainnet config (as for `mmfast run`)"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds allowed for each connection, request and snapshot (default 10)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def add_diagnose_parsers(parser: argparse.ArgumentParser) -> None:
    """Add the diagnose tools as subcommands of ``parser`` (``mmfast diagnose ...``)."""
    sub = parser.add_subparsers(dest="tool", required=True, metavar="TOOL")
    _tp_mismatch_parser(
        sub.add_parser(
            "tp-mismatch",
            help="account-stream open orders vs REST active orders",
            description=_doc_of(main_tp_mismatch),
        )
    )
    _tp_side_parser(
        sub.add_parser(
            "tp-side-vs-ro",
            help="take-profit-side open orders vs reduce-only",
            description=_doc_of(main_tp_side_vs_ro),
        )
    )


def _doc_of(fn: Callable[..., Any]) -> str:
    return (fn.__doc__ or "").strip().split("\n\n")[0]


def _tp_mismatch_parser(p: argparse.ArgumentParser) -> None:
    _common_args(p)
    p.add_argument(
        "--settle",
        type=float,
        default=0.5,
        metavar="S",
        help="seconds the stream gets to catch up after each REST read (default 0.5)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=2,
        metavar="N",
        help="REST reads a difference must survive to be reported (default 2)",
    )
    p.set_defaults(func=run_tp_mismatch)


def _tp_side_parser(p: argparse.ArgumentParser) -> None:
    _common_args(p)
    p.add_argument(
        "--source",
        choices=("rest", "ws"),
        default="rest",
        help="where position and orders come from: REST account + "
        "accountActiveOrders (default) or the account stream",
    )
    p.set_defaults(func=run_tp_side_vs_ro)


def _run(
    prog: str,
    args: argparse.Namespace,
    check: Callable[[DiagTarget, ApiKey | None], Coroutine[Any, Any, Any]],
) -> int:
    """Resolve the target, run the check, print, map to an exit code (errors: 2)."""
    from mmfast.conf import ConfigError
    from mmfast.diagnostics.venue import resolve_target

    key: ApiKey | None = None
    try:
        if args.timeout <= 0:
            raise DiagError("--timeout must be > 0")
        target, key = resolve_target(
            args.config,
            market=args.market,
            rest_url=args.rest_url,
            ws_url=args.ws_url,
            account_index=args.account_index,
            api_key_index=args.api_key_index,
            live=args.live,
        )
        # A bound on the whole run: connections, token, reads and closing.
        report = asyncio.run(asyncio.wait_for(check(target, key), args.timeout * 6))
    except (ConfigError, DiagError, ValueError) as exc:
        return _error(prog, args, str(exc), key)
    except TimeoutError:
        return _error(prog, args, f"timed out after {args.timeout * 6:g} s", key)
    except KeyboardInterrupt:
        return _error(prog, args, "interrupted", key)
    except Exception as exc:  # venue errors (LighterApiError, VenueUnavailable, ...)
        return _error(prog, args, f"{type(exc).__name__}: {exc}", key)
    if args.json:
        sys.stdout.write(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(report.render())
    sys.stdout.flush()
    return int(report.exit_code)


def _error(prog: str, args: argparse.Namespace, message: str, key: ApiKey | None) -> int:
    # Names what failed, never the key or a token (both are redacted if they ever show up).
    text = redact(message, [key] if key is not None else ())
    print(f"{prog}: error: {text}", file=sys.stderr, flush=True)
    if getattr(args, "json", False):
        print(orjson.dumps({"ok": False, "error": text}).decode(), flush=True)
    return EXIT_ERROR


def run_tp_mismatch(args: argparse.Namespace) -> int:
    """Run tp-mismatch from parsed arguments; returns the exit code."""
    if args.rounds < 1 or args.settle < 0:
        return _error(
            "mmfast diagnose tp-mismatch", args, "--rounds must be >= 1 and --settle >= 0", None
        )
    return _run(
        "mmfast diagnose tp-mismatch",
        args,
        lambda t, k: tp_mismatch(
            t, k, timeout_s=args.timeout, settle_s=args.settle, rounds=args.rounds
        ),
    )


def run_tp_side_vs_ro(args: argparse.Namespace) -> int:
    """Run tp-side-vs-ro from parsed arguments; returns the exit code."""
    return _run(
        "mmfast diagnose tp-side-vs-ro",
        args,
        lambda t, k: tp_side_vs_ro(t, k, source=args.source, timeout_s=args.timeout),
    )


def main_tp_mismatch(argv: Sequence[str] | None = None) -> int:
    """Compare the market's open orders on the WebSocket account stream with REST
    accountActiveOrders and print the differences (exit 0 consistent, 1 differences, 2 error).

    Also ``mmfast diagnose tp-mismatch``.
    """
    p = argparse.ArgumentParser(prog="diagnose_tp_mismatch", description=_doc_of(main_tp_mismatch))
    _tp_mismatch_parser(p)
    args = p.parse_args(argv)
    return int(args.func(args))


def main_tp_side_vs_ro(argv: Sequence[str] | None = None) -> int:
    """Count the open orders on the take-profit side (the side that closes the position) and
    those that are reduce-only; list the client order indexes of the others (exit 0 all
    reduce-only or flat, 1 some are not, 2 error).

    Also ``mmfast diagnose tp-side-vs-ro``.
    """
    p = argparse.ArgumentParser(
        prog="diagnose_tp_side_vs_ro", description=_doc_of(main_tp_side_vs_ro)
    )
    _tp_side_parser(p)
    args = p.parse_args(argv)
    return int(args.func(args))
