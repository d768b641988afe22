"""Run a `Simulator` on its own event-loop thread (for synchronous test code and tools)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from mmfast.sim.clock import SimClock, TimeSource
from mmfast.sim.config import SimConfig
from mmfast.sim.server import Simulator

T = TypeVar("T")


class SimThread:
    """Starts the simulator on a background thread; `call` runs code on its loop thread.

    Usage::

        with SimThread(SimConfig(seed=1)) as st:
            st.rest_url, st.ws_url
            st.call(lambda sim: sim.truth.open_orders())
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        clock: TimeSource | SimClock | None = None,
        start_timeout_s: float = 10.0,
    ) -> None:
        self._config = config
        self._clock = clock
        self._timeout = start_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.sim: Simulator | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="mmfast-sim", daemon=True)
        self._thread.start()
        if not self._ready.wait(self._timeout):
            raise TimeoutError("simulator did not start")
        if self._error is not None:
            raise RuntimeError("simulator failed to start") from self._error

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with Simulator(self._config, self._clock) as sim:
            self.sim = sim
            self._ready.set()
            await self._stop.wait()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(self._timeout)
        self._thread = None

    def call(self, fn: Callable[[Simulator], T], timeout_s: float = 10.0) -> T:
        """Run `fn(simulator)` on the simulator's loop thread and return its result."""
        assert self._loop is not None and self.sim is not None
        sim = self.sim

        async def run() -> T:
            return sim.run_engine(lambda: fn(sim))

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout_s)

    def register_api_key(
        self,
        account: int,
        api_key_index: int,
        public_key: str | bytes,
        nonce: int | None = None,
        maker_only: bool | None = None,
    ) -> dict[str, Any]:
        """Register (or replace) the public key of (account, api_key_index): see
        `Simulator.register_api_key`."""
        return self.call(
            lambda sim: sim.register_api_key(account, api_key_index, public_key, nonce, maker_only)
        )

    @property
    def rest_url(self) -> str:
        assert self.sim is not None
        return self.sim.rest_url

    @property
    def ws_url(self) -> str:
        assert self.sim is not None
        return self.sim.ws_url

    @property
    def config(self) -> SimConfig:
        assert self.sim is not None
        return self.sim.config

    def __enter__(self) -> SimThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
