"""The guard against the running simulator: it cancels a dead or silent bot's orders with its
own key, confirms none is left, keeps the venue's scheduled cancel-all armed, and ends on a
clean stop. The bot is stood in for by orders signed with another key and a heartbeat file
this test writes (or stops writing)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from mmfast._core import signer as S
from mmfast.connector.lighter.secret import ApiKey
from mmfast.run.guard import SCHEDULE_AHEAD_MS, Guard, GuardOptions
from mmfast.run.heartbeat import BotState, HeartbeatWriter
from mmfast.sim.engine import TX_CREATE_ORDER
from mmfast.sim.thread import SimThread

ACCOUNT = 1001  # the simulator's funded account
BOT_KEY, GUARD_KEY = 3, 4
MARKET = 0


def _key(seed: int) -> tuple[ApiKey, bytes]:
    sk = S.scalar_op("add", bytes([seed]) * 40, bytes(40))
    return ApiKey("0x" + sk.hex()), S.public_key(sk)


def _place(st: SimThread, sk: ApiKey, n: int, first_coi: int = 1) -> None:
    """n resting bids of the stand-in bot (its own key, nonces from 0)."""
    now = int(time.time() * 1000)
    for i in range(n):
        info, _h = S.sign_tx(
            "create_order",
            {
                "market_index": MARKET,
                "client_order_index": first_coi + i,
                "base_amount": 1000,
                "price": 250_000 - 10 * i,
                "is_ask": 0,
                "order_type": 0,
                "time_in_force": 1,
                "reduce_only": 0,
                "trigger_price": 0,
                "order_expiry": now + 3_600_000,
            },
            sk=sk.reveal().removeprefix("0x"),
            chain_id=st.config.chain_id,
            account_index=ACCOUNT,
            api_key_index=BOT_KEY,
            nonce=st.call(lambda s: s.exchange.next_nonce(ACCOUNT, BOT_KEY)),
            expired_at=now + 600_000,
        )
        st.call(lambda s, info=info: s.exchange.submit(TX_CREATE_ORDER, orjson.loads(info)))
    deadline = time.monotonic() + 5
    while _open(st) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _open(st) == n


def _open(st: SimThread) -> int:
    return len(st.call(lambda s: s.truth.open_orders(ACCOUNT)))


def _setup(sim: SimThread, tmp: Path, pid: int, **kw: Any) -> tuple[Guard, ApiKey]:
    bot, bot_pub = _key(7)
    guard_key, guard_pub = _key(9)
    sim.register_api_key(ACCOUNT, BOT_KEY, bot_pub.hex())
    sim.register_api_key(ACCOUNT, GUARD_KEY, guard_pub.hex())
    opts = GuardOptions(
        rest_url=sim.rest_url,
        chain_id=sim.config.chain_id,
        account_index=ACCOUNT,
        api_key_index=GUARD_KEY,
        markets=(MARKET,),
        heartbeat=tmp / "hb",
        journal=tmp / "guard.jsonl",
        bot_pid=pid,
        first_beat_s=2.0,
        **kw,
    )
    return Guard(opts, guard_key), bot


def _journal(tmp: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in (tmp / "guard.jsonl").read_bytes().splitlines()]


@pytest.fixture
def mortal_bot(sim: SimThread, tmp_path: Path) -> Iterator[Any]:
    """A stand-in bot whose process the test kills: ``make(state, **guard_options)`` ->
    (its process, its guard, its key, a heartbeat stamped as its own, beating ``state``);
    the process and the heartbeat are ended after the test."""
    made: list[tuple[subprocess.Popen[bytes], HeartbeatWriter]] = []

    def make(state: BotState, **kw: Any) -> tuple[Any, Guard, ApiKey, HeartbeatWriter]:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        guard, bot = _setup(sim, tmp_path, child.pid, **kw)
        hb = HeartbeatWriter(tmp_path / "hb", (MARKET,))
        made.append((child, hb))
        hb._pid = child.pid  # stamps as the child's: the "bot" whose process dies
        hb.beat(state)
        return child, guard, bot, hb

    yield make
    for child, hb in made:
        if child.poll() is None:
            child.kill()
            child.wait()
        hb.close()


def test_guard_flattens_a_dead_bot_and_exits(sim: SimThread, tmp_path: Path, run) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that is gone
    guard, bot = _setup(sim, tmp_path, dead.pid)
    hb = HeartbeatWriter(tmp_path / "hb", (MARKET,))
    _place(sim, bot, 5)
    t0 = time.monotonic()
    code = run(guard.run(), 20)
    took = time.monotonic() - t0
    hb.close()
    assert code == 0 and _open(sim) == 0
    kinds = [r["kind"] for r in _journal(tmp_path)]
    assert "guard_act" in kinds and "guard_cancel_all" in kinds
    confirms = [r for r in _journal(tmp_path) if r["kind"] == "guard_confirm"]
    assert confirms[-1]["orders_left"] == 0
    assert guard.actions >= 1 and guard.flattened == 1
    assert guard.reason == "bot process gone"
    # Acting came first (no schedule armed for a bot already gone); the account-wide schedule
    # (a previous guard's, if any) is aborted once the account is flat.
    assert kinds.index("guard_act") == 1 and "guard_scheduled" not in kinds
    assert kinds[-2] == "guard_schedule_aborted"
    assert sim.call(lambda s: s.exchange.account(ACCOUNT).cancel_all_time) == 0
    assert took < 15  # bounded (the figure that matters is the process test's)


def test_guard_cancels_for_a_silent_bot_keeps_watching_and_ends_on_clean_stop(
    sim: SimThread, tmp_path: Path, run
) -> None:
    guard, bot = _setup(sim, tmp_path, os.getpid(), max_silence_ms=300, poll_ms=20)
    hb = HeartbeatWriter(tmp_path / "hb", (MARKET,))
    hb.beat(BotState.RUNNING)
    _place(sim, bot, 3)

    async def go() -> tuple[int, list[int], int]:
        task = asyncio.create_task(guard.run())
        seen: list[int] = []
        for _ in range(10):  # beating: nothing happens, the schedule is armed
            hb.beat()
            await asyncio.sleep(0.05)
        armed = sim.call(lambda s: s.exchange.account(ACCOUNT).cancel_all_time)
        seen.append(_open(sim))
        await asyncio.sleep(1.0)  # silent (a hung loop): the guard cancels
        seen.append(_open(sim))
        hb.beat(BotState.RUNNING)  # back
        for _ in range(5):
            hb.beat()
            await asyncio.sleep(0.05)
        hb.beat(BotState.STOPPED, orders_left=0)  # a clean stop ends the guard
        return await asyncio.wait_for(task, 10), seen, armed

    code, seen, armed = run(go(), 30)
    hb.close()
    assert code == 0
    assert seen == [3, 0]
    now = int(time.time() * 1000)
    assert now < armed <= now + SCHEDULE_AHEAD_MS  # armed for ~5.5 min ahead
    kinds = [r["kind"] for r in _journal(tmp_path)]
    assert (
        kinds.index("guard_act")
        < kinds.index("guard_bot_back")
        < kinds.index("guard_bot_stopped_clean")
    )
    assert "silent" in guard.reason
    assert sim.call(lambda s: s.exchange.account(ACCOUNT).cancel_all_time) == 0  # aborted


def test_a_bot_that_dies_between_looks_is_acted_on_at_once(
    sim: SimThread, tmp_path: Path, run, mortal_bot: Any
) -> None:
    """The bot said it cannot reach the venue (the guard acted and looks again later, further
    apart each time); it then dies: the guard acts for that at once, not at its next look."""
    child, guard, bot, hb = mortal_bot(BotState.UNREACHABLE, max_silence_ms=60_000, poll_ms=20)

    async def go() -> tuple[int, float]:
        task = asyncio.create_task(guard.run())
        # The first act at once, looks 1 s and 3 s later, the next one 7 s after the first:
        # the bot dies ~3.4 s in, just after a look.
        for _ in range(60):
            hb.beat(BotState.UNREACHABLE)
            await asyncio.sleep(0.05)
        _place(sim, bot, 3)  # what a hung send of the bot leaves behind
        for _ in range(8):
            hb.beat(BotState.UNREACHABLE)
            await asyncio.sleep(0.05)
        child.kill()
        child.wait()
        t0 = time.monotonic()
        while _open(sim) and time.monotonic() - t0 < 10:
            await asyncio.sleep(0.02)
        took = time.monotonic() - t0
        return await asyncio.wait_for(task, 20), took

    code, took = run(go(), 40)
    acts = [r for r in _journal(tmp_path) if r["kind"] == "guard_act"]
    assert code == 0 and _open(sim) == 0
    assert acts[0]["reason"] == "bot cannot reach the venue"
    assert acts[-1]["reason"] == "bot process gone"
    assert took < 1.5, took  # well before the next look (~3.5 s later)


def test_a_bot_that_dies_while_the_guard_acts_for_another_reason_is_acted_on_again(
    sim: SimThread, tmp_path: Path, run, mortal_bot: Any
) -> None:
    """The guard acts because the bot cannot reach the venue; between that act's confirmation
    and the guard's next glance the bot comes back, quotes, and dies. What the first act
    confirmed predates the death: the guard acts again for it and leaves the venue flat."""
    child, guard, bot, _hb = mortal_bot(BotState.UNREACHABLE, max_silence_ms=60_000, poll_ms=20)
    real_open = guard._open_orders
    calls = 0

    async def open_then_die() -> int:
        nonlocal calls
        calls += 1
        left = await real_open()
        if calls == 1:  # the first act's confirmation: flat, then the bot quotes and dies
            _place(sim, bot, 3)
            child.kill()
            child.wait()
        return left

    guard._open_orders = open_then_die  # type: ignore[method-assign]
    code = run(guard.run(), 30)
    acts = [r["reason"] for r in _journal(tmp_path) if r["kind"] == "guard_act"]
    assert acts == ["bot cannot reach the venue", "bot process gone"]
    assert code == 0 and _open(sim) == 0


def test_a_rate_limited_renewal_neither_hammers_the_venue_nor_holds_the_watch(
    sim: SimThread, tmp_path: Path, run, mortal_bot: Any
) -> None:
    """Every REST request answered 429 (Retry-After 0.5 s): the schedule's renewal fails, is
    retried 1 s, 2 s, ... after each failure (not at every heartbeat check), and runs beside
    the watch: the bot's death is acted on at once, not after a renewal's wait."""
    child, guard, bot, hb = mortal_bot(BotState.RUNNING, poll_ms=20)
    _place(sim, bot, 2)
    sim.call(lambda s: s.faults.http_status_storm(429, 100_000, retry_after_s=0.5))

    async def go() -> tuple[int, int]:
        task = asyncio.create_task(guard.run())
        for _ in range(70):  # 3.5 s of a live bot under the storm
            hb.beat(BotState.RUNNING)
            await asyncio.sleep(0.05)
        killed = time.monotonic_ns()
        child.kill()
        child.wait()
        while not any(r["kind"] == "guard_act" for r in _journal(tmp_path)):
            assert time.monotonic_ns() - killed < 10**10, "no act"
            await asyncio.sleep(0.01)
        sim.call(lambda s: s.faults.clear())
        return await asyncio.wait_for(task, 20), killed

    code, killed = run(go(), 40)
    recs = _journal(tmp_path)
    act = next(r for r in recs if r["kind"] == "guard_act")
    before = [
        r
        for r in recs
        if r["mono_ns"] < act["mono_ns"] and r["kind"] in ("guard_venue_error", "guard_send_failed")
    ]
    assert 1 <= len(before) <= 3, before  # ~1 s of 429s, then 1 s, then 2 s apart
    assert act["reason"] == "bot process gone"
    assert (act["mono_ns"] - killed) / 1e6 < 300  # not behind a renewal's wait
    assert code == 0 and _open(sim) == 0


def _offline_guard(heartbeat: Path, journal: Path) -> Guard:
    """A guard of this process's pid with no venue behind it (its watching logic only)."""
    return Guard(
        GuardOptions(
            rest_url="http://127.0.0.1:1",
            chain_id=1,
            account_index=1001,
            api_key_index=4,
            markets=(0,),
            heartbeat=heartbeat,
            journal=journal,
            bot_pid=os.getpid(),
            max_silence_ms=1500,
        ),
        ApiKey("0x" + "11" * 40),
    )


