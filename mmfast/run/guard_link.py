"""The bot's side of its guard: the heartbeat its event loop stamps, and the guard process.

``GuardLink.start()`` creates the heartbeat file and starts ``mmfast guard`` as a process of
its own session (it survives the bot's death, a closed terminal, a signal to the bot's process
group), handing it the guard's key through its environment only. From then on a loop callback
stamps the heartbeat every ``guard.heartbeat_interval_ms`` with the bot's state: ``RUNNING``
once the core has started, ``UNREACHABLE`` while the connector has not been ready for longer
than ``guard.max_silence_ms`` (the guard then cancels for it), ``STOPPING`` at shutdown.
``stop(orders_left)`` writes ``STOPPED`` with what the bot's own cancel-all confirmed and waits
for the guard to end (it aborts the venue's scheduled cancel-all and exits 0 on a clean stop,
or cancels itself first when the bot could not confirm). Each beat also hands the guard
journal's new lines to ``on_record`` (the run's journal copies them: one record of the run,
guard acts included, while the bot lives; after its death ``guard.jsonl`` alone has them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from mmfast.conf.schema import GuardConfig
from mmfast.connector.lighter.secret import ENV_GUARD_KEY, ApiKey
from mmfast.core.log import get_logger
from mmfast.run.heartbeat import BotState, HeartbeatWriter

__all__ = ["GuardLink"]

_log = get_logger("run")

_STOP_WAIT_S = 10.0  # the guard's exit after a clean stop (it aborts the schedule first)


class GuardLink:
    """One bot's guard (see the module doc)."""

    def __init__(
        self,
        cfg: GuardConfig,
        key: ApiKey,
        *,
        rest_url: str,
        chain_id: int,
        account_index: int,
        market: int,
        run_dir: Path,
        time_scale: float = 1.0,
        ready: Callable[[], bool] | None = None,
        signer_checked: bool = False,
        on_record: Callable[[dict[str, Any]], object] | None = None,
    ) -> None:
        assert cfg.api_key_index is not None
        self.cfg = cfg
        self._key = key
        self._args = [
            "--rest-url",
            rest_url,
            "--chain-id",
            str(chain_id),
            "--account-index",
            str(account_index),
            "--api-key-index",
            str(cfg.api_key_index),
            "--market",
            str(market),
            "--max-silence-ms",
            str(cfg.max_silence_ms),
            "--time-scale",
            repr(time_scale),
        ]
        if not cfg.scheduled_cancel_all:
            self._args.append("--no-scheduled-cancel-all")
        if signer_checked:  # this process compared the same native signer with the official
            self._args.append("--signer-checked")
        self.market = market
        self.run_dir = run_dir
        self.heartbeat_path = run_dir / f"heartbeat-{os.getpid()}"
        self.journal_path = run_dir / "guard.jsonl"
        self.log_path = run_dir / "guard.log"
        self._ready = ready  # the connector's readiness (None: always)
        self._writer: HeartbeatWriter | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._state = BotState.STARTING
        self._not_ready_since = 0.0  # monotonic s the connector stopped being ready (0: ready)
        self.exit_code: int | None = None  # the guard's, once it ended
        self.lost = False  # the guard died while the bot ran (warned once; the bot goes on)
        self._on_record = on_record
        self._read_to = 0  # bytes of the guard's journal handed to on_record

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """The heartbeat, the guard process and the beats (on the running loop)."""
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._writer = HeartbeatWriter(self.heartbeat_path, (self.market,))
        with contextlib.suppress(OSError):  # appended to across runs: only this run's lines
            self._read_to = os.stat(self.journal_path).st_size
        env = {k: v for k, v in os.environ.items() if not k.startswith("MMFAST_")}
        env[ENV_GUARD_KEY] = self._key.reveal()
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mmfast.cli",
                    "guard",
                    *self._args,
                    "--heartbeat",
                    str(self.heartbeat_path),
                    "--bot-pid",
                    str(os.getpid()),
                    "--journal",
                    str(self.journal_path),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            log.close()
        self._beat()

    def set_state(self, state: BotState) -> None:
        self._state = state
        if self._writer is not None:
            self._writer.beat(state)

    def _beat(self) -> None:
        w = self._writer
        if w is None:
            return
        state = self._state
        if state in (BotState.RUNNING, BotState.UNREACHABLE) and self._ready is not None:
            now = time.monotonic()
            if self._ready():
                self._not_ready_since = 0.0
                state = BotState.RUNNING
            else:
                if not self._not_ready_since:
                    self._not_ready_since = now
                if now - self._not_ready_since > self.cfg.max_silence_ms / 1000:
                    state = BotState.UNREACHABLE
            if state is not self._state:
                _log.warning(
                    "guard: telling it the venue is %s",
                    "unreachable" if state is BotState.UNREACHABLE else "back",
                )
                self._state = state
        w.beat(state)
        self._forward()
        proc = self._proc
        if not self.lost and proc is not None and proc.poll() is not None:
            # The bot keeps quoting (the venue's scheduled cancel-all stays armed for another
            # 5.5 min at most); the operator is told.
            self.lost = True
            self.exit_code = proc.returncode
            _log.error(
                "guard (pid %d) exited %s while the bot runs: no process watches "
                "this bot now (see %s)",
                proc.pid,
                proc.returncode,
                self.log_path,
            )
        with contextlib.suppress(RuntimeError):  # no loop: the next start() beats again
            self._timer = asyncio.get_running_loop().call_later(
                self.cfg.heartbeat_interval_ms / 1000, self._beat
            )

    def _forward(self) -> None:
        """The guard journal's whole lines written since the last call, to ``on_record``."""
        on_record = self._on_record
        if on_record is None:
            return
        try:
            if os.stat(self.journal_path).st_size <= self._read_to:
                return
            with open(self.journal_path, "rb") as f:
                f.seek(self._read_to)
                data = f.read()
        except OSError:
            return
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next beat
        self._read_to += end
        for line in data[:end].splitlines():
            try:
                rec = orjson.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                on_record(rec)

    def guard_alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    async def stop(self, orders_left: int | None) -> int | None:
        """Tell the guard the bot stopped (``orders_left``: what its cancel-all confirmed,
        None unknown) and wait for it to end. The guard's exit code (None: still running
        after the wait, left to finish on its own)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        w = self._writer
        if w is not None:
            w.beat(BotState.STOPPED, -1 if orders_left is None else orders_left)
        proc = self._proc
        if proc is not None:
            deadline = time.monotonic() + _STOP_WAIT_S
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            self.exit_code = proc.poll()
            self._forward()  # its last lines (the clean stop, the end)
            if self.exit_code is None:
                _log.warning(
                    "guard (pid %d) still running %.0f s after the stop", proc.pid, _STOP_WAIT_S
                )
        if w is not None:
            w.close()
            if self.exit_code is not None:
                with contextlib.suppress(OSError):
                    self.heartbeat_path.unlink()
        return self.exit_code

    def status(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "alive": self.guard_alive(),
            "exit_code": self.exit_code,
            "lost": self.lost,
            "journal": str(self.journal_path),
            "state": self._state.name,
        }
