"""``Runner``'s injection points for benchmarks: a stand-in signer and a rate tier, sim mode only.

The run is the real one (connector with order entry, market_making, core) against the built-in
simulator on 127.0.0.1; only who signs and the connector's rate tier are swapped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
from pathlib import Path
from typing import Any

import orjson
import pytest

from mmfast.conf import parse_config
from mmfast.connector.lighter.budget import RateTier
from mmfast.connector.lighter.signer import AuthTokenRequest, SignedTx
from mmfast.core.types import OrderStatus
from mmfast.run import EXIT_OK, Runner, RunOptions
from mmfast.sim.config import DEFAULT_ACCOUNT_INDEX as ACCOUNT
from mmfast.sim.config import FlowConfig, SimConfig
from mmfast.sim.thread import SimThread

CFG = """
[market]
market_id = 0
[strategy]
name = "market_making"
[strategy.market_making]
bid_spread_ticks = 15
ask_spread_ticks = 15
levels = 2
level_spread_ticks = 10
order_amount_lots = 100
[risk]
max_position_lots = 1000
max_order_notional_usdc = 100000
[risk.kill_switch]
max_drawdown_usdc = 1000.0
[run]
tick_interval_ms = 100
# The guard has its own tests (test_guard*.py).
[guard]
enabled = false
"""
TIER = RateTier(
    "test",
    rest_units=10**9,
    min_rest_weight=0,
    sendtx_per_min=10**9,
    ws_msgs_per_min=10**9,
    ws_inflight=10**6,
)


class StandIn:
    """SignerWorker's interface, signing nothing: the request's fields and a fake signature."""

    def __init__(self, account: int, key: int) -> None:
        self.account, self.key = account, key
        self.started = self.stopped = 0
        self.requests: list[Any] = []

    def start(self, loop: Any = None, timeout: float = 10.0) -> None:
        self.started += 1

    def stop(self, timeout: float = 5.0) -> None:
        self.stopped += 1

    def submit(self, req: Any, cb: Any) -> None:
        self.requests.append(req)
        loop = asyncio.get_running_loop()
        if isinstance(req, AuthTokenRequest):
            loop.call_soon(cb, f"{req.deadline_s}:{self.account}:{self.key}:abcd", None)
            return
        info = {
            "AccountIndex": self.account,
            "ApiKeyIndex": self.key,
            "Nonce": req.nonce,
            "ExpiredAt": 4_000_000_000_000,
            "Sig": "c2ln",
            **req.expected_fields(),
        }
        loop.call_soon(
            cb,
            SignedTx(
                req,
                req.TX_TYPE,
                orjson.dumps(info).decode(),
                info,
                f"{req.nonce:080x}",
                req.nonce,
                0,
                0,
                0,
            ),
            None,
        )

    async def token(self, deadline_s: int) -> str:
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def done(result: str, error: BaseException | None) -> None:
            if not fut.done():
                fut.set_result(result)

        self.submit(AuthTokenRequest(deadline_s), done)
        return await fut


def test_injected_signer_and_tier_are_refused_outside_sim_mode() -> None:
    cfg = parse_config(CFG, env={})
    live = dataclasses.replace(cfg, venue=dataclasses.replace(cfg.venue, mode="testnet"))
    for kw in ({"signer": StandIn(ACCOUNT, 4)}, {"tier": TIER}):
        with pytest.raises(ValueError, match="sim mode only"):
            Runner(live, RunOptions(quiet=True), **kw)


def test_run_signs_with_the_injected_signer_under_the_injected_tier(tmp_path: Path) -> None:
    # A live book to quote against: limit orders only, no market orders (so no fills).
    # The stand-in signer's signatures and tokens are fake: the simulator must not verify them.
    sim = SimThread(
        SimConfig(
            seed=2,
            speed_bumps=False,
            flow=FlowConfig(market_rate_per_s=0.0),
            verify_signatures=False,
            tier="premium",
        )
    )
    sim.start()
    try:
        text = CFG.replace(
            "[market]", f'[venue]\nrest_url = "{sim.rest_url}"\nws_url = "{sim.ws_url}"\n[market]'
        )
        cfg = parse_config(text, env={})
        v = cfg.venue
        assert v.account_index is not None and v.api_key_index is not None
        signer = StandIn(v.account_index, v.api_key_index)
        out, err = io.StringIO(), io.StringIO()
        runner = Runner(
            cfg,
            RunOptions(quiet=True, journal=str(tmp_path / "j.jsonl")),
            out=out,
            err=err,
            signer=signer,
            tier=TIER,
        )

        async def go() -> tuple[int, int]:
            task = asyncio.get_running_loop().create_task(runner.run())
            resting = 0
            for _ in range(200):
                await asyncio.sleep(0.05)
                s = runner.strategy
                if s is not None:
                    resting = sum(1 for o in s.orders.values() if o.status is OrderStatus.OPEN)
                    if resting == 4:
                        break
            runner.request_stop("test")
            return await asyncio.wait_for(task, 30), resting

        code, resting = asyncio.run(go())
        assert code == EXIT_OK, out.getvalue() + err.getvalue()
        assert resting == 4  # the 2 x 2 ladder rested on the simulator
        assert runner.signer is signer and (signer.started, signer.stopped) == (1, 1)
        assert runner.connector.config.tier is TIER
        txs = [r for r in signer.requests if not isinstance(r, AuthTokenRequest)]
        # Every order tx went through the stand-in (creates, then the stop's cancel-all).
        assert len(txs) >= 5 and sim.call(lambda s: s.truth.open_orders(ACCOUNT, 0)) == []
    finally:
        sim.stop()
        logging.getLogger("mmfast").handlers.clear()
