"""Nonce protocol state machine, driven by hand against a small model of the venue's rule."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import deque

import pytest

from mmfast.connector.lighter.nonces import NonceError, NonceManager, NonceState


class Venue:
    """Lighter's nonce rule: a tx is accepted only at exactly the next nonce (consumed, +1);
    an API-level reject consumes nothing; a wrong nonce is a 21104."""

    def __init__(self, next_nonce: int = 0) -> None:
        self.next = next_nonce
        self.accepted: list[tuple[object, int]] = []
        self.fetches = 0
        self.codes: list[int] = []

    async def fetch(self) -> int:
        self.fetches += 1
        await asyncio.sleep(0)
        return self.next

    def handle(self, item: object, nonce: int, reject_code: int | None = None) -> int:
        if nonce != self.next:
            self.codes.append(21104)
            return 21104
        if reject_code is not None:
            self.codes.append(reject_code)
            return reject_code
        self.accepted.append((item, nonce))
        self.next += 1
        return 200


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def make(venue: Venue, **kw):
    sent: deque[tuple[object, int]] = deque()
    mgr: NonceManager[object] = NonceManager(venue.fetch, lambda i, n: sent.append((i, n)), **kw)
    return mgr, sent


def deliver(mgr: NonceManager, venue: Venue, sent: deque, n: int, inject: dict | None = None):
    """Send up to n dispatched txs in order and feed the venue's answers back."""
    for _ in range(min(n, len(sent))):
        item, nonce = sent.popleft()
        code = venue.handle(item, nonce, (inject or {}).pop(item, None))
        if code == 200:
            mgr.accepted(nonce)
        else:
            mgr.rejected(nonce, code)


def test_10k_queued_with_reject_in_the_middle() -> None:
    async def body():
        venue = Venue(next_nonce=1000)
        mgr, sent = make(venue)
        mgr.require_refresh()
        await settle()
        assert mgr.state is NonceState.READY and venue.fetches == 1
        items = list(range(10_000))
        inject = {5000: 21739}  # an API-level reject (margin): not consumed, still wanted
        pos = 0
        while pos < len(items) or sent or mgr.held or mgr.in_flight:
            for _ in range(300):  # queue faster than the venue answers: a deep pipeline
                if pos < len(items):
                    mgr.submit(items[pos])
                    pos += 1
            deliver(mgr, venue, sent, 200, inject)
            await settle()
        return venue, mgr

    venue, mgr = asyncio.run(body())
    got_items = [i for i, _ in venue.accepted]
    nonces = [n for _, n in venue.accepted]
    assert sorted(got_items) == list(range(10_000))  # each exactly once: 0 duplicates
    assert len(set(got_items)) == 10_000
    assert all(b > a for a, b in itertools.pairwise(nonces))  # strictly increasing
    assert nonces == list(range(1000, 11_000))  # no nonce lost either
    assert venue.fetches == 2 and mgr.refreshes == 2  # start + exactly one after the reject
    assert mgr.blocks == 1
    assert venue.codes.count(21739) == 1
    assert venue.codes.count(21104) > 0  # the in-flight tail behind the reject did fail
    after = venue.codes[venue.codes.index(21739) :]
    assert len(after) == venue.codes.count(21104) + 1  # every 21104 came from that one block


def test_blocked_holds_new_items_and_resigns_same_item_new_nonce() -> None:
    async def body():
        venue = Venue(next_nonce=10)
        mgr, sent = make(venue)
        mgr.require_refresh()
        await settle()
        for name in "abcd":
            mgr.submit(name)
        assert [n for _, n in sent] == [10, 11, 12, 13]
        deliver(mgr, venue, sent, 1)  # a accepted
        deliver(mgr, venue, sent, 1, {"b": 21120})  # b rejected at API level
        assert mgr.state is NonceState.BLOCKED and not mgr.can_send
        assert mgr.submit("e") is None and mgr.held == 1
        await settle()
        assert venue.fetches == 1  # c, d still in flight: no refresh yet
        deliver(mgr, venue, sent, 2)  # c, d: 21104
        assert venue.codes == [21120, 21104, 21104]
        await settle()
        assert venue.fetches == 2 and mgr.state is NonceState.READY
        assert list(sent) == [("b", 11), ("c", 12), ("d", 13), ("e", 14)]
        deliver(mgr, venue, sent, 4)
        return venue

    venue = asyncio.run(body())
    assert venue.accepted == [("a", 10), ("b", 11), ("c", 12), ("d", 13), ("e", 14)]


