"""NonceManager skip-nonce recovery (``skip_lost``), driven by hand against a model of the
venue's nonce rule with the skip-nonce attribute."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque

from mmfast.connector.lighter.nonces import NonceManager, NonceState


class Venue:
    """Exactly the next nonce is accepted (consumed, +1); a skip-nonce tx also at any higher
    nonce (the key's next nonce jumps past it); a lower one, or a higher one without the
    attribute, is a 21104; an API-level reject consumes nothing."""

    def __init__(self, next_nonce: int = 0) -> None:
        self.next = next_nonce
        self.accepted: list[tuple[object, int, bool]] = []
        self.fetches = 0
        self.codes: list[int] = []

    async def fetch(self) -> int:
        self.fetches += 1
        await asyncio.sleep(0)
        return self.next

    def handle(self, item: object, nonce: int, skip: bool, reject: int | None = None) -> int:
        if nonce != self.next and not (skip and nonce > self.next):
            self.codes.append(21104)
            return 21104
        if reject is not None:
            self.codes.append(reject)
            return reject
        self.accepted.append((item, nonce, skip))
        self.next = nonce + 1
        return 200


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class Rig:
    def __init__(self, venue: Venue, skip_lost: bool = True) -> None:
        self.venue = venue
        self.sent: deque[tuple[object, int, bool]] = deque()
        self.mgr: NonceManager[object] = NonceManager(
            venue.fetch,
            lambda i, n: self.sent.append((i, n, self.mgr.skip_due(n))),
            skip_lost=skip_lost,
        )

    async def start(self) -> None:
        self.mgr.require_refresh()
        await settle()
        assert self.mgr.state is NonceState.READY

    def deliver(self, n: int, inject: dict[object, int] | None = None) -> None:
        for _ in range(min(n, len(self.sent))):
            item, nonce, skip = self.sent.popleft()
            code = self.venue.handle(item, nonce, skip, (inject or {}).pop(item, None))
            if code == 200:
                self.mgr.accepted(nonce)
            else:
                self.mgr.rejected(nonce, code)

    async def drain(self, inject: dict[object, int] | None = None) -> None:
        while self.sent or self.mgr.held or self.mgr.in_flight:
            self.deliver(len(self.sent), inject)
            await settle()


def test_10k_queued_reject_in_the_middle_ends_with_one_skip_and_no_fetch() -> None:
    async def body() -> tuple[Venue, Rig]:
        venue = Venue(next_nonce=1000)
        rig = Rig(venue)
        await rig.start()
        inject = {5000: 21739}  # an API-level reject (margin): not consumed, still wanted
        pos = 0
        while pos < 10_000 or rig.sent or rig.mgr.held or rig.mgr.in_flight:
            for _ in range(300):  # a deep pipeline: ~300 txs behind the reject get 21104
                if pos < 10_000:
                    rig.mgr.submit(pos)
                    pos += 1
            rig.deliver(200, inject)
            await settle()
        return venue, rig

    venue, rig = asyncio.run(body())
    items = [i for i, _, _ in venue.accepted]
    nonces = [n for _, n, _ in venue.accepted]
    assert sorted(items) == list(range(10_000)) and len(set(items)) == 10_000
    assert all(b > a for a, b in itertools.pairwise(nonces))
    assert venue.fetches == 1 and rig.mgr.refreshes == 1  # the start only
    assert rig.mgr.skips == 1
    skipped = [(i, n) for i, n, s in venue.accepted if s]
    assert len(skipped) == 1 and skipped[0][0] == 5000  # the rejected tx, re-signed, first
    # Exactly the nonces of the block (the reject and the 21104s behind it) are jumped over.
    gap = set(range(nonces[0], nonces[-1] + 1)) - set(nonces)
    assert len(gap) == venue.codes.count(21104) + 1 == len(venue.codes)
    assert min(gap) == 6000 and skipped[0][1] == max(gap) + 1


def test_default_is_the_fetch() -> None:
    async def body() -> tuple[Venue, Rig]:
        venue = Venue()
        rig = Rig(venue, skip_lost=False)
        await rig.start()
        for i in range(5):
            rig.mgr.submit(i)
        await rig.drain({1: 21739})
        return venue, rig

    venue, rig = asyncio.run(body())
    assert venue.fetches == 2 and rig.mgr.skips == 0
    assert [n for _, n, _ in venue.accepted] == [0, 1, 2, 3, 4]
    assert not any(s for _, _, s in venue.accepted)


def test_unknown_tx_in_the_block_means_a_fetch() -> None:
    async def body() -> tuple[Venue, Rig]:
        venue = Venue()
        rig = Rig(venue)
        await rig.start()
        for i in range(4):
            rig.mgr.submit(i)
        _item, n0, _ = rig.sent.popleft()  # tx 0: no answer (it may still land)
        rig.mgr.unknown(n0)
        rig.deliver(3)  # 1..3: 21104 (the venue never saw 0 here)
        await settle()
        return venue, rig

    venue, rig = asyncio.run(body())
    assert rig.mgr.skips == 0 and venue.fetches == 2
    assert rig.mgr.state is NonceState.READY and rig.mgr.unknown_count == 0


def test_reconnect_means_a_fetch() -> None:
    async def body() -> tuple[Venue, Rig]:
        venue = Venue()
        rig = Rig(venue)
        await rig.start()
        rig.mgr.submit("a")
        _i, n, _ = rig.sent.popleft()
        rig.mgr.rejected(n, None)  # held back unsent at a reconnect
        rig.mgr.require_refresh()
        await settle()
        return venue, rig

    venue, rig = asyncio.run(body())
    assert rig.mgr.skips == 0 and venue.fetches == 2
    assert [(i, s) for i, _, s in rig.sent] == [("a", False)]


def test_skip_refused_with_21104_falls_back_to_the_fetch() -> None:
    # Another sender on the key moved the venue's nonce past ours (the 21104 "too low" case):
    # the skip tx cannot jump backwards, so the next refresh asks the venue.
    async def body() -> tuple[Venue, Rig]:
        venue = Venue()
        rig = Rig(venue)
        await rig.start()
        venue.next = 50
        rig.mgr.submit("x")
        rig.deliver(1)  # 21104: blocks, then a skip at nonce 1
        await settle()
        assert rig.mgr.skips == 1 and venue.fetches == 1
        rig.deliver(1)  # the skip tx: 21104 again (50 > 1)
        await settle()
        assert venue.fetches == 2  # a fetch this time
        await rig.drain()
        # One good skip later stays allowed: the failure is cleared by the fetch.
        rig.mgr.submit("y")
        rig.deliver(1, {"y": 21739})
        await settle()
        await rig.drain()
        return venue, rig

    venue, rig = asyncio.run(body())
    assert [(i, n) for i, n, _ in venue.accepted] == [("x", 50), ("y", 52)]
    assert rig.mgr.skips == 2 and venue.fetches == 2


def test_the_skip_nonce_is_not_offered_to_a_compiled_step() -> None:
    async def body() -> Rig:
        venue = Venue()
        rig = Rig(venue, skip_lost=True)
        await rig.start()
        assert rig.mgr.room.nonce_ready
        rig.mgr.submit("a")
        rig.deliver(1, {"a": 21739})
        await settle()
        return rig

    rig = asyncio.run(body())
    # The rejected tx is still wanted (the default): re-signed first, with the skip.
    assert [(i, n, s) for i, n, s in rig.sent] == [("a", 1, True)]
    assert rig.mgr.room.nonce_ready


def test_skip_due_with_nothing_to_release_keeps_the_room_closed() -> None:
    async def body() -> Rig:
        venue = Venue()
        rig = Rig(venue)
        rig.mgr = NonceManager(
            venue.fetch,
            lambda i, n: rig.sent.append((i, n, rig.mgr.skip_due(n))),
            still_wanted=lambda item, code: False,
            skip_lost=True,
        )
        await rig.start()
        rig.mgr.submit("a")
        rig.deliver(1, {"a": 21739})
        await settle()
        return rig

    rig = asyncio.run(body())
    assert rig.mgr.state is NonceState.READY and rig.mgr.skips == 1
    assert not rig.mgr.room.nonce_ready  # a compiled step would sign without the attribute
    assert rig.mgr.submit("b") == 1 and rig.sent[-1] == ("b", 1, True)
    assert rig.mgr.room.nonce_ready and not rig.mgr.skip_due(2)
