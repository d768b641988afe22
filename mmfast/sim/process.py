"""The simulator as a child process (``mmfast sim``) owned by the process that starts it.

``mmfast run`` starts its built-in simulator this way by default: in a process of its own the
simulator does not share the bot's GIL and CPU, so the bot's latency figures are its own (on a
thread of the bot's process, ``SimThread``, its load shows up as the bot's).

``SimProcess.start()`` runs ``python -m mmfast.cli sim --port 0 ...`` (a free 127.0.0.1 port,
so runs coexist) and waits for the ``rest:``, ``ws:`` and ``control:`` lines it prints once it
listens; if the child exits or stays silent first, ``SimProcessError`` says so with the end of
its stderr. The child:

- runs in a session of its own: a Ctrl-C or a closed terminal reaches the parent only, which
  still needs the venue to cancel its orders and confirm; the parent stops the child after
  that (``stop()``);
- dies with its parent however the parent dies (``kill -9`` included): its stdin is a pipe
  whose only writer is the parent, and ``mmfast sim --stop-on-stdin-eof`` stops when it reads
  end of file, which the kernel delivers when the parent's end is closed (at its exit);
- writes its stderr to ``log_path`` (appended) or to an unnamed temporary file, whose last lines
  explain an early exit (``poll()``, ``tail()``).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from mmfast.core.errors import MmfastError
from mmfast.sim.config import DEFAULT_ACCOUNT_INDEX, DEFAULT_CHAIN_ID, DEFAULT_TIER

__all__ = ["SimProcess", "SimProcessError", "exit_text"]

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding mmfast/
_READY_KEYS = ("rest", "ws", "control")  # the lines `mmfast sim` prints once it listens
_TAIL_BYTES = 4096


class SimProcessError(MmfastError, RuntimeError):
    """The simulator child did not start (it exited, or did not answer in time)."""


class SimProcess:
    """``mmfast sim`` as a child of this process (see the module doc).

    The keyword arguments are ``mmfast sim``'s options: ``seed``, ``chain_id``,
    ``account_index``, ``tier``, ``speed_bumps``, ``flow``, ``rate_limits``, ``time_scale``,
    ``host`` (loopback only: the child refuses anything else and exits 2)."""

    def __init__(
        self,
        *,
        seed: int = 0,
        chain_id: int = DEFAULT_CHAIN_ID,
        account_index: int = DEFAULT_ACCOUNT_INDEX,
        tier: str = DEFAULT_TIER,
        speed_bumps: bool = True,
        flow: bool = True,
        rate_limits: bool = True,
        time_scale: float = 1.0,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        start_timeout_s: float = 30.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.args = [
            "--host",
            host,
            "--port",
            "0",
            "--seed",
            str(seed),
            "--chain-id",
            str(chain_id),
            "--account-index",
            str(account_index),
            "--tier",
            tier,
            "--time-scale",
            repr(float(time_scale)),
            "--stop-on-stdin-eof",
        ]
        if not speed_bumps:
            self.args.append("--no-speed-bumps")
        if not flow:
            self.args.append("--no-flow")
        if not rate_limits:
            self.args.append("--no-rate-limits")
        self.log_path = log_path
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None  # the child's stderr, read back by tail()
        self._log_start = 0  # where this child's lines begin in an appended log
        self.urls: dict[str, str] = {}  # rest, ws, control
        self.stopped = False  # stop() ended it (any exit before that is an early one)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the child and wait until it listens; SimProcessError if it does not."""
        if self._proc is not None:
            raise RuntimeError("SimProcess.start() called twice")
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._log = open(self.log_path, "a+b")  # noqa: SIM115 - closed by stop()
            os.chmod(self.log_path, 0o600)
        else:
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self._log_start = self._log.seek(0, os.SEEK_END)
        # Nothing secret goes to the simulator (the run has removed its secrets already).
        env = {k: v for k, v in os.environ.items() if not k.startswith("MMFAST_")}
        # `python -m` puts its working directory first on sys.path: started from the folder
        # holding this process's mmfast, the child imports that one, whatever folder (another
        # checkout, say) the bot was started from.
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "mmfast.cli", "sim", *self.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            cwd=_PACKAGE_ROOT,
            start_new_session=True,
            close_fds=True,
        )
        try:
            self._await_ready()
        except BaseException:
            self._kill()
            raise

    def _await_ready(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        deadline = time.monotonic() + self.start_timeout_s
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while not self.ready:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SimProcessError(
                        f"the simulator (pid {proc.pid}) did not start "
                        f"within {self.start_timeout_s:g} s{self._said()}"
                    )
                if not sel.select(min(left, 0.5)):
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:  # its stdout closed: it exited (or is exiting)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(2.0)
                    raise SimProcessError(
                        f"the simulator (pid {proc.pid}) exited "
                        f"{exit_text(proc.returncode)} before it was ready"
                        f"{self._said()}"
                    )
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    key, sep, value = line.decode(errors="replace").partition(": ")
                    if sep and key in _READY_KEYS:
                        self.urls[key] = value.strip()

    def poll(self) -> int | None:
        """The child's exit code, None while it runs (or before start)."""
        return self._proc.poll() if self._proc is not None else None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def ready(self) -> bool:
        """It printed its addresses (it listened)."""
        return all(k in self.urls for k in _READY_KEYS)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> int | None:
        """End the child: end of file on its stdin (it stops as on SIGTERM), SIGTERM if it is
        still there after half of ``stop_timeout_s``, SIGKILL after the other half. Returns
        its exit code (None if it was never started)."""
        proc = self._proc
        if proc is None:
            return None
        self.stopped = True
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                if proc.stdin is not None:
                    proc.stdin.close()
            half = self.stop_timeout_s / 2
            try:
                proc.wait(half)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(half)
                except subprocess.TimeoutExpired:
                    self._kill()
        self._close_pipes()
        return proc.returncode

    def _kill(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
        self._close_pipes()

    def _close_pipes(self) -> None:
        proc = self._proc
        if proc is not None:
            for f in (proc.stdin, proc.stdout):
                if f is not None:
                    with contextlib.suppress(OSError):
                        f.close()

    def close(self) -> None:
        """Release the stderr file (after ``stop()``; ``tail()`` reads nothing after this)."""
        log, self._log = self._log, None
        if log is not None:
            log.close()

    # ------------------------------------------------------------------ reading
    @property
    def rest_url(self) -> str:
        return self.urls["rest"]

    @property
    def ws_url(self) -> str:
        return self.urls["ws"]

    @property
    def control_url(self) -> str:
        return self.urls["control"]

    def tail(self, max_lines: int = 8) -> str:
        """The last lines this child wrote to stderr ("" when none)."""
        log = self._log
        if log is None:
            return ""
        end = log.seek(0, os.SEEK_END)
        start = max(self._log_start, end - _TAIL_BYTES)
        log.seek(start)
        text = log.read(end - start).decode(errors="replace")
        log.seek(0, os.SEEK_END)
        return "\n".join(text.strip().splitlines()[-max_lines:])

    def _said(self) -> str:
        text = self.tail()
        return f"; it said:\n{text}" if text else " (nothing on its stderr)"

    def describe(self) -> str:
        """One line for an operator: the pid and how the child is (or ended)."""
        code = self.poll()
        state = (
            "running"
            if self._proc is not None and code is None
            else ("not started" if self._proc is None else f"exited {exit_text(code)}")
        )
        where = f"  log {self.log_path}" if self.log_path is not None else ""
        return f"pid {self.pid}  {state}{where}"

    def __enter__(self) -> SimProcess:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
        self.close()


def exit_text(returncode: int | None) -> str:
    """An exit code as an operator reads it ("1", "by SIGKILL": a signal's name, not -9)."""
    if returncode is None:
        return "(still running)"
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"by {signal.Signals(-returncode).name}"
    return str(returncode)
