"""``retry_until``: start-up reads wait out rate limits (their Retry-After) and venue errors
with jittered, growing pauses, give up at the deadline naming what the venue answered, and
raise anything else at once."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from mmfast.connector.lighter.rest import (
    LighterApiError,
    RateLimited,
    StartupError,
    VenueUnavailable,
    retry_until,
)


class Clock:
    """Simulated time: sleeping advances it at once."""

    scale = 1.0

    def __init__(self) -> None:
        self.ns = 0
        self.sleeps: list[float] = []

    def monotonic_ns(self) -> int:
        return self.ns

    async def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.ns += int(s * 1e9)


def _calls(*outcomes: Any) -> Any:
    it = iter(outcomes)

    async def call() -> Any:
        o = next(it)
        if isinstance(o, BaseException):
            raise o
        return o

    return call


def test_waits_out_rate_limits_and_errors() -> None:
    c = Clock()
    call = _calls(
        RateLimited(23000, "Too Many Requests!", 1.5),
        RateLimited(23000, "", None),
        VenueUnavailable("x: HTTP 503"),
        OSError("reset"),
        {"ok": 1},
    )
    got = asyncio.run(retry_until(call, "x", 60, time=c, rng=random.Random(1)))  # type: ignore[arg-type]
    assert got == {"ok": 1}
    assert c.sleeps[0] == 1.5  # the venue's Retry-After
    # then the jittered backoff: 0.5, 1, 2 (x [0.5, 1.5))
    for s, base in zip(c.sleeps[1:], (0.5, 1.0, 2.0), strict=True):
        assert 0.5 * base <= s < 1.5 * base


def test_gives_up_at_the_deadline_naming_the_answer() -> None:
    c = Clock()

    async def always_503() -> Any:
        raise VenueUnavailable("orderBookDetails: HTTP 503 (1 attempt)")

    with pytest.raises(
        StartupError,
        match=r"orderBookDetails: the venue answered HTTP 503 "
        r"\(1 attempt\) for 10 s \(\d+ tries\); giving up",
    ):
        asyncio.run(
            retry_until(
                always_503,
                "orderBookDetails",
                10,
                time=c,  # type: ignore[arg-type]
                rng=random.Random(2),
            )
        )
    assert sum(c.sleeps) <= 10.0 + 1e-6 and max(c.sleeps) < 6.0


def test_anything_else_is_raised_at_once() -> None:
    c = Clock()
    with pytest.raises(LighterApiError):
        asyncio.run(retry_until(_calls(LighterApiError(21100, "bad market")), "x", 60, time=c))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        asyncio.run(retry_until(_calls(ValueError("malformed")), "x", 60, time=c))  # type: ignore[arg-type]
    assert c.sleeps == []