def test_guard_why_act() -> None:
    from mmfast.run.heartbeat import Pulse

    g = _offline_guard(Path("/nonexistent"), Path("/nonexistent"))
    now = time.monotonic_ns()
    ok = Pulse(os.getpid(), now - 100_000_000, BotState.RUNNING, -1, (0,))
    assert g.why_act(ok, now) == ""
    assert "silent for 2000 ms" in g.why_act(
        Pulse(os.getpid(), now - 2_000_000_000, BotState.RUNNING, -1, (0,)), now
    )
    assert (
        g.why_act(Pulse(os.getpid(), now, BotState.UNREACHABLE, -1, (0,)), now)
        == "bot cannot reach the venue"
    )
    assert "without confirming" in g.why_act(
        Pulse(os.getpid(), now, BotState.STOPPED, -1, (0,)), now
    )
    # A clean stop is never "silent": the guard leaves then.
    assert g.why_act(Pulse(os.getpid(), now - 10**10, BotState.STOPPED, 0, (0,)), now) == ""
    assert g.why_act(None, now) == "bot heartbeat unreadable"


def test_a_torn_heartbeat_read_keeps_the_last_beat(tmp_path: Path) -> None:
    """A read that finds the bot mid-write every try (a loaded machine, or a SIGSTOP between
    the two halves of a write) is not "unreadable": the last good beat stands and ages, so a
    healthy bot is not flattened for it, and one that stays torn is silent after
    max_silence_ms. Before any good beat: None (unreadable)."""
    import struct

    hb = tmp_path / "hb"
    g = _offline_guard(hb, tmp_path / "j")
    assert g._pulse() is None  # no file yet, no beat ever
    w = HeartbeatWriter(hb, (0,))
    w.beat(BotState.RUNNING)
    first = g._pulse()
    assert first is not None and g.why_act(first, first.stamp_ns) == ""
    with open(hb, "r+b") as f:  # the writer stopped between its two halves: seq odd
        f.seek(8)
        seq = struct.unpack("<Q", f.read(8))[0]
        f.seek(8)
        f.write(struct.pack("<Q", seq + 1))
    torn = g._pulse()
    assert torn is first  # the last good beat, not None
    assert g.why_act(torn, first.stamp_ns + 100_000_000) == ""
    assert "silent for 2000 ms" in g.why_act(torn, first.stamp_ns + 2_000_000_000)
    w.close()


