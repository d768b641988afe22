"""Stop signals before a command has its own handlers (imports, config, start-up).

``install_early()`` (the ``mmfast`` command's first statement) makes SIGINT, SIGTERM and SIGHUP
note themselves (``pending_stop``) instead of raising into whatever code runs then (an import
could swallow an exception and lose the signal). The command checks for one where it takes
over its signals and stops there: before anything started, quietly with 128 + the signal's
number (``stopped_early``), else through its normal shutdown.

Its own module, imported by the command and by whoever checks: ``python -m mmfast.cli`` runs the
command module as ``__main__``, a second copy of it, so the state cannot live there.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

__all__ = ["STOP_SIGNALS", "install_early", "note", "pending_stop", "stopped_early"]

# A closed terminal or SSH session (SIGHUP) stops like SIGTERM: cancel, confirm, summary.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_pending: list[int] = []  # stop signals received before a command took over its signals


def _early(signum: int, frame: object) -> None:
    _pending.append(signum)


def install_early() -> dict[int, Any]:
    """Note stop signals from now on; returns the handlers replaced (to restore them)."""
    return {sig: signal.signal(sig, _early) for sig in STOP_SIGNALS}


def note(signum: int) -> None:
    """Record a stop signal seen another way (a KeyboardInterrupt before install_early)."""
    _pending.insert(0, signum)


def pending_stop() -> int | None:
    """The first stop signal received before the command installed its own handlers."""
    return _pending[0] if _pending else None


def stopped_early(what: str = "mmfast") -> int:
    """Report a stop signal that came before anything started; the exit code (128 + it)."""
    signum = _pending[0]
    print(
        f"{what}: stopped by {signal.Signals(signum).name} before it started; nothing was sent",
        file=sys.stderr,
    )
    return 128 + signum
