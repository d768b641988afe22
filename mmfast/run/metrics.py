"""Prometheus metrics of ``mmfast run`` (``prometheus-client``), read from the run at scrape.

Nothing is counted on the hot path for them: a scrape reads the run's status (the strategy's
counts, the connector's budget and order entry, the guard, the loop) and the cumulative latency
histograms the stages already keep (``mmfast.core.latency.StageHistograms``), and renders the
text exposition on the event loop, so every series of one scrape is of the same moment.
Prices and sizes are in human units (the market's decimals), money in USDC, times in seconds.

Served by the control endpoint's ``GET /metrics`` and, with ``--metrics-port``, by a read-only
``MetricsServer`` on 127.0.0.1 (loopback only: the series show positions and PnL).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)

from mmfast.core.latency import HIST_BOUNDS_NS, StageHistograms

if TYPE_CHECKING:
    from mmfast.run.runner import Runner

__all__ = ["MetricsServer", "RunCollector", "metrics_response", "render"]


def _histogram(name: str, doc: str, hist: StageHistograms) -> HistogramMetricFamily:
    fam = HistogramMetricFamily(name, doc, labels=["stage"])
    for stage, counts in sorted(hist.buckets.items()):
        cum, buckets = 0, []
        for bound, n in zip((*HIST_BOUNDS_NS, None), counts, strict=True):
            cum += n
            buckets.append(("+Inf" if bound is None else repr(bound / 1e9), cum))
        fam.add_metric([stage], buckets, hist.sums[stage] / 1e9)
    return fam


class RunCollector:
    """A ``prometheus_client`` collector over one run (``Runner``)."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def describe(self) -> list[Metric]:
        return []  # series depend on what the run has: collected at scrape only

    def collect(self) -> Iterator[Metric]:
        r = self.runner
        if r.strategy is None:
            return
        snap = r.snapshot()
        st = snap["strategy"]
        pd, sd = snap["price_decimals"], snap["size_decimals"]
        px, sz = 10.0**-pd, 10.0**-sd
        info = InfoMetricFamily("mmfast_run", "The run: market, mode and strategy")
        info.add_metric(
            [],
            {
                "symbol": str(snap["symbol"]),
                "market": str(snap["market"]),
                "mode": str(snap["mode"]),
                "strategy": str(st["strategy"]),
            },
        )
        yield info
        yield GaugeMetricFamily(
            "mmfast_elapsed_seconds", "Seconds since the run started", value=snap["elapsed_s"]
        )
        yield GaugeMetricFamily(
            "mmfast_ready", "1 when the connector can trade", value=1.0 if snap["ready"] else 0.0
        )
        book = st.get("book") or {}
        price = GaugeMetricFamily(
            "mmfast_book_best_price", "Best price of the bot's book", labels=["side"]
        )
        size = GaugeMetricFamily(
            "mmfast_book_best_size", "Size at the best price (base units)", labels=["side"]
        )
        for side in ("bid", "ask"):
            if book.get(side) is not None:
                price.add_metric([side], book[side] * px)
                size.add_metric([side], book[f"{side}_size"] * sz)
        yield price
        yield size
        yield GaugeMetricFamily(
            "mmfast_book_in_sync", "1 when the book is in sync", value=1.0 if book else 0.0
        )
        quotes = GaugeMetricFamily(
            "mmfast_quote_levels", "Quote levels the strategy wants", labels=["side"]
        )
        quotes.add_metric(["bid"], float(len(st.get("bids") or ())))
        quotes.add_metric(["ask"], float(len(st.get("asks") or ())))
        yield quotes
        yield GaugeMetricFamily(
            "mmfast_orders_open", "Orders resting or on their way", value=st["orders_open"]
        )
        yield GaugeMetricFamily(
            "mmfast_orders_inflight", "Order txs sent, not yet answered", value=st["inflight"]
        )
        orders = CounterMetricFamily(
            "mmfast_orders", "Order actions since the start", labels=["action"]
        )
        for action, n in sorted(st["counts"].items()):
            orders.add_metric([action], float(n))
        yield orders
        yield CounterMetricFamily("mmfast_fills", "Fills since the start", value=st["fills"])
        yield CounterMetricFamily(
            "mmfast_filled_base", "Base volume filled since the start", value=st["filled_lots"] * sz
        )
        yield GaugeMetricFamily(
            "mmfast_position_base", "Position (base units, + long)", value=st["position_lots"] * sz
        )
        if st.get("pnl_usdc") is not None:
            yield GaugeMetricFamily(
                "mmfast_pnl_usdc", "PnL, fees and funding included", value=st["pnl_usdc"]
            )
        yield GaugeMetricFamily("mmfast_fees_usdc", "Fees paid", value=st["fees_usdc"])
        denials = CounterMetricFamily(
            "mmfast_risk_denials", "Orders the risk gate refused", labels=["reason"]
        )
        for reason, n in sorted((st.get("denials") or {}).items()):
            denials.add_metric([reason], float(n))
        yield denials
        ks = st.get("kill_switch") or {}
        if ks:
            state = GaugeMetricFamily(
                "mmfast_kill_switch_state", "1 for the switch's state", labels=["state"]
            )
            state.add_metric([str(ks.get("state", "-"))], 1.0)
            yield state
            yield CounterMetricFamily(
                "mmfast_kill_switch_trips", "Kill-switch trips", value=float(ks.get("trips", 0))
            )
        s = r.strategy
        yield _histogram(
            "mmfast_stage_latency_seconds",
            "The strategy's stages per requote and order call",
            s.latency.hist,
        )
        yield from self._connector()
        yield from self._process(snap)

    def _connector(self) -> Iterator[Metric]:
        c = self.runner.connector
        if c is None:
            return
        entry = getattr(c, "orders", None)
        if entry is not None:
            yield _histogram(
                "mmfast_order_entry_latency_seconds",
                "Order entry per acked tx: intent -> signer queue (queue), -> "
                "signed (sign), -> sent (send), -> acked (ack), and all (total)",
                entry.hist,
            )
            rej = CounterMetricFamily(
                "mmfast_rejects", "Txs the venue refused, by code", labels=["code"]
            )
            for code, n in sorted(entry.reject_codes.items()):
                rej.add_metric([str(code)], float(n))
            yield rej
            yield CounterMetricFamily(
                "mmfast_txs_sent", "Order txs sent", value=float(entry.txs_sent)
            )
        b = c.budget
        level = GaugeMetricFamily(
            "mmfast_budget_level", "1 for the rate budget's level", labels=["level"]
        )
        level.add_metric([b.state().level.name.lower()], 1.0)
        yield level
        quota = b.volume_quota_remaining
        if quota is not None:
            yield GaugeMetricFamily(
                "mmfast_volume_quota_remaining",
                "The venue's volume quota, as last reported",
                value=quota,
            )
        yield CounterMetricFamily(
            "mmfast_volume_quota_refusals",
            "Txs refused for a spent volume quota",
            value=float(b.quota_refusals),
        )

    def _process(self, snap: dict[str, Any]) -> Iterator[Metric]:
        loop = snap.get("loop") or {}
        # The family is always there (a scrape's set of families does not change as the run
        # goes); its samples once the first lag was measured.
        lag = GaugeMetricFamily(
            "mmfast_loop_lag_seconds",
            "How late a 100 ms timer ran (quantiles since the start)",
            labels=["quantile"],
        )
        if loop.get("lag_samples"):
            for q, key in (("0.5", "lag_p50_ms"), ("0.99", "lag_p99_ms"), ("1", "lag_max_ms")):
                lag.add_metric([q], loop[key] / 1e3)
        yield lag
        if "stalls" in loop:
            yield CounterMetricFamily(
                "mmfast_loop_stalls", "Event-loop stalls acted on", value=float(loop["stalls"])
            )
        g = self.runner.guard
        if g is not None:
            yield GaugeMetricFamily(
                "mmfast_guard_up",
                "1 while the guard process runs",
                value=1.0 if g.status().get("alive") else 0.0,
            )


def render(runner: Runner) -> bytes:
    """The run's metrics in the text exposition format."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(RunCollector(runner))
    return generate_latest(reg)


def metrics_response(runner: Runner) -> web.Response:
    resp = web.Response(body=render(runner))
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


class MetricsServer:
    """``GET /metrics`` on 127.0.0.1:``port`` (0: any free port), read-only, on the loop."""

    def __init__(self, runner: Runner, port: int) -> None:
        self.runner = runner
        self.port = port
        self._app_runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._app_runner = web.AppRunner(app, access_log=None)
        await self._app_runner.setup()
        site = web.TCPSite(self._app_runner, "127.0.0.1", self.port)
        await site.start()
        # aiohttp keeps its listening asyncio.Server private: the port an ephemeral bind got.
        server = cast("asyncio.Server | None", site._server)
        sockets = server.sockets if server is not None else ()
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._app_runner is not None:
            await self._app_runner.cleanup()
            self._app_runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        return metrics_response(self.runner)
