"""Client order id allocator: durable blocks, restart continuity, crashes, lock, exhaustion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mmfast.connector.lighter import coi as coi_mod
from mmfast.connector.lighter.coi import (
    CoiAllocator,
    CoiExhaustedError,
    CoiLockedError,
    CoiStateError,
    default_state_dir,
)
from mmfast.core.types import MAX_CLIENT_ORDER_INDEX


def alloc(tmp_path: Path, block: int = 10, **kw) -> CoiAllocator:
    return CoiAllocator("sim", 1001, 5, state_dir=tmp_path, block_size=block, **kw)


def test_default_state_dir_never_cwd(monkeypatch) -> None:
    assert default_state_dir({"XDG_STATE_HOME": "/x/state"}) == Path("/x/state/mmfast")
    home = Path.home()
    assert default_state_dir({}) == home / ".local/state/mmfast"
    assert default_state_dir({"XDG_STATE_HOME": "relative"}) == home / ".local/state/mmfast"
    with pytest.raises(ValueError, match="absolute"):
        CoiAllocator("sim", 1, 5, state_dir="relative/dir")


def test_ids_unique_increasing_and_mark_durable_before_use(tmp_path, monkeypatch) -> None:
    writes: list[int] = []
    real = coi_mod.durable_write

    def spy(path, data):
        real(path, data)
        writes.append(json.loads(data)["high_water"])

    monkeypatch.setattr(coi_mod, "durable_write", spy)
    with alloc(tmp_path, block=7) as a:
        ids = []
        for _ in range(30):
            i = a.next()
            # Every id handed out is covered by the mark already on disk.
            on_disk = json.loads(a.path.read_bytes())["high_water"]
            assert i <= on_disk
            ids.append(i)
    assert ids == list(range(1, 31))
    assert writes == [7, 14, 21, 28, 35]
    assert os.stat(a.path).st_mode & 0o077 == 0
    nested = tmp_path / "a" / "b"
    with CoiAllocator("sim", 1, 5, state_dir=nested) as b:
        assert b.next() == 1
    assert os.stat(nested).st_mode & 0o777 == 0o700


def test_restart_continues_above_mark(tmp_path) -> None:
    seen: set[int] = set()
    last = 0
    for run in range(5):
        with alloc(tmp_path, block=4) as a:
            for _ in range(run + 3):  # some runs end mid-block
                i = a.next()
                assert i not in seen and i > last
                seen.add(i)
                last = i
    assert len(seen) == sum(r + 3 for r in range(5))


def test_crash_between_reserve_and_use_skips_block(tmp_path) -> None:
    # A child reserves a block, uses one id, and dies without closing (os._exit).
    code = textwrap.dedent(f"""
        import os, sys
        from mmfast.connector.lighter.coi import CoiAllocator
        a = CoiAllocator("sim", 1001, 5, state_dir={str(tmp_path)!r}, block_size=100).open()
        print(a.next(), flush=True)
        os._exit(9)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 9, out.stderr
    used = int(out.stdout)
    with alloc(tmp_path, block=100) as a:
        nxt = a.next()
    assert used == 1 and nxt == 101  # the crashed block's unused ids are never handed out


def test_take_batch(tmp_path) -> None:
    with alloc(tmp_path, block=10) as a:
        assert a.next() == 1
        r = a.take(16)  # bigger than a block: one reservation covers it
        assert list(r) == list(range(11, 27))
        assert a.high_water == 26
        assert a.next() == 27
        with pytest.raises(ValueError):
            a.take(0)


def test_second_allocator_refused_in_process_and_other_process(tmp_path) -> None:
    a = alloc(tmp_path).open()
    try:
        with pytest.raises(CoiLockedError, match="locked"):
            alloc(tmp_path).open()
        code = textwrap.dedent(f"""
            from mmfast.connector.lighter.coi import CoiAllocator, CoiLockedError
            try:
                CoiAllocator("sim", 1001, 5, state_dir={str(tmp_path)!r}).open()
            except CoiLockedError as e:
                print("LOCKED", e)
        """)
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        assert out.stdout.startswith("LOCKED"), out.stderr
        # Another key of the same account has its own file and lock.
        CoiAllocator("sim", 1001, 6, state_dir=tmp_path).open().close()
    finally:
        a.close()
    alloc(tmp_path).open().close()  # released


_ID = '"environment": "sim", "account_index": 1001, "api_key_index": 5'


@pytest.mark.parametrize(
    "content_text",
    [
        "",
        "{not json",
        "[]",
        '{"version": 2, ' + _ID + ', "high_water": 3}',
        '{"version": 1, "environment": "main", "account_index": 1001, "api_key_index": 5,'
        ' "high_water": 3}',
        '{"version": 1, ' + _ID + ', "high_water": -1}',
        '{"version": 1, ' + _ID + ', "high_water": "3"}',
        '{"version": 1, ' + _ID + ', "high_water": 281474976710656}',
        '{"version": 1, ' + _ID + ', "high_water": true}',
        '{"version": 1, ' + _ID + "}",
    ],
)
def test_corrupt_state_is_error_not_reset(tmp_path, content_text: str) -> None:
    content = content_text.encode()
    a = alloc(tmp_path)
    a.path.parent.mkdir(parents=True, exist_ok=True)
    a.path.write_bytes(content)
    with pytest.raises(CoiStateError):
        a.open()
    assert a.path.read_bytes() == content  # untouched
    assert not a.is_open
    alloc(tmp_path)  # the lock was released: a fresh allocator can try again
    with pytest.raises(CoiStateError):
        alloc(tmp_path).open()


def _seed_mark(tmp_path: Path, mark: int) -> None:
    doc = {
        "version": 1,
        "environment": "sim",
        "account_index": 1001,
        "api_key_index": 5,
        "high_water": mark,
    }
    (tmp_path / "coi-sim-1001-5.json").write_bytes(json.dumps(doc).encode())


def test_exhaustion_near_2_48(tmp_path) -> None:
    _seed_mark(tmp_path, MAX_CLIENT_ORDER_INDEX - 5)
    with alloc(tmp_path, block=4) as a:
        got = [a.next() for _ in range(5)]
        assert got == list(range(MAX_CLIENT_ORDER_INDEX - 4, MAX_CLIENT_ORDER_INDEX + 1))
        assert max(got) == MAX_CLIENT_ORDER_INDEX < 2**48
        with pytest.raises(CoiExhaustedError):
            a.next()
    _seed_mark(tmp_path, MAX_CLIENT_ORDER_INDEX - 2)
    with alloc(tmp_path, block=4) as a, pytest.raises(CoiExhaustedError):
        a.take(3)
    with alloc(tmp_path, block=4) as a:
        assert list(a.take(2)) == [MAX_CLIENT_ORDER_INDEX - 1, MAX_CLIENT_ORDER_INDEX]


def test_bad_arguments(tmp_path) -> None:
    for kw in (
        {"environment": "a/b"},
        {"account_index": -1},
        {"api_key_index": 255},
        {"block_size": 0},
        {"api_key_index": True},
    ):
        args = {"environment": "sim", "account_index": 1, "api_key_index": 5, **kw}
        block = args.pop("block_size", 10)
        with pytest.raises(ValueError):
            CoiAllocator(**args, state_dir=tmp_path, block_size=block)
    a = alloc(tmp_path)
    with pytest.raises(Exception, match="not open"):
        a.next()
    with a:
        assert a.next() == 1
    with pytest.raises(Exception, match="not open"):
        a.next()
