"""TradingCore.status() through the lifecycle, with and without component status()."""

from __future__ import annotations

import asyncio
from typing import Any

from mmfast._core.clock import Clock
from mmfast.core import TradingCore


class Conn:
    def __init__(self) -> None:
        self.remaining = 0

    async def start(self, core: TradingCore) -> None:
        pass

    async def stop(self, core: TradingCore) -> None:
        pass

    async def cancel_all(self, market: int, timeout: float) -> int:
        return self.remaining

    def status(self) -> dict[str, Any]:
        return {"ws": "up", "open_orders": 3}


class WithStatus:
    def __init__(self) -> None:
        self.ticks = 0

    def start(self, core: TradingCore) -> None:
        pass

    def stop(self) -> None:
        pass

    async def on_tick(self, now_ms: int) -> None:
        self.ticks += 1

    def status(self) -> dict[str, Any]:
        return {"ticks_seen": self.ticks}


class NoStatus:
    def start(self, core: TradingCore) -> None:
        pass

    def stop(self) -> None:
        pass

    async def on_tick(self, now_ms: int) -> None:
        raise RuntimeError("tick failed")


class BrokenStatus(NoStatus):
    async def on_tick(self, now_ms: int) -> None:
        pass

    def status(self) -> dict[str, Any]:
        raise KeyError("status broke")


def test_status_through_lifecycle() -> None:
    conn = Conn()
    strat = WithStatus()
    core = TradingCore(
        conn,
        [strat, NoStatus(), BrokenStatus()],
        markets=(4, 9),
        clock_factory=lambda ms: Clock(ms, manual=True),
        tick_interval_ms=50,
        debug=False,
    )
    snapshots: dict[str, dict[str, Any]] = {"created": core.status()}

    async def main() -> None:
        await core.start()
        await core.clock.advance(120)  # ticks at 0, 50, 100
        snapshots["running"] = core.status()
        conn.remaining = 1
        await core.stop()
        snapshots["stopped"] = core.status()
        await core.shutdown()
        snapshots["shut_down"] = core.status()

    asyncio.run(main())
    created, running = snapshots["created"], snapshots["running"]
    stopped, shut = snapshots["stopped"], snapshots["shut_down"]

    assert created["state"] == "CREATED"
    assert created["ticks"] == 0 and created["uptime_s"] == 0.0
    assert created["markets"] == [4, 9] and created["tick_interval_ms"] == 50.0
    assert created["debug"] is False and created["last_error"] is None
    assert created["strategies"][0] == {"name": "WithStatus", "status": {"ticks_seen": 0}}
    assert created["strategies"][1] == {"name": "NoStatus", "status": None}
    assert created["strategies"][2]["status"] == {"error": "KeyError: 'status broke'"}
    assert created["connector"] == {"name": "Conn", "status": {"ws": "up", "open_orders": 3}}

    assert running["state"] == "RUNNING"
    assert running["ticks"] == 3 and running["missed_ticks"] == 0
    assert running["tick_errors"] == 3  # NoStatus.on_tick raised on every tick
    assert running["uptime_s"] >= 0.0
    assert running["strategies"][0]["status"] == {"ticks_seen": 3}
    assert running["cancel_all"] == {}

    assert stopped["state"] == "STOPPED"
    assert stopped["uptime_s"] == 0.0
    assert stopped["cancel_all"] == {4: 1, 9: 1}
    assert stopped["errors"] == 2
    assert "market=9" in stopped["last_error"]

    assert shut["state"] == "SHUT_DOWN"
    assert shut["ticks"] == 3


def test_uptime_grows_while_running() -> None:
    core = TradingCore(Conn(), [], tick_interval_ms=1000)

    async def main() -> tuple[float, float]:
        await core.start()
        first = core.status()["uptime_s"]
        await asyncio.sleep(0.02)
        second = core.status()["uptime_s"]
        await core.stop()
        return first, second

    first, second = asyncio.run(main())
    assert 0.0 <= first < second
