"""Auth tokens for private streams and REST: the provider interface and a refreshing cache.

A token is a bearer secret (``<deadline_s>:<account>:<api_key>:<hex signature>``): it never
appears in a log line, an exception, a repr or status output. The signer (part 2) provides
them; ``SignerTokenProvider`` wraps lighter-sdk's SignerClient for tests and the simulator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from mmfast.core.errors import SigningError
from mmfast.core.log import get_logger
from mmfast.core.timesource import REAL_TIME, TimeSource

__all__ = ["AuthTokenProvider", "SignerTokenProvider", "TokenCache", "TokenError", "redact"]

_log = get_logger("connector.auth")


@runtime_checkable
class AuthTokenProvider(Protocol):
    """Makes auth tokens. ``deadline_s`` is the token's expiry in venue epoch seconds."""

    async def token(self, deadline_s: int) -> str: ...


class TokenError(SigningError, RuntimeError):
    """The provider failed to make a token (the message never contains a token)."""


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every occurrence of each secret replaced by ``<redacted>``."""
    for s in secrets:
        if s:
            text = text.replace(s, "<redacted>")
    return text


class TokenCache:
    """Holds the current token; refreshes it ``refresh_margin_s`` before its deadline.

    ``venue_now_s`` gives venue epoch seconds (local wall time corrected for measured skew), so
    deadlines stay within the venue's window (> now, <= now + 8 h) whatever the local clock says.
    """

    __slots__ = (
        "_deadline_s",
        "_lifetime_s",
        "_lock",
        "_margin_s",
        "_provider",
        "_timer",
        "_token",
        "_venue_now_s",
        "refreshes",
    )

    def __init__(
        self,
        provider: AuthTokenProvider,
        *,
        lifetime_s: int,
        refresh_margin_s: float,
        venue_now_s: Callable[[], float],
    ) -> None:
        self._provider = provider  # the signer's token maker
        self._lifetime_s = lifetime_s  # deadline = venue now + lifetime
        self._margin_s = refresh_margin_s  # refresh this long before the deadline
        self._venue_now_s = venue_now_s  # venue epoch seconds
        self._token: str | None = None  # the current token (secret)
        self._deadline_s = 0  # its deadline, venue epoch seconds
        self._lock = asyncio.Lock()  # one refresh at a time
        self._timer: asyncio.TimerHandle | None = None  # proactive refresh
        self.refreshes = 0  # tokens made

    @property
    def deadline_s(self) -> int:
        return self._deadline_s

    def valid_for_s(self) -> float:
        return self._deadline_s - self._venue_now_s() if self._token else 0.0

    async def get(self) -> str:
        """A token valid for at least the refresh margin (made now if needed)."""
        if self._token is not None and self.valid_for_s() > self._margin_s:
            return self._token
        async with self._lock:
            if self._token is not None and self.valid_for_s() > self._margin_s:
                return self._token
            deadline = int(self._venue_now_s()) + self._lifetime_s
            try:
                token = await self._provider.token(deadline)
            except Exception as exc:
                raise TokenError(f"auth token provider failed: {type(exc).__name__}") from None
            if not isinstance(token, str) or not token:
                raise TokenError("auth token provider returned no token")
            self._token, self._deadline_s = token, deadline
            self.refreshes += 1
            _log.debug("auth token refreshed; valid for %d s", self._lifetime_s)
            return token

    def schedule_refresh(self, time: TimeSource = REAL_TIME) -> None:
        """Arm a timer that refreshes the token before it enters the refresh margin."""
        self.cancel()
        delay = max(1.0, self.valid_for_s() - self._margin_s - 1.0)
        self._timer = time.call_later(delay, self._fire, time)

    def _fire(self, time: TimeSource) -> None:
        task = asyncio.get_running_loop().create_task(self.get())

        def done(t: asyncio.Task[str]) -> None:
            if not t.cancelled() and t.exception() is not None:
                _log.warning("auth token refresh failed: %s", t.exception())
            self.schedule_refresh(time)

        task.add_done_callback(done)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def invalidate(self) -> None:
        """Forget the token (e.g. the venue refused it); the next ``get`` makes a new one."""
        self._token = None
        self._deadline_s = 0

    def __repr__(self) -> str:
        return f"TokenCache(deadline_s={self._deadline_s}, token=<redacted>)"


class SignerTokenProvider:
    """Tokens from lighter-sdk's SignerClient (``create_auth_token_with_expiry``).

    ``client`` is a constructed ``lighter.SignerClient`` (build it inside a running loop, with
    ``chain_id``, ``account_index`` and the key passed explicitly; it makes no network calls for
    tokens). Signing runs on a worker thread, never on the loop thread.
    """

    __slots__ = ("_api_key_index", "_client")

    def __init__(self, client: Any, api_key_index: int) -> None:
        self._client = client  # lighter.SignerClient
        self._api_key_index = api_key_index  # which key signs

    async def token(self, deadline_s: int) -> str:
        def make() -> str:
            token, err = self._client.create_auth_token_with_expiry(
                deadline_s, timestamp=0, api_key_index=self._api_key_index
            )
            if err is not None or not token:
                raise TokenError(f"signer refused to make a token: {err}")
            return str(token)

        return await asyncio.get_running_loop().run_in_executor(None, make)

    def __repr__(self) -> str:
        return f"SignerTokenProvider(api_key_index={self._api_key_index})"
