"""TradingCore lifecycle: start/stop order, ticks, cancel-all on stop whatever fails, restart."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import uvloop

from mmfast._core.clock import Clock
from mmfast.core import EventBus, LifecycleChanged, LifecycleState, TradingCore


def manual_clock(interval_ms: float) -> Clock:
    return Clock(interval_ms, manual=True)


class FakeConnector:
    """Records every call into the shared log; failures and remaining counts on request."""

    def __init__(
        self,
        log: list[Any],
        *,
        fail_start: bool = False,
        fail_stop: bool = False,
        fail_cancel: frozenset[int] = frozenset(),
        remaining: dict[int, int] | None = None,
        hang_cancel: frozenset[int] = frozenset(),
    ) -> None:
        self.log = log
        self.fail_start = fail_start
        self.fail_stop = fail_stop
        self.fail_cancel = fail_cancel
        self.remaining = remaining or {}
        self.hang_cancel = hang_cancel
        self.core: TradingCore | None = None

    async def start(self, core: TradingCore) -> None:
        self.core = core
        self.log.append("connector.start")
        if self.fail_start:
            raise ConnectionError("venue unreachable")

    async def stop(self, core: TradingCore) -> None:
        assert core is self.core
        self.log.append("connector.stop")
        if self.fail_stop:
            raise RuntimeError("stop failed")

    async def cancel_all(self, market: int, timeout: float) -> int:
        self.log.append(("cancel_all", market, timeout))
        await asyncio.sleep(0)
        if market in self.hang_cancel:
            await asyncio.sleep(3600)
        if market in self.fail_cancel:
            raise OSError(f"cancel_all {market} failed")
        return self.remaining.get(market, 0)


class FakeStrategy:
    def __init__(
        self,
        name: str,
        log: list[Any],
        ticks: list[tuple[str, int]],
        *,
        fail_start: bool = False,
        fail_stop: bool = False,
        async_hooks: bool = False,
    ) -> None:
        self.name = name
        self.log = log
        self.ticks = ticks
        self.fail_start = fail_start
        self.fail_stop = fail_stop
        self.async_hooks = async_hooks
        self.core: TradingCore | None = None

    def start(self, core: TradingCore) -> Any:
        self.core = core
        if self.async_hooks:
            return self._astart()
        self.log.append(f"{self.name}.start")
        if self.fail_start:
            raise ValueError(f"{self.name} cannot start")
        return None

    async def _astart(self) -> None:
        await asyncio.sleep(0)
        self.log.append(f"{self.name}.start")

    def stop(self) -> Any:
        if self.async_hooks:
            return self._astop()
        self.log.append(f"{self.name}.stop")
        if self.fail_stop:
            raise RuntimeError(f"{self.name} stop failed")
        return None

    async def _astop(self) -> None:
        await asyncio.sleep(0)
        self.log.append(f"{self.name}.stop")

    async def on_tick(self, now_ms: int) -> None:
        self.ticks.append((self.name, now_ms))
        await asyncio.sleep(0)


def make(
    *,
    markets: tuple[int, ...] = (1, 2),
    conn_kw: dict[str, Any] | None = None,
    a_kw: dict[str, Any] | None = None,
    b_kw: dict[str, Any] | None = None,
    **core_kw: Any,
) -> tuple[TradingCore, list[Any], list[tuple[str, int]], FakeConnector]:
    log: list[Any] = []
    ticks: list[tuple[str, int]] = []
    conn = FakeConnector(log, **(conn_kw or {}))
    a = FakeStrategy("a", log, ticks, **(a_kw or {}))
    b = FakeStrategy("b", log, ticks, **(b_kw or {}))
    core_kw.setdefault("clock_factory", manual_clock)
    core_kw.setdefault("tick_interval_ms", 100)
    core_kw.setdefault("cancel_timeout_s", 2.0)
    core = TradingCore(conn, [a, b], markets=markets, **core_kw)
    return core, log, ticks, conn


def run(coro: Any) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout=10.0)

    return asyncio.run(bounded())


STOP_ORDER = [
    "b.stop",
    "a.stop",
    ("cancel_all", 1, 2.0),
    ("cancel_all", 2, 2.0),
    "connector.stop",
]


def test_start_ticks_stop_in_order() -> None:
    core, log, ticks, _ = make()

    async def main() -> None:
        assert core.state is LifecycleState.CREATED
        await core.start()
        assert core.state is LifecycleState.RUNNING
        assert log == ["connector.start", "a.start", "b.start"]
        await core.clock.advance(250)
        await core.stop()
        await core.clock.advance(500)  # stopped: no more ticks

    run(main())
    assert ticks == [("a", 0), ("b", 0), ("a", 100), ("b", 100), ("a", 200), ("b", 200)]
    assert log == ["connector.start", "a.start", "b.start", *STOP_ORDER]
    assert core.state is LifecycleState.STOPPED
    assert core.last_error is None
    assert core.clock.iterators == ()


def test_async_strategy_hooks_awaited_in_order() -> None:
    core, log, _, _ = make(a_kw={"async_hooks": True}, b_kw={"async_hooks": True})

    async def main() -> None:
        await core.start()
        await core.stop()

    run(main())
    assert log == ["connector.start", "a.start", "b.start", *STOP_ORDER]


def test_cancel_all_runs_even_if_strategy_stop_raises(caplog: pytest.LogCaptureFixture) -> None:
    core, log, _, _ = make(a_kw={"fail_stop": True}, b_kw={"fail_stop": True})

    async def main() -> None:
        await core.start()
        with caplog.at_level(logging.ERROR, logger="mmfast"):
            await core.stop()

    run(main())
    assert log[3:] == STOP_ORDER
    assert core.state is LifecycleState.STOPPED
    assert core.last_error is not None and "a stop failed" in core.last_error
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2


def test_cancel_all_failure_in_one_market_does_not_skip_the_others() -> None:
    core, log, _, _ = make(
        markets=(1, 2, 3), conn_kw={"fail_cancel": frozenset({1}), "remaining": {3: 2}}
    )

    async def main() -> None:
        await core.start()
        await core.stop()

    run(main())
    assert [e for e in log if isinstance(e, tuple)] == [
        ("cancel_all", 1, 2.0),
        ("cancel_all", 2, 2.0),
        ("cancel_all", 3, 2.0),
    ]
    assert log[-1] == "connector.stop"
    results = core.status()["cancel_all"]
    assert results[2] == 0 and results[3] == 2
    assert "cancel_all 1 failed" in results[1]
    assert core.last_error is not None and "market=3" in core.last_error  # 2 still open


def test_hung_cancel_all_is_bounded_and_stop_goes_on() -> None:
    core, log, _, _ = make(conn_kw={"hang_cancel": frozenset({1})}, cancel_timeout_s=0.02)

    async def main() -> None:
        await core.start()
        await core.stop()

    run(main())
    assert ("cancel_all", 2, 0.02) in log and log[-1] == "connector.stop"
    assert "TimeoutError" in core.status()["cancel_all"][1]


def test_connector_stop_failure_recorded() -> None:
    core, log, _, _ = make(conn_kw={"fail_stop": True})

    async def main() -> None:
        await core.start()
        await core.stop()

    run(main())
    assert log[-1] == "connector.stop"
    assert core.state is LifecycleState.STOPPED
    assert core.last_error is not None and core.last_error.startswith("connector.stop")


def test_connector_start_failure_stops_and_cancels() -> None:
    core, log, _, _ = make(conn_kw={"fail_start": True})

    async def main() -> None:
        with pytest.raises(ConnectionError):
            await core.start()

    run(main())
    # No strategy was started; orders are still cancelled per market.
    assert log == ["connector.start", ("cancel_all", 1, 2.0), ("cancel_all", 2, 2.0),
                   "connector.stop"]  # fmt: skip
    assert core.state is LifecycleState.STOPPED
    assert not core.clock.running


def test_strategy_start_failure_stops_every_started_strategy() -> None:
    core, log, ticks, _ = make(b_kw={"fail_start": True})

    async def main() -> None:
        with pytest.raises(ValueError):
            await core.start()
        await core.clock.advance(300)

    run(main())
    # b's start() was called (and raised): it is stopped too, in reverse order.
    assert log == ["connector.start", "a.start", "b.start", *STOP_ORDER]
    assert ticks == []
    assert core.state is LifecycleState.STOPPED


def test_restart_after_stop_and_state_errors() -> None:
    core, log, ticks, _ = make()

    async def main() -> None:
        await core.stop()  # before start: no-op
        assert log == []
        await core.start()
        with pytest.raises(RuntimeError):
            await core.start()
        await core.clock.advance(100)  # ticks at 0 and 100
        await core.stop()
        await core.stop()  # idempotent
        await core.start()  # restart from STOPPED
        await core.clock.advance(100)
        await core.shutdown()
        await core.shutdown()  # idempotent
        with pytest.raises(RuntimeError):
            await core.start()

    run(main())
    assert log.count("connector.start") == 2
    assert log.count(("cancel_all", 1, 2.0)) == 2
    assert core.state is LifecycleState.SHUT_DOWN
    # The restart re-anchors the grid at t=100 ms; each strategy is registered exactly once.
    assert [t for t in ticks if t[0] == "a"] == [("a", 0), ("a", 100), ("a", 100), ("a", 200)]


def test_concurrent_stops_share_one_sequence() -> None:
    core, log, _, _ = make()

    async def main() -> None:
        await core.start()
        await asyncio.gather(core.stop(), core.stop(), core.shutdown())

    run(main())
    assert log.count(("cancel_all", 1, 2.0)) == 1
    assert log.count("connector.stop") == 1
    assert core.state is LifecycleState.SHUT_DOWN


def test_stop_from_inside_on_tick() -> None:
    log: list[Any] = []
    ticks: list[tuple[str, int]] = []

    class Stopper(FakeStrategy):
        async def on_tick(self, now_ms: int) -> None:
            self.ticks.append((self.name, now_ms))
            if now_ms == 100:
                assert self.core is not None
                await self.core.stop()

    conn = FakeConnector(log)
    core = TradingCore(
        conn, [Stopper("s", log, ticks)], markets=(7,), clock_factory=manual_clock,
        tick_interval_ms=100,
    )  # fmt: skip

    async def main() -> None:
        await core.start()
        await core.clock.advance(1000)

    run(main())
    assert ticks == [("s", 0), ("s", 100)]
    assert log[-3:] == ["s.stop", ("cancel_all", 7, 5.0), "connector.stop"]
    assert core.state is LifecycleState.STOPPED


def test_lifecycle_events_on_bus_and_info_logs(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    seen: list[tuple[str, str]] = []
    bus.subscribe(LifecycleChanged, lambda e: seen.append((e.old.name, e.new.name)))
    core, _, _, _ = make(bus=bus)

    async def main() -> None:
        with caplog.at_level(logging.INFO, logger="mmfast"):
            await core.start()
            await core.clock.advance(300)
            await core.shutdown()

    run(main())
    assert seen == [
        ("CREATED", "STARTING"),
        ("STARTING", "RUNNING"),
        ("RUNNING", "STOPPING"),
        ("STOPPING", "STOPPED"),
        ("STOPPED", "SHUT_DOWN"),
    ]
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(info) == 5 and all(m.startswith("lifecycle ") for m in info)
    # The bus was injected: shutdown leaves its subscriptions alone.
    assert bus.subscriber_count(LifecycleChanged) == 1


def test_shutdown_clears_owned_bus() -> None:
    core, _, _, _ = make()
    core.bus.subscribe(LifecycleChanged, lambda e: None)

    async def main() -> None:
        await core.start()
        await core.shutdown()

    run(main())
    assert core.bus.subscriber_count(LifecycleChanged) == 0


@pytest.mark.parametrize("runner", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_realtime_clock_ticks_through_default_factory(runner: Any) -> None:
    log: list[Any] = []
    ticks: list[tuple[str, int]] = []
    conn = FakeConnector(log)
    core = TradingCore(
        conn, [FakeStrategy("a", log, ticks), FakeStrategy("b", log, ticks)], markets=(1,),
        tick_interval_ms=10,
    )  # fmt: skip

    async def main() -> None:
        await core.start()
        for _ in range(400):
            if core.clock.tick_count >= 3:
                break
            await asyncio.sleep(0.005)
        await core.stop()

    runner(asyncio.wait_for(main(), 10.0))
    assert core.clock.tick_count >= 3
    assert not core.clock.running
    # Each tick: a then b, same now_ms; now_ms values are on the 10 ms grid from the start.
    assert len(ticks) == 2 * core.clock.tick_count
    start_ms = core.clock.start_ns // 1_000_000
    for i in range(0, len(ticks), 2):
        (na, ta), (nb, tb) = ticks[i], ticks[i + 1]
        assert (na, nb) == ("a", "b") and ta == tb
    assert log[-2:] == [("cancel_all", 1, 5.0), "connector.stop"]
    assert ticks[0][1] == start_ms


def test_constructor_validation() -> None:
    log: list[Any] = []
    conn = FakeConnector(log)
    with pytest.raises(ValueError):
        TradingCore(conn, [], tick_interval_ms=0)
    with pytest.raises(ValueError):
        TradingCore(conn, [], markets=(1, 1))
    with pytest.raises(ValueError):
        TradingCore(conn, [], cancel_timeout_s=0)
    # The factory receives the tick interval.
    got: list[float] = []

    def factory(ms: float) -> Clock:
        got.append(ms)
        return Clock(ms, manual=True)

    core = TradingCore(conn, [], clock_factory=factory, tick_interval_ms=250)
    assert got == [250.0] and core.clock.interval_ns == 250_000_000


def test_stop_or_shutdown_during_start_is_refused_and_start_unwinds() -> None:
    log: list[Any] = []
    refused: list[str] = []

    class Impatient(FakeStrategy):
        async def _astart(self) -> None:
            assert self.core is not None
            for call in (self.core.stop, self.core.shutdown):
                try:
                    await call()
                except RuntimeError as exc:
                    refused.append(str(exc))
            raise RuntimeError("giving up")

    conn = FakeConnector(log)
    core = TradingCore(
        conn, [Impatient("i", log, [], async_hooks=True)], markets=(5,),
        clock_factory=manual_clock,
    )  # fmt: skip

    async def main() -> None:
        with pytest.raises(RuntimeError, match="giving up"):
            await core.start()

    run(main())
    assert len(refused) == 2
    assert core.state is LifecycleState.STOPPED
    assert log == ["connector.start", "i.stop", ("cancel_all", 5, 5.0), "connector.stop"]
