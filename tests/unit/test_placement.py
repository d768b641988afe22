"""``[run] cpu`` and ``[run] busy_poll`` (mmfast.run.placement): the loop thread pinned and the
process's other threads kept off its CPU, as the kernel reports them; a loop that polls instead
of sleeping; the refusals of what cannot be applied."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import uvloop

from mmfast.conf import Config, ConfigError, example_path, parse_config
from mmfast.run.placement import BusyPoll, cpu_problem, pin_loop
from mmfast.run.runner import placement_problem

CPUS = sorted(os.sched_getaffinity(0))
two_cpus = pytest.mark.skipif(len(CPUS) < 2, reason="needs two CPUs")


def _affinity(tid: int) -> set[int]:
    return set(os.sched_getaffinity(tid))


def _in_thread(fn: object) -> object:
    """Run ``fn`` on a fresh thread (pinning it leaves the test's thread alone); its result."""
    box: list[object] = []
    t = threading.Thread(target=lambda: box.append(fn()))  # type: ignore[operator]
    t.start()
    t.join(30)
    return box[0]


@two_cpus
def test_pin_loop_pins_the_calling_thread_and_moves_the_others() -> None:
    cpu = CPUS[-1]
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)  # started before the pinning: full mask
    helper.start()
    try:

        def body() -> dict[str, object]:
            p = pin_loop(cpu)
            seen = {
                "me": _affinity(0),
                "helper": _affinity(helper.native_id or 0),
                "main": _affinity(threading.main_thread().native_id or 0),
            }
            # A thread started after the pinning inherits the loop's CPU: the sweep moves it.
            late = threading.Thread(target=stop.wait)
            late.start()
            seen["late_before"] = _affinity(late.native_id or 0)
            seen["swept"] = p.sweep()
            seen["late_after"] = _affinity(late.native_id or 0)
            seen["describe"] = p.describe()
            p.release()
            seen["me_released"] = _affinity(0)
            seen["helper_released"] = _affinity(helper.native_id or 0)
            stop.set()
            late.join(10)
            return seen

        seen = _in_thread(body)
    finally:
        stop.set()
        helper.join(10)
    assert isinstance(seen, dict)
    rest = set(CPUS) - {cpu}
    assert seen["me"] == {cpu}
    assert seen["helper"] == rest and seen["main"] == rest
    assert seen["late_before"] == {cpu} and seen["swept"] == 1 and seen["late_after"] == rest
    assert f"loop on CPU {cpu}" in str(seen["describe"])
    # Released: every CPU the process had, for the loop and the threads it moved.
    assert seen["me_released"] == set(CPUS) and seen["helper_released"] == set(CPUS)
    assert _affinity(0) == set(CPUS)  # this (main) thread too


@two_cpus
def test_keep_off_moves_another_process_off_the_loops_cpu() -> None:
    cpu = CPUS[-1]
    # Another process with two threads (the run's simulator child stands here), started with
    # every CPU, as the child is before the pinning.
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import threading, sys; "
            "threading.Thread(target=sys.stdin.read).start(); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while len(os.listdir(f"/proc/{child.pid}/task")) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        tids = [int(t) for t in os.listdir(f"/proc/{child.pid}/task")]
        assert len(tids) >= 2 and all(_affinity(t) == set(CPUS) for t in tids)

        def body() -> tuple[int, int, list[set[int]]]:
            p = pin_loop(cpu)
            moved, again = p.keep_off(child.pid), p.keep_off(child.pid)
            seen = [_affinity(t) for t in tids]
            p.release()
            return moved, again, seen

        moved, again, seen = _in_thread(body)  # type: ignore[misc]
        assert moved == len(tids) and again == 0  # the second call finds nothing to move
        assert all(a == set(CPUS) - {cpu} for a in seen)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)

    def gone() -> int:
        p = pin_loop(cpu)
        try:
            return p.keep_off(child.pid)
        finally:
            p.release()

    assert _in_thread(gone) == 0  # the process is gone: nothing to do
    assert _affinity(0) == set(CPUS)


def test_a_cpu_outside_the_process_affinity_is_refused_with_the_allowed_ones() -> None:
    bad = max(CPUS) + 1
    why = cpu_problem(bad)
    assert f"[run] cpu = {bad}" in why and str(CPUS) in why
    assert cpu_problem(CPUS[0]) == ""
    with pytest.raises(RuntimeError, match=rf"cpu = {bad}"):
        pin_loop(bad)
    assert _affinity(0) == set(CPUS)  # nothing was pinned