def test_still_wanted_filters_resigns() -> None:
    async def body():
        venue = Venue()
        seen: list[tuple[object, int | None]] = []

        def wanted(item, code):
            seen.append((item, code))
            return item != "c"  # c was cancelled meanwhile

        mgr, sent = make(venue, still_wanted=wanted)
        mgr.require_refresh()
        await settle()
        for name in "abcd":
            mgr.submit(name)
        deliver(mgr, venue, sent, 4, {"a": 21739})
        await settle()
        assert seen == [("a", 21739), ("b", 21104), ("c", 21104), ("d", 21104)]
        deliver(mgr, venue, sent, 10)
        return venue

    assert [i for i, _ in asyncio.run(body()).accepted] == ["a", "b", "d"]


def test_rejected_without_retry_and_signing_failure() -> None:
    async def body():
        venue = Venue(5)
        mgr, sent = make(venue)
        mgr.require_refresh()
        await settle()
        mgr.submit("x")
        mgr.submit("y")
        _, nonce = sent.popleft()
        assert mgr.rejected(nonce, None, retry=False) == "x"  # signer refused: not sent
        assert mgr.state is NonceState.BLOCKED
        deliver(mgr, venue, sent, 1)  # y: 21104 (gap at 5)
        await settle()
        deliver(mgr, venue, sent, 5)
        return venue

    assert asyncio.run(body()).accepted == [("y", 5)]


def test_require_refresh_after_reconnect_blocks_sends_and_settles_unknowns() -> None:
    async def body():
        venue = Venue(100)
        settled: list[tuple[object, int, bool]] = []
        mgr, sent = make(venue, on_unknown_settled=lambda i, n, c: settled.append((i, n, c)))
        mgr.require_refresh()
        await settle()
        for name in "abc":
            mgr.submit(name)
        deliver(mgr, venue, sent, 1)  # a: accepted and acked
        # b reached the venue but its ack was lost; then the socket dropped before c went out.
        item, nonce = sent.popleft()
        assert venue.handle(item, nonce) == 200
        mgr.unknown(nonce)
        mgr.require_refresh()
        assert not mgr.can_send and mgr.state is NonceState.NEEDS_REFRESH
        # c was signed but not sent: hold it back (not consumed).
        item, nonce = sent.popleft()
        mgr.rejected(nonce, None)
        mgr.submit("d")
        assert mgr.held == 1
        await settle()
        assert mgr.can_send and venue.fetches == 2
        assert settled == [("b", 101, True)]  # nextNonce passed it: consumed, never resent
        deliver(mgr, venue, sent, 10)
        return venue

    venue = asyncio.run(body())
    assert venue.accepted == [("a", 100), ("b", 101), ("c", 102), ("d", 103)]
    assert venue.codes == []  # 0 x 21104


def test_unknown_not_consumed_and_settle_unknown() -> None:
    async def body():
        venue = Venue(0)
        settled: list[tuple[object, int, bool]] = []
        mgr, sent = make(venue, on_unknown_settled=lambda i, n, c: settled.append((i, n, c)))
        mgr.require_refresh()
        await settle()
        mgr.submit("lost")
        mgr.submit("other")
        _, n0 = sent.popleft()
        mgr.unknown(n0)  # never arrived
        assert mgr.state is NonceState.READY  # unknown alone does not block
        _, n1 = sent.popleft()
        mgr.unknown(n1)
        assert mgr.settle_unknown(n1) == "other"  # tx lookup answered for this one
        assert mgr.unknown_count == 1
        mgr.require_refresh()
        await settle()
        return settled

    assert asyncio.run(body()) == [("lost", 0, False)]


def test_refresh_failure_then_retry() -> None:
    async def body():
        calls = 0
        failures: list[BaseException] = []

        async def flaky() -> int:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise ConnectionError("REST down")
            if calls == 2:
                return -3  # nonsense from the venue
            return 7

        sent: list[tuple[object, int]] = []
        mgr: NonceManager[str] = NonceManager(
            flaky, lambda i, n: sent.append((i, n)), on_refresh_failed=failures.append
        )
        assert mgr.submit("a") is None  # held; starts the first refresh
        await settle()
        assert mgr.state is NonceState.NEEDS_REFRESH and isinstance(failures[0], ConnectionError)
        assert mgr.retry_refresh()
        await settle()
        assert isinstance(failures[1], NonceError) and mgr.refresh_failures == 2
        assert mgr.retry_refresh()
        assert not mgr.retry_refresh()  # already refreshing
        await settle()
        return mgr, sent

    mgr, sent = asyncio.run(body())
    assert sent == [("a", 7)] and mgr.next_nonce == 8 and mgr.refreshes == 1


