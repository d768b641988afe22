"""What a process trading on a running simulator asks of its loopback control endpoint.

- ``register_api_key_http``: the simulator verifies every signature and auth token against the
  public key registered for the (account, API key), as the venue does. A process that trades on
  it with a key it made (the bot's sim mode, the diagnostics tools) registers that key first;
  in-process callers use ``SimThread.register_api_key`` instead.
- ``check_tier_http``: the simulator's account tier (speed bumps, rate limits, volume quota)
  must be the one the bot's rate budget keeps to, else the bot runs into limits it does not
  know of (or leaves room unused).
- ``read_clock_http``: a simulator at a time scale runs its clock ahead of the host's from the
  moment it started. A bot or guard at the same scale anchors its own clock there (else the
  venue's times look skewed by the simulator's head start, and its scheduled times and tx
  expiries are off by as much).
"""

from __future__ import annotations

from typing import Any

from mmfast.core.timesource import ScaledTime
from mmfast.sim.server import CONTROL

__all__ = ["anchored_clock", "check_tier_http", "read_clock_http", "register_api_key_http"]


async def register_api_key_http(
    rest_url: str,
    account_index: int,
    api_key_index: int,
    public_key: bytes,
    *,
    timeout_s: float = 10.0,
    maker_only: bool = False,
) -> None:
    """POST the 40-byte public key to ``rest_url``'s control endpoint (``maker_only``: the
    simulator refuses the key's non-maker txs, as the venue does); raise RuntimeError if the
    simulator refuses it or cannot be reached."""
    import aiohttp

    body = {
        "account_index": account_index,
        "api_key_index": api_key_index,
        "public_key": public_key.hex(),
        "maker_only": maker_only,
    }
    try:
        async with (
            aiohttp.ClientSession() as s,
            s.post(
                f"{rest_url.rstrip('/')}{CONTROL}/api_keys",
                json=body,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as r,
        ):
            if r.status != 200:
                raise RuntimeError(
                    f"the simulator at {rest_url} refused the API key (HTTP {r.status})"
                )
    except aiohttp.ClientError as exc:
        raise RuntimeError(
            f"could not register the API key with the simulator at {rest_url}: {type(exc).__name__}"
        ) from None


async def _read_truth(rest_url: str, path: str, what: str, timeout_s: float) -> dict[str, Any]:
    """The ``result`` of the simulator's ``/_sim/truth/<path>``; RuntimeError naming ``what``
    if it cannot be read."""
    import aiohttp

    try:
        async with (
            aiohttp.ClientSession() as s,
            s.get(
                f"{rest_url.rstrip('/')}{CONTROL}/truth/{path}",
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as r,
        ):
            body = await r.json() if r.status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise RuntimeError(
            f"could not read the {what} of the simulator at {rest_url}: {type(exc).__name__}"
        ) from None
    result = body.get("result") if isinstance(body, dict) else None
    return result if isinstance(result, dict) else {}


async def read_clock_http(rest_url: str, *, timeout_s: float = 10.0) -> tuple[int, float]:
    """The simulator's (wall ms, time scale) now; RuntimeError if it cannot be read."""
    result = await _read_truth(rest_url, "time", "clock", timeout_s)
    if not isinstance(result.get("wall_ms"), int):
        raise RuntimeError(f"the simulator at {rest_url} did not tell its clock")
    return int(result["wall_ms"]), float(result.get("scale", 1.0))


async def anchored_clock(rest_url: str, scale: float) -> ScaledTime:
    """A clock at ``scale`` starting where the simulator's is now; RuntimeError if it cannot
    be read or runs at another scale."""
    wall_ms, sim_scale = await read_clock_http(rest_url)
    if abs(sim_scale - scale) > 1e-9:
        raise RuntimeError(
            f"the simulator at {rest_url} runs at time scale {sim_scale:g}, "
            f"not {scale:g}: the time scales must be the same"
        )
    return ScaledTime(scale, start_wall_ms=wall_ms)


async def check_tier_http(rest_url: str, tier: str, *, timeout_s: float = 10.0) -> None:
    """RuntimeError unless the simulator at ``rest_url`` runs account tier ``tier``."""
    result = await _read_truth(rest_url, "tier", "tier", timeout_s)
    got = result.get("tier")
    if got != tier:
        raise RuntimeError(
            f"the simulator at {rest_url} runs the {got!r} tier, not venue.tier "
            f"= {tier!r}: start it with --tier {tier} or set venue.tier = "
            f"{got!r}"
        )
