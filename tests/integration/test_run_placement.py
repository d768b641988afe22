"""``[run] cpu`` and ``[run] busy_poll`` in a real ``mmfast run`` process against ``mmfast sim`` in
its own (started by the test, or the run's own child): the kernel's view of every thread's CPUs
while the bot quotes (``/proc``), the loop polling (its control endpoint's status), the summary,
a clean stop; and the refusals before any I/O of what cannot be applied."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from test_guard_process import MMFAST, Sim, _env, _get, _reap
from test_guard_soak import _free_port

from mmfast.conf import example_path

CPUS = sorted(os.sched_getaffinity(0))


def _config(tmp: Path, run: str, sim: Sim | None = None) -> Path:
    text = example_path("sim").read_text().replace("[run]\n", f"[run]\n{run}\n", 1)
    if sim is not None:
        text = text.replace(
            "[venue]\n", f'[venue]\nrest_url = "{sim.rest}"\nws_url = "{sim.ws}"\n', 1
        )
    path = tmp / "bot.toml"
    path.write_text(text)
    return path


def _cpus_of_threads(pid: int) -> dict[int, str]:
    """Thread id -> its Cpus_allowed_list, as the kernel has it now."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            text = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        m = re.search(r"^Cpus_allowed_list:\s+(\S+)", text, re.M)
        assert m is not None
        out[int(tid)] = m.group(1)
    return out


@pytest.mark.skipif(len(CPUS) < 2, reason="needs two CPUs")
@pytest.mark.parametrize("venue", ["external", "child"])
def test_pinned_busy_polling_bot_quotes_with_its_threads_placed(tmp_path: Path, venue: str) -> None:
    # external: `mmfast sim` started here; child: the run's own simulator process (the
    # default), which busy polling may sit beside as well.
    cpu = CPUS[-1]
    rest = ",".join(map(str, CPUS[:-1]))
    sim = Sim(tmp_path) if venue == "external" else None
    port = _free_port()
    cfg = _config(tmp_path, f"cpu = {cpu}\nbusy_poll = true", sim)
    bot = subprocess.Popen(
        [
            *MMFAST,
            "run",
            "--quiet",
            "--config",
            str(cfg),
            "--journal",
            str(tmp_path / "j.jsonl"),
            "--control-port",
            str(port),
        ],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            assert bot.poll() is None, bot.communicate()[1][-3000:]
            try:
                status = _get(f"{url}/status")
                if status["strategy"]["orders_open"] >= 2 and status["placement"]:
                    break
            except (OSError, KeyError):
                pass
            time.sleep(0.2)
        assert status is not None and status["strategy"]["orders_open"] >= 2
        time.sleep(1.0)  # quoting for a while, polls counted
        threads = _cpus_of_threads(bot.pid)
        status = _get(f"{url}/status")
        place = status["placement"]
        # The loop (the main thread) alone on its CPU; every other thread (signer pool,
        # executors, aiohttp's, the guard link's) on the rest.
        assert threads.pop(bot.pid) == str(cpu)
        assert threads and set(threads.values()) == {_ranges(CPUS[:-1])}, threads
        assert place["cpu"] == cpu and place["other_cpus"] == CPUS[:-1]
        if sim is None:  # the run's simulator child: every thread of it off the loop's CPU
            child = _sim_child(tmp_path / "j.jsonl")
            assert set(_cpus_of_threads(child).values()) == {_ranges(CPUS[:-1])}
        assert place["threads_moved"] >= len(threads) - 1
        # A sleeping loop wakes hundreds of times a second; this one polls far more often.
        assert place["busy_poll"] is True and place["polls_per_s"] > 10_000, place
        # ... and its idle time keeps the compiled step warm ([run] warm_us, 50 us).
        assert place["warms_per_s"] > 100, place
        bot.send_signal(signal.SIGTERM)
        out, err = bot.communicate(timeout=60)
        assert bot.returncode == 0, err[-3000:]
        line = next(x for x in out.splitlines() if x.startswith("placement"))
        assert re.fullmatch(
            rf"placement    loop pinned to CPU {cpu} \(\d+ other threads on CPUs "
            rf"{rest}\), busy poll stopped \(\d+k polls/s, [\d.]+k warm-ups/s\)",
            line,
        ), line
        assert re.search(r"^shutdown     orders left open: 0$", out, re.M), out
        if sim is not None:
            assert sim.open_orders() == []
        else:
            assert re.search(r"^simulator    child process pid \d+  exited 0  ", out, re.M), out
    finally:
        _reap(bot)  # type: ignore[arg-type]
        if sim is not None:
            sim.close()


def _sim_child(journal: Path) -> int:
    """The run's simulator process, from its journal."""
    for line in journal.read_bytes().splitlines():
        rec = json.loads(line)
        if rec["kind"] == "sim_started":
            return int(rec["pid"])
    raise AssertionError("no sim_started in the journal")


def _ranges(cpus: list[int]) -> str:
    """The kernel's list format: 0-2,5."""
    out, start = [], cpus[0]
    for a, b in zip(cpus, [*cpus[1:], None], strict=True):
        if b != a + 1:
            out.append(f"{start}-{a}" if a != start else str(a))
            start = b  # type: ignore[assignment]
    return ",".join(out)


@pytest.mark.parametrize(
    ("run", "message"),
    [
        (f"cpu = {max(CPUS) + 1}", f"cpu = {max(CPUS) + 1}: this process may run on CPUs"),
        ('busy_poll = true\nsim = "thread"', "busy_poll needs the venue in another process"),
    ],
)
def test_placement_that_cannot_apply_is_refused_before_any_io(
    tmp_path: Path, run: str, message: str
) -> None:
    p = subprocess.run(
        [
            *MMFAST,
            "run",
            "--config",
            str(_config(tmp_path, run)),
            "--journal",
            str(tmp_path / "j.jsonl"),
        ],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2, p.stderr
    assert message in p.stderr
    assert p.stdout == ""  # no simulator, no status, no summary
    assert not (tmp_path / "j.jsonl").exists()