def test_stray_resolutions_ignored() -> None:
    async def body():
        venue = Venue(0)
        mgr, _ = make(venue)
        mgr.require_refresh()
        await settle()
        mgr.submit("a")
        assert mgr.accepted(99) is None and mgr.rejected(98) is None and mgr.unknown(97) is None
        assert mgr.stray == 3 and mgr.state is NonceState.READY and mgr.in_flight == 1
        assert mgr.in_flight_items() == [(0, "a")]
        mgr.close()
        return repr(mgr)

    assert "READY" in asyncio.run(body())


@pytest.mark.parametrize("seed", range(12))
def test_random_faults_no_duplicate_and_contiguous(seed: int) -> None:
    """Random pipelining, API rejects, lost acks and reconnects: each item executes once,
    nonces stay contiguous, and every block costs exactly one refresh."""
    rng = random.Random(seed)

    async def body():
        venue = Venue(rng.randrange(0, 1 << 20))
        settled: list[tuple[object, int, bool]] = []
        mgr, sent = make(venue, on_unknown_settled=lambda i, n, c: settled.append((i, n, c)))
        mgr.require_refresh()
        await settle()
        total = 600
        pos = 0
        executed: list[object] = []
        reconnects = 0
        while pos < total or sent or mgr.held or mgr.in_flight:
            for _ in range(rng.randrange(0, 20)):
                if pos < total:
                    mgr.submit(pos)
                    pos += 1
            for _ in range(rng.randrange(0, 15)):
                if not sent:
                    break
                item, nonce = sent.popleft()
                code = venue.handle(item, nonce, 21739 if rng.random() < 0.02 else None)
                if code == 200:
                    executed.append(item)
                    if rng.random() < 0.03:
                        mgr.unknown(nonce)  # ack lost
                    else:
                        mgr.accepted(nonce)
                else:
                    mgr.rejected(nonce, code)
            if rng.random() < 0.02:
                reconnects += 1
                # Signed but unsent txs are held back; whatever else is in flight has no answer.
                while sent:
                    _, nonce = sent.popleft()
                    mgr.rejected(nonce, None)
                for nonce, _ in mgr.in_flight_items():
                    mgr.unknown(nonce)
                mgr.require_refresh()
            await settle()
        return venue, executed, settled, mgr, reconnects

    venue, executed, settled, mgr, reconnects = asyncio.run(body())
    assert sorted(executed) == list(range(600))  # every item once, none twice
    nonces = [n for _, n in venue.accepted]
    assert nonces == list(range(nonces[0], nonces[0] + 600))
    assert all(c for _, _, c in settled)  # lost acks were all consumed, never re-sent
    assert mgr.refreshes == venue.fetches  # no failed fetches here
    # One refresh at start, then at most one per block and one per reconnect.
    assert mgr.refreshes <= 1 + mgr.blocks + reconnects


def test_the_room_holds_the_counter_and_what_a_compiled_step_reads() -> None:
    async def go() -> None:
        venue = Venue(10)
        mgr, _sent = make(venue)
        room = mgr.room
        assert room.next_nonce == -1 and not room.nonce_ready
        mgr.require_refresh()
        await settle()
        assert mgr.state is NonceState.READY and room.next_nonce == 10 and room.nonce_ready
        assert mgr.submit("a") == 10 and room.pending == 1 and room.next_nonce == 11
        # A compiled step takes 11 from the room itself, then the tx is adopted.
        room.next_nonce += 1
        mgr.adopt(11, "direct")
        assert room.pending == 2 and mgr.submit("b") == 12
        with pytest.raises(NonceError):
            mgr.adopt(11, "again")  # already in flight
        with pytest.raises(NonceError):
            mgr.adopt(20, "never taken")
        # Taken and not signed: given back, the next submit gets it.
        room.next_nonce += 1
        with pytest.raises(NonceError):
            mgr.give_back(12)  # not the last one taken
        mgr.give_back(13)
        assert mgr.submit("c") == 13
        # A reject blocks: the room says not ready until the refresh.
        mgr.rejected(10, 21104)
        assert mgr.state is NonceState.BLOCKED and not room.nonce_ready
        with pytest.raises(NonceError):
            room.next_nonce += 1
            mgr.adopt(room.next_nonce - 1, "while blocked")

    asyncio.run(go())
