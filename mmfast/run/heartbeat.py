"""The bot's heartbeat for its guard: a small shared-memory file with monotonic stamps.

The bot's event loop writes it (``HeartbeatWriter.beat``) every ``guard.heartbeat_interval_ms``
from a loop callback, so a loop that is stuck, stopped (SIGSTOP) or dead stops the stamps. The
guard (another process, ``mmfast.run.guard``) reads it (``read_heartbeat``) with no help from
the bot: a stamp older than ``guard.max_silence_ms`` on the host's monotonic clock
(``CLOCK_MONOTONIC`` is one clock for every process of the host) means the bot cannot act.

Layout (little endian, 64 bytes, ``mmap``'d by both): magic ``MMFHB1\\0\\0``, a sequence number
(odd while a write is in progress: the reader retries, a seqlock), the bot's pid, the stamp
(ns), the state (``BotState``), the orders the bot reported left at its stop (-1: unknown),
the number of the bot's markets and up to 2 market ids. One writer, any number of readers.
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from mmfast.core.errors import MmfastError

__all__ = ["BotState", "HeartbeatError", "HeartbeatWriter", "Pulse", "pid_alive", "read_heartbeat"]

_MAGIC = b"MMFHB1\0\0"
_FMT = "<8sQqqqqqqq"  # magic, seq, pid, stamp, state, orders_left, n_markets, m0, m1 (+ pad)
_SIZE = 128
_MAX_MARKETS = 2


class HeartbeatError(MmfastError, OSError):
    """A heartbeat file that cannot be created or read (missing, foreign, torn)."""


class BotState(IntEnum):
    STARTING = 0  # connecting, reconciling: no quotes yet
    RUNNING = 1  # quoting (or ready to)
    UNREACHABLE = 2  # the bot cannot reach the venue: the guard cancels for it
    STOPPING = 3  # shutting down: cancelling its own orders
    STOPPED = 4  # stopped; orders_left says what its cancel-all confirmed


@dataclass(frozen=True, slots=True)
class Pulse:
    """One consistent read of the heartbeat."""

    pid: int
    stamp_ns: int  # CLOCK_MONOTONIC ns of the last beat
    state: BotState
    orders_left: int  # -1: unknown (not stopped, or not confirmed)
    markets: tuple[int, ...]

    def age_ns(self, now_ns: int | None = None) -> int:
        return (time.monotonic_ns() if now_ns is None else now_ns) - self.stamp_ns


class HeartbeatWriter:
    """The bot's side: creates the file (0600), writes beats; ``close()`` unmaps."""

    def __init__(self, path: str | os.PathLike[str], markets: tuple[int, ...]) -> None:
        if not 1 <= len(markets) <= _MAX_MARKETS:
            raise ValueError(f"a heartbeat carries 1..{_MAX_MARKETS} markets")
        self.path = Path(path)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, _SIZE)
            self._mm = mmap.mmap(fd, _SIZE)
        finally:
            os.close(fd)
        self._seq = 0
        self._pid = os.getpid()
        m = (*markets, 0, 0)[:_MAX_MARKETS]
        self._markets = (len(markets), *m)
        self.state = BotState.STARTING
        self.orders_left = -1
        self.beat()

    def beat(self, state: BotState | None = None, orders_left: int | None = None) -> None:
        """Stamp now (and a new state / orders left when given)."""
        if state is not None:
            self.state = state
        if orders_left is not None:
            self.orders_left = orders_left
        mm = self._mm
        self._seq += 1  # odd: in progress
        struct.pack_into("<Q", mm, 8, self._seq)
        struct.pack_into(
            _FMT,
            mm,
            0,
            _MAGIC,
            self._seq,
            self._pid,
            time.monotonic_ns(),
            int(self.state),
            self.orders_left,
            *self._markets,
        )
        self._seq += 1  # even: consistent
        struct.pack_into("<Q", mm, 8, self._seq)

    def close(self) -> None:
        self._mm.close()


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (another user's counts: it is not gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_heartbeat(path: str | os.PathLike[str], tries: int = 100) -> Pulse:
    """A consistent read (the seqlock retried while a write is in progress)."""
    try:
        with open(path, "rb") as f:
            mm = mmap.mmap(f.fileno(), _SIZE, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:
        raise HeartbeatError(f"heartbeat {path}: {exc}") from None
    try:
        for _ in range(tries):
            s1 = struct.unpack_from("<Q", mm, 8)[0]
            if s1 & 1:
                continue
            magic, s2, pid, stamp, state, left, n, m0, m1 = struct.unpack_from(_FMT, mm, 0)
            if struct.unpack_from("<Q", mm, 8)[0] != s1 or s2 != s1:
                continue
            if magic != _MAGIC:
                raise HeartbeatError(f"heartbeat {path}: not an mmfast heartbeat")
            if not 0 <= n <= _MAX_MARKETS or state not in BotState._value2member_map_:
                raise HeartbeatError(f"heartbeat {path}: malformed")
            return Pulse(pid, stamp, BotState(state), left, (m0, m1)[:n])
        raise HeartbeatError(f"heartbeat {path}: no consistent read")
    finally:
        mm.close()
