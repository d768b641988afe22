"""The run's journal after ``kill -9``: no torn line, and at most ~100 ms of events missing.
A child process writes an event every 2 ms through ``JsonlJournal`` (started on its loop, as
the run does); it is killed at seeded random moments; the file is read back."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmfast.run.journal import JsonlJournal

CHILD = r"""
import asyncio, sys, time
from mmfast.run.journal import JsonlJournal

async def main() -> None:
    j = JsonlJournal(sys.argv[1])
    j.start()
    i = 0
    print("ready", flush=True)
    while True:
        j.write("event", i=i, text="x" * (i % 300))  # lines of varied length
        i += 1
        await asyncio.sleep(0.002)

asyncio.run(main())
"""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_loses_at_most_100_ms_and_tears_no_line(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    path = tmp_path / "j.jsonl"
    p = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.3, 1.2))
        killed_ns = time.monotonic_ns()  # CLOCK_MONOTONIC, the child's mono_ns clock
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    raw = path.read_bytes()
    assert raw.endswith(b"\n")  # whole lines only
    recs = [json.loads(x) for x in raw.splitlines()]  # each one parses
    assert [r["i"] for r in recs] == list(range(len(recs)))  # none lost in between
    missing_ms = (killed_ns - recs[-1]["mono_ns"]) / 1e6
    print(f"seed {seed}: {len(recs)} lines, the last {missing_ms:.1f} ms before the kill")
    assert missing_ms <= 100.0


def test_close_writes_and_syncs_everything(tmp_path: Path) -> None:
    j = JsonlJournal(tmp_path / "j.jsonl")
    for i in range(3):
        j.write("event", i=i)
    assert (tmp_path / "j.jsonl").read_bytes() == b""  # kept whole until the first flush
    j.close()
    assert [json.loads(x)["i"] for x in (tmp_path / "j.jsonl").read_bytes().splitlines()] == [
        0,
        1,
        2,
    ]
    assert j.fsyncs == 1 and oct((tmp_path / "j.jsonl").stat().st_mode & 0o777) == "0o600"
    j.write("late", i=9)  # after close: dropped, no error
    assert j.lines == 3
