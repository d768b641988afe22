"""Client order ids: allocated in blocks from a durable, locked state file.

One state file per (environment, account, API key) in a state directory (default
``$XDG_STATE_HOME/mmfast``, else ``~/.local/state/mmfast``; never the working directory). The
file holds the high-water mark: the last id of the last reserved block. Before the first id of a
new block is handed out, the new mark is written to a temporary file, fsynced, renamed over the
state file, and the directory is fsynced; so after any crash the mark on disk is at or above every
id ever used, and a restart continues above it (ids reserved but never used are skipped, never
reused). Ids are always in 1..2^48-1 (``MAX_CLIENT_ORDER_INDEX``).

An exclusive ``fcntl.flock`` on a companion ``.lock`` file is held for the allocator's lifetime:
a second allocator for the same key (another process, or the same one) gets ``CoiLockedError``.
A state file that cannot be read back exactly (bad JSON, wrong identity, mark out of range) is a
``CoiStateError``: never silently reset, since a reset would reuse ids.

``durable_write`` and ``default_state_dir`` are shared with the order tracker's fill watermark.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
from pathlib import Path
from typing import Any

import orjson

from mmfast.core.errors import OrderError
from mmfast.core.types import MAX_CLIENT_ORDER_INDEX

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "CoiAllocator",
    "CoiError",
    "CoiExhaustedError",
    "CoiLockedError",
    "CoiStateError",
    "default_state_dir",
    "durable_write",
    "state_file_stem",
]

DEFAULT_BLOCK_SIZE = 10_000
_STATE_VERSION = 1
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class CoiError(OrderError, RuntimeError):
    """Base of the client-order-id allocator's errors."""


class CoiLockedError(CoiError):
    """Another allocator (another process, or this one) holds the state file's lock."""


class CoiStateError(CoiError):
    """The state file is unreadable or inconsistent: a clear error, never a reset."""


class CoiExhaustedError(CoiError):
    """Every id up to 2^48-1 has been reserved."""


def default_state_dir(environ: dict[str, str] | os._Environ[str] | None = None) -> Path:
    """``$XDG_STATE_HOME/mmfast`` if that is an absolute path, else ``~/.local/state/mmfast``."""
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_STATE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "mmfast"
    return Path.home() / ".local" / "state" / "mmfast"