def test_guard_gives_up_when_a_dead_bot_took_the_venue_with_it(tmp_path: Path, run) -> None:
    """The default `mmfast run`: the simulator lives in the bot's process and dies with it.
    The guard finds no venue, says so, and ends (it does not spin forever)."""
    from mmfast._core import signer as S2

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    key, _pub = _key(9)
    sk = bytes.fromhex(key.reveal().removeprefix("0x"))
    native = S2.NativeSigner(sk, chain_id=304, account_index=ACCOUNT, api_key_index=GUARD_KEY)

    class Signer:  # no official self-check: nothing listens at the venue's address
        def sign_now(self, req: Any) -> Any:
            from mmfast.connector.lighter.native_signer import InlineSigner

            return InlineSigner._sign(self, native, req)  # type: ignore[arg-type]

        failed = signed = last_sign_ns = 0

        def _wall_ms(self) -> int:
            return int(time.time() * 1000)

        async def token(self, deadline_s: int) -> str:
            return str(native.auth_token(deadline_s))

        def stop(self) -> None:
            native.close()

    opts = GuardOptions(
        rest_url="http://127.0.0.1:9",
        chain_id=304,
        account_index=ACCOUNT,
        api_key_index=GUARD_KEY,
        markets=(MARKET,),
        heartbeat=tmp_path / "hb",
        journal=tmp_path / "guard.jsonl",
        bot_pid=dead.pid,
        first_beat_s=0.2,
        give_up_s=1.0,
        confirm_interval_s=0.05,
    )
    code = run(Guard(opts, key, signer=Signer()).run(), 30)
    assert code == 1
    kinds = [r["kind"] for r in _journal(tmp_path)]
    assert "guard_act" in kinds and "guard_gave_up" in kinds and kinds[-1] == "guard_stop"
