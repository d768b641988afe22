"""``mmfast guard``: the process that cancels a bot's orders when the bot cannot.

It watches one bot through its heartbeat (``mmfast.run.heartbeat``) and trades under its own
API key of the same account (another API key index: the venue's nonces are per key, so it
never races the bot's). It acts when

- the bot's process is gone (checked every ``poll_ms``: a ``kill -9`` is seen at once),
- the bot's stamps are older than ``max_silence_ms`` (a hung or stopped event loop), or
- the bot says it cannot reach the venue (``BotState.UNREACHABLE``), or stopped with orders
  it could not confirm cancelled,

by sending an immediate cancel-all for each of the bot's markets over REST (signed with its
own key and nonce), then reading the account's active orders of those markets over REST until
none is left, cancelling again while any is (a hung bot may still have txs in flight). Every
step goes to its JSONL journal. While the bot lives it also keeps the venue's scheduled
cancel-all armed (account-wide, ``renew_s`` apart, firing ``SCHEDULE_AHEAD_MS`` after the last
renewal: the venue's minimum is 5 minutes): if both processes die, the venue flattens the
account on its own. Renewals run beside the watch (a slow or rate-limited venue never delays a
heartbeat check), a failed one is retried 1 s later, then further apart; an act cancels a
renewal in flight (its txs go first). A clean stop of the bot (``STOPPED`` with 0 orders
left) ends the guard: it aborts the scheduled cancel-all and exits 0.

Times: the heartbeat's age, polls, confirmations and timeouts are host time (``CLOCK_MONOTONIC``,
what the bot stamps with); only the scheduled cancel-all's deadline and its renewal follow the
venue's clock (``time``: a simulator may run faster than real time).

Exit codes: 0 the bot stopped cleanly or was flattened after it died; 1 the venue could not be
confirmed flat (or the guard could not start); 2 bad options.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from time import monotonic_ns as _mono  # host time: the heartbeat's clock, and the operator's
from typing import Any, Final

from mmfast.connector.lighter.secret import ENV_GUARD_KEY, ApiKey
from mmfast.core.log import get_logger
from mmfast.core.timesource import REAL_TIME, TimeSource
from mmfast.run.heartbeat import BotState, HeartbeatError, Pulse, pid_alive, read_heartbeat

__all__ = ["ENV_GUARD_KEY", "SCHEDULE_AHEAD_MS", "Guard", "GuardOptions"]

_log = get_logger("guard")

# The scheduled cancel-all fires this far after its last renewal (the venue's minimum period
# is 5 minutes; 30 s of slack for clocks and the renewal's own round trip).
SCHEDULE_AHEAD_MS: Final = 5 * 60_000 + 30_000
# While the bot stays silent after a flatten: looks at its markets this far apart, doubling.
_LOOK_FIRST_S: Final = 1.0
_LOOK_MAX_S: Final = 8.0
_GONE: Final = "bot process gone"


@dataclass(frozen=True, slots=True)
class GuardOptions:
    """What the guard watches and how (``mmfast guard``'s options, or the runner's)."""

    rest_url: str
    chain_id: int
    account_index: int
    api_key_index: int  # the guard's own key
    markets: tuple[int, ...]
    heartbeat: Path
    journal: Path
    bot_pid: int
    max_silence_ms: int = 1500
    poll_ms: int = 50
    scheduled_cancel_all: bool = True
    renew_s: float = 60.0
    confirm_interval_s: float = 0.25
    first_beat_s: float = 60.0  # the bot's first beat is awaited this long
    give_up_s: float = 60.0  # a dead bot's venue unreachable this long: stop trying
    request_timeout_s: float = 2.0  # any one REST call (a budget backoff waits no longer)
    # Compare the native signer with the official one at start. The bot that starts its guard
    # has just done so on the same build: loading the official SDK again costs the guard ~1 s
    # of start-up, a second in which a dying bot's orders wait for it.
    check_signer: bool = True


class Guard:
    """One guard run (see the module doc). ``run()`` returns the exit code."""

    def __init__(
        self, opts: GuardOptions, key: ApiKey, *, time: TimeSource = REAL_TIME, signer: Any = None
    ) -> None:
        self.opts = opts
        self._key = key
        self._time = time
        self._signer = signer  # injected (tests); else an InlineSigner on the key
        self.rest: Any = None
        self.journal: Any = None
        self._nonce = -1
        self._scheduled_at_ms = 0  # wall ms of the last scheduled cancel-all sent
        # The schedule's renewal runs beside the watch (a slow or rate-limited venue must not
        # hold the heartbeat checks); after a failure it is retried _renew_pause_s later.
        self._renewal: asyncio.Task[None] | None = None
        self._renew_retry_ms = 0
        self._renew_pause_s = _LOOK_FIRST_S
        self.actions = 0  # cancel-alls sent for the bot
        self.flattened = 0  # times the bot's markets were confirmed flat after acting
        self.reason = ""  # why it acted last
        self._last_pulse: Pulse | None = None  # the last good read of the bot's heartbeat

    def _rec(self, kind: str, **fields: Any) -> None:
        """A journal line, on disk at once (few lines; each is what an operator reads after
        an incident, and the guard may itself be killed next)."""
        j = self.journal
        j.write(kind, **fields)
        j.flush()

    # ------------------------------------------------------------------ venue
    async def _start(self) -> None:
        from mmfast.connector.lighter.auth import TokenCache
        from mmfast.connector.lighter.budget import PREMIUM, RateBudget
        from mmfast.connector.lighter.native_signer import InlineSigner
        from mmfast.connector.lighter.rest import LighterRest
        from mmfast.run.journal import JsonlJournal

        o = self.opts
        self.journal = JsonlJournal(o.journal, time=self._time)
        if self._signer is None:
            self._signer = InlineSigner(
                self._key,
                account_index=o.account_index,
                api_key_index=o.api_key_index,
                chain_id=o.chain_id,
                name="mmfast-guard-signer",
                pool_size=16,
                check=o.check_signer,
                wall_ms=self._time.wall_ms,
            )
            self._signer.start()
        tokens = TokenCache(
            self._signer,
            lifetime_s=3600,
            refresh_margin_s=300,
            venue_now_s=lambda: self._time.wall_ms() / 1000,
        )
        self.rest = LighterRest(
            o.rest_url.rstrip("/") + "/api/v1",
            RateBudget(PREMIUM, self._time),
            self._time,
            tokens=tokens,
            timeout_s=2.0,
            max_retries=1,
        )
        await self.rest.start()

    async def _call(self, coro: Any) -> Any:
        """One REST call, bounded (the client's own retries and budget waits included)."""
        return await asyncio.wait_for(coro, self.opts.request_timeout_s)

    async def _next_nonce(self) -> int:
        if self._nonce < 0:
            self._nonce = await self._call(
                self.rest.next_nonce(self.opts.account_index, self.opts.api_key_index)
            )
        n = self._nonce
        self._nonce += 1
        return n

    async def _send_cancel_all(self, market: int | None, tif: int, time_ms: int = 0) -> bool:
        """One CancelAllOrders tx (market-scoped immediate, or account-wide scheduled/abort).
        True when the venue accepted it for sequencing."""
        from mmfast.connector.lighter.budget import Priority
        from mmfast.connector.lighter.rest import LighterApiError, OutcomeUnknown
        from mmfast.connector.lighter.signer import CancelAllRequest, CancelAllTif, SignerError
        from mmfast.core.errors import ExchangeError

        try:
            nonce = await self._next_nonce()
            req = CancelAllRequest(
                market, nonce, all_markets=market is None, tif=CancelAllTif(tif), time_ms=time_ms
            )
            signed = self._signer.sign_now(req)
            await self._call(
                self.rest.send_tx(signed.tx_type, signed.tx_info, priority=Priority.RESERVED)
            )
            return True
        except LighterApiError as exc:
            self._nonce = -1  # refetched next time (a reject consumes no nonce)
            self._rec(
                "guard_venue_error", market=market, tif=tif, code=exc.code, message=exc.message
            )
            return False
        except (OutcomeUnknown, ExchangeError, OSError, TimeoutError, SignerError) as exc:
            self._nonce = -1
            self._rec("guard_send_failed", market=market, tif=tif, error=type(exc).__name__)
            return False

    async def _open_orders(self) -> int | None:
        """The account's active orders in the bot's markets (None: the venue did not answer)."""
        n = 0
        try:
            for m in self.opts.markets:
                n += len(
                    await self._call(self.rest.account_active_orders(self.opts.account_index, m))
                )
        except Exception as exc:  # any failure to read is "unknown", retried by the caller
            self._rec("guard_read_failed", error=type(exc).__name__)
            return None
        return n

    # ------------------------------------------------------------------ actions
    async def flatten(
        self, reason: str, *, until_ns: int | None = None, look_first: bool = False
    ) -> bool:
        """Cancel-all for each of the bot's markets, then confirm none is left; again while
        any is (``confirm_interval_s`` apart, doubling up to 2 s: the venue limits REST weight
        per IP, which the bot shares), until confirmed or ``until_ns`` (monotonic).
        ``look_first``: read the orders before the first cancel-all (a repeat check while a
        hung bot stays silent). True when confirmed."""
        self.reason = reason
        if look_first:
            left = await self._open_orders()
            if left == 0:
                return True
        await self._stop_renewal()  # the act's txs first (and one nonce sequence)
        self._rec("guard_act", reason=reason, markets=list(self.opts.markets))
        _log.warning(
            "guard: %s: cancelling every order of markets %s", reason, list(self.opts.markets)
        )
        pause = self.opts.confirm_interval_s
        while True:
            for m in self.opts.markets:
                if await self._send_cancel_all(m, 0):
                    self.actions += 1
                    self._rec("guard_cancel_all", market=m)
            await asyncio.sleep(min(0.05, self.opts.confirm_interval_s))
            left = await self._open_orders()
            self._rec("guard_confirm", orders_left=left)
            if left == 0:
                self.flattened += 1
                _log.warning("guard: markets %s confirmed flat", list(self.opts.markets))
                return True
            if until_ns is not None and _mono() >= until_ns:
                return False
            await asyncio.sleep(pause)
            pause = min(2 * pause, max(2.0, self.opts.confirm_interval_s))

    async def schedule(self) -> bool:
        """Arm (or renew) the venue's account-wide scheduled cancel-all. True when sent."""
        at = self._time.wall_ms() + SCHEDULE_AHEAD_MS
        if await self._send_cancel_all(None, 1, at):
            self._scheduled_at_ms = self._time.wall_ms()
            self._rec("guard_scheduled", fires_at_ms=at)
            return True
        return False

    def _renew_if_due(self) -> None:
        """Start the schedule's renewal in the background when it is due (not while one
        runs, nor before a failed one's pause has passed)."""
        if self._renewal is not None and not self._renewal.done():
            return
        now = self._time.wall_ms()
        if now - self._scheduled_at_ms < self.opts.renew_s * 1000 or now < self._renew_retry_ms:
            return
        self._renewal = asyncio.ensure_future(self._renew())

    async def _renew(self) -> None:
        if await self.schedule():
            self._renew_pause_s = _LOOK_FIRST_S
            return
        # Each attempt is REST weight the bot, on the same IP, may need: further apart.
        self._renew_retry_ms = self._time.wall_ms() + int(self._renew_pause_s * 1000)
        self._renew_pause_s = min(2 * self._renew_pause_s, self.opts.renew_s)

    async def _stop_renewal(self) -> None:
        t, self._renewal = self._renewal, None
        if t is None or t.done():
            return
        t.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await t
        self._nonce = -1  # its tx may or may not have reached the venue: ask for the next

    async def abort_schedule(self) -> None:
        await self._stop_renewal()
        if self.opts.scheduled_cancel_all and await self._send_cancel_all(None, 2, 0):
            self._rec("guard_schedule_aborted")

    # ------------------------------------------------------------------ watching
    def _bot_alive(self) -> bool:
        return pid_alive(self.opts.bot_pid)

    def _pulse(self) -> Pulse | None:
        """The bot's heartbeat; when a read fails (the bot was mid-write for all of the
        read's tries, which a loaded machine or a SIGSTOP between the two halves of a write
        causes, or the file went), the last good beat, ageing: a bot that stays unreadable
        is silent after ``max_silence_ms`` like any hung bot, and a healthy one caught
        mid-write is not flattened. None before the first good beat."""
        try:
            p = read_heartbeat(self.opts.heartbeat)
        except HeartbeatError:
            return self._last_pulse
        if p.pid != self.opts.bot_pid:
            return None
        self._last_pulse = p
        return p

    def why_act(self, p: Pulse | None, now_ns: int) -> str:
        """Why the guard must act now ("" = it need not)."""
        if not self._bot_alive():
            return _GONE
        if p is None:
            return "bot heartbeat unreadable"
        if p.state is BotState.UNREACHABLE:
            return "bot cannot reach the venue"
        if p.state is BotState.STOPPED and p.orders_left != 0:
            return "bot stopped without confirming its orders cancelled"
        age_ms = (now_ns - p.stamp_ns) / 1e6
        if p.state is not BotState.STOPPED and age_ms > self.opts.max_silence_ms:
            return f"bot silent for {age_ms:.0f} ms"
        return ""

    async def run(self) -> int:
        o = self.opts
        try:
            await self._start()
        except Exception as exc:
            _log.error("guard: could not start: %s", type(exc).__name__)
            return 1
        assert self.journal is not None
        self._rec(
            "guard_start",
            bot_pid=o.bot_pid,
            markets=list(o.markets),
            max_silence_ms=o.max_silence_ms,
            api_key_index=o.api_key_index,
        )
        try:
            return await self._watch()
        finally:
            await self._stop_renewal()
            self._rec(
                "guard_stop", actions=self.actions, flattened=self.flattened, reason=self.reason
            )
            self.journal.close()
            with contextlib.suppress(Exception):
                await self.rest.close()
            if self._signer is not None:
                with contextlib.suppress(Exception):
                    self._signer.stop()

    async def _watch(self) -> int:
        o = self.opts
        deadline = _mono() + int(o.first_beat_s * 1e9)
        while self._pulse() is None:  # the bot's first beat
            if not self._bot_alive():
                break
            if _mono() >= deadline:
                break
            await asyncio.sleep(o.poll_ms / 1000)
        acted = False
        next_look = 0
        look_s = _LOOK_FIRST_S  # the pause before the next look while the bot stays silent
        acted_gone = False  # the last act was for the bot's process being gone
        while True:
            now = _mono()
            p = self._pulse()
            if p is not None and p.state is BotState.STOPPED and p.orders_left == 0:
                self._rec("guard_bot_stopped_clean")
                await self.abort_schedule()
                return 0
            why = self.why_act(p, now)
            # At once the first time, and whenever the bot's process is gone (it may die while
            # the guard is between looks at a silent or cut-off bot); else at the next look.
            fresh = why == _GONE and not acted_gone  # the process died since the last act
            if why and (not acted or now >= next_look or fresh):
                # The first time at once; while the bot stays silent, a look now and then (a
                # hung bot may still have txs in flight), further apart each time: every look
                # is REST weight the bot, on the same IP, may need once it is back.
                ok = await self.flatten(
                    why, until_ns=now + int(2e9), look_first=acted and not fresh
                )
                look_s = min(2 * look_s, _LOOK_MAX_S) if acted else _LOOK_FIRST_S
                next_look = _mono() + int(look_s * 1e9)
                acted, acted_gone = True, why == _GONE
                if not acted_gone and not self._bot_alive():
                    # It died while the guard acted for another reason: what that act confirmed
                    # predates the death (the bot may have quoted again since). Act afresh.
                    continue
                if not self._bot_alive():
                    # Nobody else will: until confirmed, or until the venue has been out of
                    # reach for give_up_s (it went with the bot, or the host lost it: the
                    # venue's scheduled cancel-all stays armed then).
                    give_up = _mono() + int(o.give_up_s * 1e9)
                    while not ok and _mono() < give_up:
                        ok = await self.flatten(why, until_ns=_mono() + int(5e9))
                    if not ok:
                        self._rec("guard_gave_up", after_s=o.give_up_s)
                        _log.error(
                            "guard: could not confirm the bot's markets flat within "
                            "%.0f s; the venue's scheduled cancel-all stays armed",
                            o.give_up_s,
                        )
                        return 1
                    await self.abort_schedule()
                    return 0
            elif acted and not why:
                self._rec("guard_bot_back")
                _log.warning("guard: the bot's heartbeat is back")
                acted = False
            if o.scheduled_cancel_all:
                self._renew_if_due()
            await asyncio.sleep(o.poll_ms / 1000)