def _config(**run: Any) -> Config:
    cfg = parse_config(example_path("sim").read_text(), env={})
    return dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, **run))


def test_placement_problem_names_what_cannot_run() -> None:
    assert placement_problem(_config()) == ""
    assert placement_problem(_config(cpu=CPUS[0])) == ""
    why = placement_problem(_config(cpu=max(CPUS) + 1))
    assert f"cpu = {max(CPUS) + 1}" in why
    # Busy polling next to the simulator's thread in the same process would starve it; the
    # simulator as the run's child process (the default) or on its own is another process.
    why = placement_problem(_config(busy_poll=True, sim="thread"))
    assert "busy_poll" in why and "mmfast sim" in why and 'sim = "process"' in why
    assert placement_problem(_config(busy_poll=True)) == ""
    cfg = _config(busy_poll=True, sim="thread")
    ext = dataclasses.replace(
        cfg,
        venue=dataclasses.replace(
            cfg.venue, rest_url="http://127.0.0.1:1", ws_url="ws://127.0.0.1:1/stream"
        ),
    )
    assert placement_problem(ext) == ""


@pytest.mark.parametrize("value", [-1, "1", 1.5])
def test_config_rejects_a_bad_cpu(value: object) -> None:
    text = example_path("sim").read_text().replace("[run]\n", f"[run]\ncpu = {value!r}\n")
    text = text.replace("'", '"')
    with pytest.raises(ConfigError, match=r"run\.cpu"):
        parse_config(text, env={})


async def _count_polls(busy: bool) -> tuple[int, int, bool]:
    """Loop iterations seen in 50 ms of an otherwise idle loop; a timer still fires."""
    bp = BusyPoll()
    fired = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.02, fired.set_result, True)
    if busy:
        bp.start()
    await asyncio.sleep(0.05)
    during = bp.polls
    bp.stop()
    await asyncio.sleep(0.02)
    return during, bp.polls - during, fired.done()


@pytest.mark.parametrize("runner", [uvloop.run, asyncio.run])
def test_busy_poll_keeps_the_loop_polling_until_stopped(runner: object) -> None:
    during, after, fired = runner(_count_polls(True))  # type: ignore[operator]
    # A sleeping loop wakes a handful of times in 50 ms; a polling one thousands of times.
    assert during >= 200, during
    assert after == 0  # stopped: no more polls
    assert fired  # timers and I/O are served between polls
    idle, _, _ = runner(_count_polls(False))  # type: ignore[operator]
    assert idle == 0


async def _warmed(bp: BusyPoll, warmers: list[Any]) -> BusyPoll:
    for fn in warmers:
        bp.add_warmer(fn)
    bp.start()
    await asyncio.sleep(0.05)
    bp.stop()
    return bp


def test_busy_poll_warms_at_most_once_per_interval() -> None:
    """Warm-up rounds run from the poll, spaced by warm_ns on the monotonic clock (10 ms: at
    most 6 in 50 ms, and at least 2), each warmer once per round, in order; none with
    warm_ns 0."""
    stamps: list[tuple[str, int]] = []
    polls: list[BusyPoll] = []
    w1 = lambda: stamps.append(("a", polls[0].last_warm_ns))  # noqa: E731
    w2 = lambda: stamps.append(("b", polls[0].last_warm_ns))  # noqa: E731
    bp = BusyPoll(warm_ns=10_000_000)
    polls.append(bp)
    uvloop.run(_warmed(bp, [w1, w2]))
    assert 2 <= bp.warms <= 6 and len(stamps) == 2 * bp.warms
    assert [k for k, _ in stamps] == ["a", "b"] * bp.warms
    firsts = [t for k, t in stamps if k == "a"]
    assert all(b - a >= 10_000_000 for a, b in itertools.pairwise(firsts))
    assert bp.polls > 10 * bp.warms  # polling went on between them
    off = uvloop.run(_warmed(BusyPoll(), [w1]))
    assert off.warms == 0 and off.warms_per_s() == 0.0


def test_a_warmer_that_raises_is_dropped_and_the_loop_keeps_polling(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    def bad() -> None:
        calls.append("bad")
        raise RuntimeError("boom")

    bp = uvloop.run(_warmed(BusyPoll(warm_ns=1_000_000), [bad, lambda: calls.append("good")]))
    assert calls.count("bad") == 1 and calls.count("good") >= 5
    assert bp.polls >= 200
    assert [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()] == [
        f"busy poll: warm-up {bad!r} dropped: RuntimeError: boom"
    ]
