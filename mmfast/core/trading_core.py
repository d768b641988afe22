"""TradingCore: owns the lifecycle of one connector, its strategies and the tick clock.

Lifecycle: CREATED -> STARTING -> RUNNING -> STOPPING -> STOPPED (-> STARTING again, or
-> SHUT_DOWN, final). Every transition is logged at INFO (the only INFO lines the core writes)
and published on the bus as ``LifecycleChanged``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from mmfast._core.clock import Clock, monotonic_ns
from mmfast.core.events import EventBus, LifecycleChanged
from mmfast.core.interfaces import Connector, Strategy
from mmfast.core.log import debug_from_env, get_logger
from mmfast.core.types import LifecycleState

__all__ = ["ClockFactory", "TradingCore", "default_clock_factory"]

# clock_factory(tick_interval_ms) -> a Clock (or anything with the same interface).
ClockFactory = Callable[[float], Clock]

# Extra time the core grants connector.cancel_all beyond the timeout it was given (at most 1 s).
_CANCEL_GRACE_S = 1.0


def default_clock_factory(interval_ms: float) -> Clock:
    """A realtime Clock ticking every ``interval_ms``."""
    return Clock(interval_ms)


async def _maybe_await(result: object) -> None:
    if inspect.isawaitable(result):
        await result


class TradingCore:
    """Runs a connector and strategies: start, stop (always cancelling per market), status.

    ``start()``: ``connector.start(core)``; each strategy's ``start(core)`` in order; then the
    clock, with each strategy's ``on_tick`` registered in strategy order. If any step fails, the
    stop sequence runs (so orders are cancelled) and the exception is re-raised.

    ``stop()``: stop the clock (waiting up to ``stop_timeout_s`` for a tick in progress), stop
    strategies in reverse order, ``await connector.cancel_all(market, cancel_timeout_s)`` for each
    market, then ``connector.stop(core)``. A failure in one step is logged and recorded as
    ``last_error``; it never skips the cancel-alls. Strategy ``stop`` and ``connector.stop``
    may be plain or async; each is bounded by ``stop_timeout_s``.

    ``dbg(msg, *args)`` logs at DEBUG on ``mmfast.core`` only when debug is on: the ``debug``
    argument, or when it is None the env switch ``MMFAST_DEBUG`` (old name ``XTB_DEBUG``) set to
    1/true/yes. Off, it returns at once without formatting anything.
    """

    def __init__(
        self,
        connector: Connector,
        strategies: Iterable[Strategy],
        *,
        markets: Sequence[int] = (),
        clock_factory: ClockFactory | None = None,
        tick_interval_ms: float = 1000.0,
        bus: EventBus | None = None,
        debug: bool | None = None,
        cancel_timeout_s: float = 5.0,
        stop_timeout_s: float = 5.0,
    ) -> None:
        if tick_interval_ms <= 0:
            raise ValueError(f"tick_interval_ms must be > 0, got {tick_interval_ms!r}")
        if cancel_timeout_s <= 0 or stop_timeout_s <= 0:
            raise ValueError("cancel_timeout_s and stop_timeout_s must be > 0")
        self._connector = connector
        self._strategies: tuple[Strategy, ...] = tuple(strategies)
        self._markets: tuple[int, ...] = tuple(int(m) for m in markets)
        if len(set(self._markets)) != len(self._markets):
            raise ValueError(f"duplicate market in {self._markets}")
        self._tick_interval_ms = float(tick_interval_ms)
        self._clock = (clock_factory or default_clock_factory)(self._tick_interval_ms)
        self._owns_bus = bus is None
        self._bus = EventBus() if bus is None else bus
        self._debug = debug_from_env() if debug is None else bool(debug)
        self._cancel_timeout_s = float(cancel_timeout_s)
        self._stop_timeout_s = float(stop_timeout_s)
        self._log: logging.Logger = get_logger("core")
        self._state = LifecycleState.CREATED
        self._running_since_ns = 0
        self._last_error: str | None = None
        self._errors = 0
        self._cancel_results: dict[int, int | str] = {}
        self._called_start: list[Strategy] = []  # strategies whose start() was called
        self._tick_iterators: list[Callable[[int], Any]] = []
        self._stopping: asyncio.Future[None] | None = None

    # --- read-only views ----------------------------------------------------------------------

    @property
    def state(self) -> LifecycleState:
        return self._state

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def bus(self) -> EventBus:
        return self._bus

    @property
    def connector(self) -> Connector:
        return self._connector

    @property
    def strategies(self) -> tuple[Strategy, ...]:
        return self._strategies

    @property
    def markets(self) -> tuple[int, ...]:
        return self._markets

    @property
    def debug(self) -> bool:
        return self._debug

    @property
    def last_error(self) -> str | None:
        return self._last_error

    @property
    def log(self) -> logging.Logger:
        return self._log

    # --- debug logging ------------------------------------------------------------------------

    def dbg(self, msg: str, *args: object) -> None:
        """Log ``msg % args`` at DEBUG when debug is on; otherwise a no-op (nothing formatted)."""
        if self._debug:
            self._log.debug(msg, *args)

    # --- lifecycle ----------------------------------------------------------------------------

    def _set_state(self, new: LifecycleState) -> None:
        old = self._state
        self._state = new
        self._log.info("lifecycle %s -> %s", old.name, new.name)
        self._bus.publish(LifecycleChanged(old, new, monotonic_ns()))

    def _record_error(self, step: str, exc: BaseException) -> None:
        self._errors += 1
        self._last_error = f"{step}: {type(exc).__name__}: {exc}"
        self._log.error("%s failed", step, exc_info=(type(exc), exc, exc.__traceback__))

    async def start(self) -> None:
        """Start connector, strategies and clock; see the class docstring."""
        if self._state is LifecycleState.SHUT_DOWN:
            raise RuntimeError("TradingCore is shut down")
        if self._state not in (LifecycleState.CREATED, LifecycleState.STOPPED):
            raise RuntimeError(f"cannot start in state {self._state.name}")
        self._set_state(LifecycleState.STARTING)
        self._called_start = []
        self._tick_iterators = []
        try:
            await _maybe_await(self._connector.start(self))
            for strategy in self._strategies:
                self._called_start.append(strategy)
                await _maybe_await(strategy.start(self))
            for strategy in self._strategies:
                on_tick = strategy.on_tick
                self._clock.add_iterator(on_tick)
                self._tick_iterators.append(on_tick)
            self._clock.start()
        except BaseException as exc:
            self._record_error("start", exc)
            await self._stop_sequence()
            raise
        self._running_since_ns = monotonic_ns()
        self._set_state(LifecycleState.RUNNING)

    async def stop(self) -> None:
        """Stop everything, cancelling orders per market. Idempotent; concurrent calls share one
        stop. Safe to call from a strategy's ``on_tick`` (the tick in progress is not awaited)."""
        state = self._state
        if state is LifecycleState.STOPPING and self._stopping is not None:
            await asyncio.shield(self._stopping)
            return
        if state is LifecycleState.STARTING:
            raise RuntimeError("stop() during start(): start() stops by itself if a step fails")
        if state is not LifecycleState.RUNNING:
            return
        await self._stop_sequence()

    async def _stop_sequence(self) -> None:
        self._set_state(LifecycleState.STOPPING)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stopping = done
        self._running_since_ns = 0
        try:
            await self._stop_clock()
            for strategy in reversed(self._called_start):
                try:
                    await asyncio.wait_for(_maybe_await(strategy.stop()), self._stop_timeout_s)
                except Exception as exc:
                    self._record_error(f"strategy {type(strategy).__name__}.stop", exc)
            self._called_start = []
            self._cancel_results = {}
            for market in self._markets:
                await self._cancel_all(market)
            try:
                await asyncio.wait_for(
                    _maybe_await(self._connector.stop(self)), self._stop_timeout_s
                )
            except Exception as exc:
                self._record_error("connector.stop", exc)
        finally:
            self._stopping = None
            self._set_state(LifecycleState.STOPPED)
            done.set_result(None)

    async def _stop_clock(self) -> None:
        clock = self._clock
        try:
            clock.stop()
            clean = await clock.wait_stopped(self._stop_timeout_s)
            if not clean:
                self._log.warning(
                    "tick in progress did not finish within %.1f s: cancelled", self._stop_timeout_s
                )
        except Exception as exc:
            self._record_error("clock.stop", exc)
        for on_tick in self._tick_iterators:
            with contextlib.suppress(ValueError):  # already removed by someone else
                clock.remove_iterator(on_tick)
        self._tick_iterators = []

    async def _cancel_all(self, market: int) -> None:
        try:
            remaining = await asyncio.wait_for(
                self._connector.cancel_all(market, self._cancel_timeout_s),
                self._cancel_timeout_s + min(_CANCEL_GRACE_S, self._cancel_timeout_s),
            )
        except Exception as exc:
            self._record_error(f"cancel_all(market={market})", exc)
            self._cancel_results[market] = f"{type(exc).__name__}: {exc}"
            return
        self._cancel_results[market] = remaining
        if remaining:
            self._errors += 1
            self._last_error = f"cancel_all(market={market}): {remaining} orders still open"
            self._log.error("cancel_all(market=%d): %d orders still open", market, remaining)

    async def shutdown(self) -> None:
        """Stop if needed, then release the clock's timers and (if the core made it) the bus.

        Idempotent; a shut-down core cannot start again.
        """
        if self._state is LifecycleState.SHUT_DOWN:
            return
        if self._state is LifecycleState.STARTING:
            raise RuntimeError("shutdown() during start()")
        await self.stop()
        try:
            self._clock.stop()  # cancels any timer still pending
        except Exception as exc:
            self._record_error("clock.stop", exc)
        self._set_state(LifecycleState.SHUT_DOWN)
        if self._owns_bus:
            self._bus.clear()

    # --- status -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """A snapshot for operators; never raises because a component's status() does."""
        clock = self._clock
        running = self._state is LifecycleState.RUNNING and self._running_since_ns
        return {
            "state": self._state.name,
            "uptime_s": (monotonic_ns() - self._running_since_ns) / 1e9 if running else 0.0,
            "tick_interval_ms": self._tick_interval_ms,
            "ticks": getattr(clock, "tick_count", None),
            "missed_ticks": getattr(clock, "missed_ticks", None),
            "tick_errors": getattr(clock, "iterator_errors", None),
            "markets": list(self._markets),
            "debug": self._debug,
            "errors": self._errors,
            "last_error": self._last_error,
            "bus_errors": self._bus.errors,
            "cancel_all": dict(self._cancel_results),
            "strategies": [
                {"name": type(s).__name__, "status": self._component_status(s)}
                for s in self._strategies
            ],
            "connector": {
                "name": type(self._connector).__name__,
                "status": self._component_status(self._connector),
            },
        }

    def _component_status(self, component: object) -> Any:
        fn = getattr(component, "status", None)
        if not callable(fn):
            return None
        try:
            return fn()
        except Exception as exc:
            self._log.warning("%s.status() failed: %r", type(component).__name__, exc)
            return {"error": f"{type(exc).__name__}: {exc}"}

    def __repr__(self) -> str:
        return (
            f"<TradingCore {self._state.name} strategies={len(self._strategies)} "
            f"markets={list(self._markets)}>"
        )
