"""Registering an API public key with a running simulator from another process.

The simulator verifies every signature and auth token against the public key registered for
the (account, API key), as the venue does. A process that trades on it with a key it made (the
bot's sim mode, the diagnostics tools) registers that key first through the simulator's
loopback control endpoint; in-process callers use ``SimThread.register_api_key`` instead.
"""

from __future__ import annotations

from mmfast.sim.server import CONTROL

__all__ = ["register_api_key_http"]


async def register_api_key_http(rest_url: str, account_index: int, api_key_index: int,
                                public_key: bytes, *, timeout_s: float = 10.0) -> None:
    """POST the 40-byte public key to ``rest_url``'s control endpoint; raise RuntimeError if
    the simulator refuses it or cannot be reached."""
    import aiohttp

    body = {"account_index": account_index, "api_key_index": api_key_index,
            "public_key": public_key.hex()}
    try:
        async with aiohttp.ClientSession() as s, s.post(
                f"{rest_url.rstrip('/')}{CONTROL}/api_keys", json=body,
                timeout=aiohttp.ClientTimeout(total=timeout_s)) as r:
            if r.status != 200:
                raise RuntimeError(f"the simulator at {rest_url} refused the API key"
                                   f" (HTTP {r.status})")
    except aiohttp.ClientError as exc:
        raise RuntimeError(f"could not register the API key with the simulator at {rest_url}:"
                           f" {type(exc).__name__}") from None
