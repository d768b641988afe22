"""The volume quota end to end: the real runner quoting against the built-in simulator (premium
tier, quota on) over 127.0.0.1, in ScaledTime. Quotes far from a book that never reaches them
(no market orders, no jumps) are modified at every tick of the mid and never fill, so they
drain the quota; the bot backs off as it runs low (fewer modifies), lives on the free tx once
it is empty, still cancels, and quotes normally again once the control endpoint refills it.
Every figure is counted in simulated time from the simulator's own records.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time as _time
from pathlib import Path
from typing import Any

import orjson
import pytest

from mmfast.conf import parse_config
from mmfast.run import EXIT_OK, Runner, RunOptions
from mmfast.sim.config import DEFAULT_ACCOUNT_INDEX as ACCOUNT
from mmfast.sim.config import FlowConfig, SimConfig
from mmfast.sim.engine import TX_CANCEL_ALL, TX_CANCEL_ORDER, TX_CREATE_ORDER, TX_MODIFY_ORDER
from mmfast.sim.thread import SimThread

SCALE = 10.0
SEED = 5
START = 200  # the account's quota at start
SPAN = 150  # [venue] volume_quota_span: WIDE under 67 units, FEW_LEVELS under 25
FREE_S = 15  # the simulator's free tx interval
EXHAUSTED_S = 60  # simulated seconds the test keeps the quota empty
AFTER_S = 30  # simulated seconds of quoting after the refill
MAX_DRAIN_S = 600  # the quota must be empty within this much simulated time

CFG = f"""
[venue]
volume_quota_span = {SPAN}
volume_quota_low = 67
[market]
market_id = 0
[strategy.market_making]
bid_spread_ticks = 2000
ask_spread_ticks = 2000
levels = 2
level_spread_ticks = 10
order_amount_lots = 100
refresh_tolerance_ticks = 2
[risk]
max_position_lots = 400
max_order_notional_usdc = 100000
max_open_orders = 20
order_rate_cap = 100000
price_band_bps = 1000
[risk.kill_switch]
max_drawdown_usdc = 1000.0
max_order_txs_per_min = 1000000
[run]
tick_interval_ms = 100
[guard]
enabled = false
"""


def _sim_s(run: Runner) -> float:
    return run.time.monotonic_ns() / 1e9


@pytest.fixture(autouse=True)
def _quiet_logs() -> Any:
    yield
    logging.getLogger("mmfast").handlers.clear()


def test_quota_drains_the_bot_adapts_cancels_go_and_a_refill_resumes_quoting(
    tmp_path: Path,
) -> None:
    cfg = parse_config(CFG, env={})
    assert cfg.venue.tier == "premium"  # sim mode's tier: the quota applies
    time = _scaled()
    # A book that never reaches quotes 2000 ticks (~67 bps) out: no market orders, no jumps.
    flow = FlowConfig(market_rate_per_s=0.0, jump_rate_per_min=0.0)
    sim = SimThread(
        SimConfig(
            seed=SEED,
            chain_id=cfg.venue.chain_id,
            account_index=cfg.venue.account_index,
            flow=flow,
            speed_bumps=False,
            tier=cfg.venue.tier or "premium",
            volume_quota_start=START,
        ),
        time,
    )
    journal = tmp_path / "journal.jsonl"
    out, err = io.StringIO(), io.StringIO()
    runner = Runner(
        cfg,
        RunOptions(quiet=True, journal=str(journal), seed=SEED, time_scale=SCALE),
        out=out,
        err=err,
        sim=sim,
        time=time,
    )
    runner.setup_logging()
    # (simulated s, quota) samples; phase marks in simulated s
    samples: list[tuple[float, int]] = []
    degrades: list[tuple[float, int, int]] = []  # (simulated s, quota, the plan's back-off)
    marks: dict[str, float] = {}
    after_cancel: dict[str, Any] = {}

    def quota() -> int:
        return int(sim.call(lambda s: s.truth.volume_quota(ACCOUNT))["remaining"])

    async def drive() -> int:
        sim.start()
        task = asyncio.get_running_loop().create_task(runner.run())
        t0 = _sim_s(runner)
        while not task.done():
            await asyncio.sleep(0.05)
            s = runner.strategy
            if s is None or not s.running:
                continue
            now, q = _sim_s(runner), quota()
            samples.append((now, q))
            # the compiled step's last plan: 0 NONE, 1 WIDE, 2 FEW_LEVELS, 3 ONE_SIDE
            degrades.append((now, q, int(s.pipe.degrade)))
            if "empty" not in marks:
                if q == 0:
                    marks["empty"] = now
                elif now - t0 > MAX_DRAIN_S:
                    break  # the assertion below says why
            elif "cancel" not in marks and now - marks["empty"] >= EXHAUSTED_S / 2:
                # Cancels cost no quota: pulling every quote works on an empty quota.
                marks["cancel"] = now
                after_cancel["left"] = await s.cancel_all("test: quota empty")
                after_cancel["open"] = len(sim.call(lambda s: s.truth.open_orders(ACCOUNT, 0)))
            elif "refill" not in marks and now - marks["empty"] >= EXHAUSTED_S:
                marks["refill"] = now
                sim.call(lambda s: s.set_volume_quota(ACCOUNT, 5_000))
            elif "refill" in marks and now - marks["refill"] >= AFTER_S:
                break
        runner.request_stop("test")
        return await asyncio.wait_for(task, 30)

    try:
        code = asyncio.run(drive())
        txs = sim.call(
            lambda s: [
                (r.type, r.queued_at_ms) for r in s.exchange.txs.values() if r.account == ACCOUNT
            ]
        )
        truth = sim.call(lambda s: s.truth.volume_quota(ACCOUNT))
        open_left = sim.call(lambda s: s.truth.open_orders(ACCOUNT, 0))
        tiers = (runner.connector.budget.tier.name, sim.call(lambda s: s.config.tier))
        wall0_ms = sim.call(lambda s: s.clock.wall_ms()) - int(_sim_s(runner) * 1000)
    finally:
        sim.stop()
    assert code == EXIT_OK, err.getvalue()[-2000:]
    assert tiers == ("premium", "premium")  # the connector keeps to the simulator's tier
    assert "empty" in marks, f"quota not drained in {MAX_DRAIN_S} s: {samples[-3:]}"
    assert "refill" in marks and samples[-1][0] - marks["refill"] >= AFTER_S - 1

    def at(kind: frozenset[int], lo: float, hi: float) -> int:
        """Accepted txs of ``kind`` queued in [lo, hi) simulated seconds."""
        return sum(1 for t, ms in txs if t in kind and lo <= (ms - wall0_ms) / 1000 < hi)

    spends = frozenset({TX_CREATE_ORDER, TX_MODIFY_ORDER})
    cancels = frozenset({TX_CANCEL_ORDER, TX_CANCEL_ALL})

    def band(lo: int, hi: int) -> tuple[float, float]:
        """The simulated seconds from the first to the last sample with lo <= quota < hi."""
        ts = [t for t, q in samples if lo <= q < hi]
        return (ts[0], ts[-1]) if ts else (0.0, 0.0)

    # Quoting freely (quota above the WIDE threshold) against the FEW_LEVELS band: the rate
    # of quota-spending txs falls as the quota runs low.
    full, few = band(67, 10**9), band(1, 25)
    assert full[1] - full[0] >= 2 and few[1] - few[0] >= 2, (full, few, samples[:5])
    rate_full = at(spends, *full) / (full[1] - full[0])
    rate_few = at(spends, *few) / (few[1] - few[0])
    print(f"spending txs per simulated s: full {rate_full:.2f}, low {rate_few:.2f}")
    assert rate_few < rate_full / 2, (rate_full, rate_few)
    # The quota itself sets the back-off: at FEW_LEVELS (2) or beyond whenever it is under 25
    # units (a sample may come between the venue's answer and the plan that reads it).
    low = [d for t, q, d in degrades if 0 <= q < 25 and t < marks["refill"]]
    assert low and sum(d >= 2 for d in low) >= 0.9 * len(low), low[:20]
    # Empty: only the free tx, one per 15 s (one of slack for a window edge), and it is used.
    lo, hi = marks["empty"] + 1, marks["refill"]
    spent_empty = at(spends, lo, hi)
    assert 1 <= spent_empty <= int((hi - lo) / FREE_S) + 1, (spent_empty, lo, hi)
    # The bot kept to the quota: the venue refused next to nothing.
    assert truth["refused"] <= 2, truth
    # Cancels were never blocked: every quote came off while the quota was empty.
    assert after_cancel == {"left": 0, "open": 0}, after_cancel
    assert at(cancels, marks["cancel"], marks["cancel"] + 5) >= 1
    # Refilled: normal quoting again (the free tx's answer carried the new quota).
    rate_after = at(spends, marks["refill"] + FREE_S + 1, samples[-1][0]) / max(
        1.0, samples[-1][0] - marks["refill"] - FREE_S - 1
    )
    assert rate_after > rate_few and rate_after >= 1.0, (rate_after, rate_few)
    assert open_left == []  # shut down clean
    recs = [orjson.loads(x) for x in journal.read_bytes().splitlines()]
    levels = [x["level"] for x in recs if x["kind"] == "volume_quota"]
    # ok at the first answer, low, exhausted (and back and forth on the free tx's answers
    # only between those), then ok after the refill.
    assert levels[:3] == ["ok", "low", "exhausted"] and levels[-1] == "ok", levels


def _scaled() -> Any:
    from mmfast.core.timesource import ScaledTime

    return ScaledTime(SCALE, start_wall_ms=int(_time.time() * 1000))


def test_run_starts_its_simulator_on_the_configured_tier(tmp_path: Path) -> None:
    from mmfast.connector.lighter.budget import PLUS, RATE_TIERS

    cfg = parse_config(CFG.replace("[venue]", '[venue]\ntier = "plus"'), env={})
    runner = Runner(
        cfg,
        RunOptions(quiet=True, journal=str(tmp_path / "j.jsonl"), seed=1),
        out=io.StringIO(),
        err=io.StringIO(),
    )
    runner._start_sim()
    try:
        assert runner.sim.call(lambda s: (s.config.tier, s.config.quota_on)) == ("plus", True)
    finally:
        runner.sim.stop()
    assert RATE_TIERS[cfg.venue.tier or ""] is PLUS and PLUS.sendtx_per_min == 8_000


def test_an_external_simulator_on_another_tier_is_refused_by_name() -> None:
    from mmfast.sim.keys import check_tier_http

    with SimThread(SimConfig(seed=1)) as st:  # the simulator's default: standard
        asyncio.run(check_tier_http(st.rest_url, "standard"))
        with pytest.raises(
            RuntimeError,
            match=r"'standard' tier, not venue.tier = 'premium'"
            r": start it with --tier premium",
        ):
            asyncio.run(check_tier_http(st.rest_url, "premium"))