def state_file_stem(environment: str, account_index: int, api_key_index: int) -> str:
    """The file name stem of per-key state: ``<environment>-<account>-<api key>``."""
    if not _NAME_RE.match(environment):
        raise ValueError(f"environment must match {_NAME_RE.pattern}: {environment!r}")
    if isinstance(account_index, bool) or not isinstance(account_index, int) or account_index < 0:
        raise ValueError(f"account_index must be an int >= 0: {account_index!r}")
    if (
        isinstance(api_key_index, bool)
        or not isinstance(api_key_index, int)
        or not 0 <= api_key_index <= 254
    ):
        raise ValueError(f"api_key_index must be an int in 0..254: {api_key_index!r}")
    return f"{environment}-{account_index}-{api_key_index}"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably (temp file, fsync, rename, dir fsync).

    After it returns, a crash leaves either the old or the new content, never a torn file.
    """
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class CoiAllocator:
    """Hands out client order ids, reserving them durably in blocks of ``block_size``.

    ``open()`` (or ``with``) takes the lock and reads the mark; ``next()`` returns the next id,
    reserving a new block first when the current one is used up; ``take(n)`` returns n
    consecutive ids (one batch). Not thread-safe: the loop thread owns it.
    """

    __slots__ = (
        "_account_index",
        "_api_key_index",
        "_block_end",
        "_block_size",
        "_environment",
        "_lock_fd",
        "_lock_path",
        "_next",
        "_path",
        "_reservations",
    )

    def __init__(
        self,
        environment: str,
        account_index: int,
        api_key_index: int,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        block_size: int = DEFAULT_BLOCK_SIZE,
    ) -> None:
        stem = state_file_stem(environment, account_index, api_key_index)
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
            raise ValueError(f"block_size must be an int >= 1: {block_size!r}")
        directory = Path(state_dir) if state_dir is not None else default_state_dir()
        if not directory.is_absolute():
            # A relative state dir would follow the working directory; refuse it.
            raise ValueError(f"state_dir must be an absolute path: {str(directory)!r}")
        self._environment = environment
        self._account_index = account_index
        self._api_key_index = api_key_index
        self._block_size = block_size
        self._path = directory / f"coi-{stem}.json"
        self._lock_path = directory / f"coi-{stem}.lock"
        self._lock_fd = -1
        self._next = 1  # next id to hand out (valid while _next <= _block_end)
        self._block_end = 0  # last id of the reserved block (the high-water mark on disk)
        self._reservations = 0  # blocks reserved since open

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> CoiAllocator:
        """Create the state dir (0700) if needed, lock, and read the high-water mark."""
        if self._lock_fd >= 0:
            return self
        directory = self._path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise CoiLockedError(
                    f"client order id state {str(self._path)!r} is locked by another mmfast"
                    " process (or another allocator in this one); one process per API key"
                ) from None
            raise
        try:
            mark = self._read_mark()
        except BaseException:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise
        self._lock_fd = fd
        self._block_end = mark
        self._next = mark + 1
        return self

    def close(self) -> None:
        """Release the lock. Unused ids of the current block are skipped by the next run."""
        if self._lock_fd >= 0:
            fd, self._lock_fd = self._lock_fd, -1
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> CoiAllocator:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # ------------------------------------------------------------------ allocation
    def next(self) -> int:
        """The next client order index (reserving a durable block first when needed)."""
        if self._next > self._block_end or self._lock_fd < 0:
            self._reserve(1)
        coi = self._next
        self._next = coi + 1
        return coi

    def take(self, n: int) -> range:
        """``n`` consecutive ids (e.g. one batch); reserves a block covering them if needed."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an int >= 1: {n!r}")
        if self._next + n - 1 > self._block_end or self._lock_fd < 0:
            self._reserve(n)
        start = self._next
        self._next = start + n
        return range(start, start + n)

    def _reserve(self, need: int) -> None:
        if self._lock_fd < 0:
            raise CoiError("CoiAllocator is not open")
        # Unused ids left in the current block are dropped: the new block starts above the mark
        # on disk, which is what a restart would do too.
        start = self._block_end + 1
        if start + need - 1 > MAX_CLIENT_ORDER_INDEX:
            raise CoiExhaustedError(
                f"client order ids exhausted: {MAX_CLIENT_ORDER_INDEX - start + 1} left,"
                f" {need} needed ({str(self._path)!r})"
            )
        end = min(start + max(self._block_size, need) - 1, MAX_CLIENT_ORDER_INDEX)
        self._write_mark(end)  # durable before any id of the block is returned
        self._reservations += 1
        self._next = start
        self._block_end = end

    # ------------------------------------------------------------------ state file
    def _identity(self) -> dict[str, Any]:
        return {
            "environment": self._environment,
            "account_index": self._account_index,
            "api_key_index": self._api_key_index,
        }

    def _read_mark(self) -> int:
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            return 0
        where = f"client order id state {str(self._path)!r}"
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise CoiStateError(f"{where} is not valid JSON; refusing to reset it") from None
        if not isinstance(doc, dict) or doc.get("version") != _STATE_VERSION:
            raise CoiStateError(f"{where} has no supported 'version'; refusing to reset it")
        for k, v in self._identity().items():
            if doc.get(k) != v:
                raise CoiStateError(f"{where}: {k} is {doc.get(k)!r}, expected {v!r}")
        mark = doc.get("high_water")
        if (
            isinstance(mark, bool)
            or not isinstance(mark, int)
            or not 0 <= mark <= MAX_CLIENT_ORDER_INDEX
        ):
            raise CoiStateError(f"{where}: high_water {mark!r} is not in 0..2^48-1")
        return mark

    def _write_mark(self, mark: int) -> None:
        doc = {"version": _STATE_VERSION, **self._identity(), "high_water": mark}
        durable_write(self._path, orjson.dumps(doc))

    # ------------------------------------------------------------------ introspection
    @property
    def path(self) -> Path:
        """The state file."""
        return self._path

    @property
    def high_water(self) -> int:
        """The last id reserved on disk (0: none yet)."""
        return self._block_end

    @property
    def reservations(self) -> int:
        """Blocks reserved (durable writes) since ``open``."""
        return self._reservations

    @property
    def is_open(self) -> bool:
        return self._lock_fd >= 0

    def __repr__(self) -> str:
        return (
            f"CoiAllocator(path={str(self._path)!r}, next={self._next},"
            f" high_water={self._block_end}, open={self.is_open})"
        )
