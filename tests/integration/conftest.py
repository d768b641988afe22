"""Fixtures that start and stop the in-process simulator on 127.0.0.1 (ephemeral port)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from mmfast.core.timesource import REAL_TIME, TimeSource
from mmfast.sim.config import SimConfig
from mmfast.sim.thread import SimThread

T = TypeVar("T")


@pytest.fixture
def sim_config() -> SimConfig:
    """Override in a test module to change the simulator's settings."""
    # Premium: the tier the tests' connectors keep to (the simulator's default is standard).
    return SimConfig(
        seed=7, ws_ping_interval_ms=1000, ws_pong_timeout_ms=5000, speed_bumps=False, tier="premium"
    )


@pytest.fixture
def stime() -> TimeSource:
    """The simulator's time; override with a ScaledTime shared with the client under test."""
    return REAL_TIME


@pytest.fixture
def sim(sim_config: SimConfig, stime: TimeSource) -> Iterator[SimThread]:
    """A running simulator on its own thread; `sim.call(fn)` reads its truth safely."""
    st = SimThread(sim_config, stime)
    st.start()
    try:
        yield st
    finally:
        st.stop()


def _run(coro: Coroutine[Any, Any, T], timeout_s: float = 20.0) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


@pytest.fixture
def run() -> Callable[..., Any]:
    """`run(coro)`: run a client coroutine to completion on a fresh loop, with a time bound."""
    return _run
