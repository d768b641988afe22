"""Process-level soak: ``mmfast sim`` and ``mmfast run`` as separate processes at a time scale,
the bot quoting against the simulator's flow with WebSocket drops now and then.

Every 10 s of simulated time: resident memory, open descriptors and threads of both processes
(``/proc``); at the end the event-loop lag of both over the whole run (each measures how late
a 100 ms timer runs). Throughout: the bot's book (its control endpoint's ``/book``) against
the simulator's at the same nonce (the simulator keeps its recent books: ``--book-history``);
every snapshot episode (the bot's book between two snapshots) seen must match, every time.

Memory growth is the slope of RSS over simulated time after the warm-up (the first quarter),
per simulated hour: the time scale compresses the events of an hour into minutes, so this is
the growth an hour of trading brings. The normal suite runs 12 simulated minutes (1.5 real);
``-m soak`` runs 64 (8 real) against the targets (bot < 10 MB/h, simulator < 20 MB/h,
descriptors flat, loop lag p99 < 5 ms). ``MMFAST_SOAK_SEED`` replays a seed.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from test_guard_process import MMFAST, Sim, _env, _get, _reap
from test_guard_soak import _free_port, _post

SCALE = 8.0
SAMPLE_SIM_S = 10.0


def _proc(pid: int) -> tuple[float, int, int]:
    """(RSS MB, open descriptors, threads) of a live process."""
    text = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(re.search(r"^VmRSS:\s+(\d+) kB", text, re.M).group(1))  # type: ignore[union-attr]
    threads = int(re.search(r"^Threads:\s+(\d+)", text, re.M).group(1))  # type: ignore[union-attr]
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss_kb / 1024, fds, threads


def _slope_per_hour(ts_s: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over ts (seconds), per hour."""
    n = len(ts_s)
    mt, my = sum(ts_s) / n, sum(ys) / n
    var = sum((t - mt) ** 2 for t in ts_s)
    return 3600 * sum((t - mt) * (y - my) for t, y in zip(ts_s, ys, strict=True)) / var


@dataclass
class Figures:
    seed: int
    sim_s: list[float] = field(default_factory=list)
    bot: list[tuple[float, int, int]] = field(default_factory=list)
    venue: list[tuple[float, int, int]] = field(default_factory=list)
    episodes: dict[int, int] = field(default_factory=dict)  # bot snapshot count -> matches
    mismatches: list[str] = field(default_factory=list)
    unaligned: int = 0  # oracle reads whose nonce left the simulator's window first
    drops: int = 0
    bot_loop: dict[str, Any] = field(default_factory=dict)
    sim_loop: dict[str, Any] = field(default_factory=dict)
    fills: int = 0

    def after_warmup(
        self, series: list[tuple[float, int, int]]
    ) -> tuple[list[float], list[tuple[float, int, int]]]:
        k = len(self.sim_s) // 4
        return self.sim_s[k:], series[k:]

    def growth_mb_h(self, series: list[tuple[float, int, int]]) -> float:
        ts, xs = self.after_warmup(series)
        return _slope_per_hour(ts, [x[0] for x in xs])

    def spread(self, series: list[tuple[float, int, int]], i: int) -> int:
        xs = [x[i] for x in self.after_warmup(series)[1]]
        return max(xs) - min(xs)

    def report(self) -> str:
        b, v = self.bot, self.venue
        return (
            f"seed {self.seed}: {self.sim_s[-1] / 60:.0f} simulated min, {len(self.sim_s)} "
            f"samples; bot RSS {b[0][0]:.0f} -> {b[-1][0]:.0f} MB (growth "
            f"{self.growth_mb_h(b):+.1f} MB/h after warm-up), fds {b[0][1]}-"
            f"{max(x[1] for x in b)} (spread after warm-up {self.spread(b, 1)}), threads "
            f"{b[-1][2]}; simulator RSS {v[0][0]:.0f} -> {v[-1][0]:.0f} MB (growth "
            f"{self.growth_mb_h(v):+.1f} MB/h), fds spread {self.spread(v, 1)}, threads "
            f"{v[-1][2]}; loop lag p99 bot {self.bot_loop.get('lag_p99_ms')} ms (max "
            f"{self.bot_loop.get('lag_max_ms')}), simulator {self.sim_loop.get('lag_p99_ms')}"
            f" ms (max {self.sim_loop.get('lag_max_ms')}); book oracle: "
            f"{len(self.episodes)} episodes, {sum(self.episodes.values())} aligned "
            f"comparisons, {len(self.mismatches)} mismatches, {self.unaligned} reads out of "
            f"the window; {self.drops} drops; {self.fills} fills"
        )


def _oracle(fig: Figures, bot_url: str, sim: Sim) -> None:
    """The bot's book against the simulator's book at the bot's nonce."""
    book = _get(f"{bot_url}/book")
    if not book["in_sync"]:
        return
    try:
        ref = _get(f"{sim.rest}/_sim/truth/book?market=0&nonce={book['nonce']}")["result"]
    except urllib.error.HTTPError:
        fig.unaligned += 1  # the bot's nonce is older than the window (it lags a lot)
        return
    ep = int(book["snapshots"])
    if ref["asks"] != book["asks"] or ref["bids"] != book["bids"]:
        fig.mismatches.append(f"episode {ep} nonce {book['nonce']}")
    else:
        fig.episodes[ep] = fig.episodes.get(ep, 0) + 1


def _soak(tmp_path: Path, sim_minutes: float, seed: int) -> Figures:
    rng = random.Random(seed)
    fig = Figures(seed)
    sim = Sim(tmp_path, "--seed", str(seed), "--time-scale", str(SCALE), "--book-history", "1024")
    from mmfast.conf import example_path

    cfg = tmp_path / "bot.toml"
    text = example_path("sim").read_text()
    cfg.write_text(
        text.replace("[venue]\n", f'[venue]\nrest_url = "{sim.rest}"\nws_url = "{sim.ws}"\n', 1)
    )
    port = _free_port()
    journal = tmp_path / "j.jsonl"
    err = open(tmp_path / "bot.err", "wb")  # noqa: SIM115 - closed below
    bot = subprocess.Popen(
        [
            *MMFAST,
            "run",
            "--quiet",
            "--config",
            str(cfg),
            "--journal",
            str(journal),
            "--time-scale",
            str(SCALE),
            "--seed",
            str(seed),
            "--control-port",
            str(port),
        ],
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=err,
    )
    bot_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert bot.poll() is None, (tmp_path / "bot.err").read_text()[-3000:]
            assert time.monotonic() < deadline, "the bot never quoted"
            try:
                if _get(f"{bot_url}/status")["strategy"]["orders_open"] >= 2:
                    break
            except (OSError, KeyError):
                pass
            time.sleep(0.2)
        t0 = sim_now = _get(f"{sim.rest}/_sim/truth/time")["result"]["wall_ms"] / 1000
        next_drop = t0 + rng.uniform(120, 300)
        end = t0 + sim_minutes * 60
        next_sample = t0
        while sim_now < end:
            assert bot.poll() is None, (tmp_path / "bot.err").read_text()[-3000:]
            if sim_now >= next_sample:
                fig.sim_s.append(sim_now - t0)
                fig.bot.append(_proc(bot.pid))
                fig.venue.append(_proc(sim.p.pid))
                next_sample += SAMPLE_SIM_S
            _oracle(fig, bot_url, sim)
            if sim_now >= next_drop:
                # A new snapshot episode: the market stream cut (close code or reset).
                _post(
                    f"{sim.rest}/_sim/faults",
                    {
                        "kind": "drop",
                        "args": {"code": rng.choice([1000, 1006, "rst"]), "conn": "order_book:0"},
                    },
                )
                fig.drops += 1
                next_drop = sim_now + rng.uniform(120, 300)
            time.sleep(rng.uniform(0.05, 0.3))
            sim_now = _get(f"{sim.rest}/_sim/truth/time")["result"]["wall_ms"] / 1000
        st = _get(f"{bot_url}/status")
        fig.bot_loop = st["loop"]
        fig.fills = int(st["strategy"]["fills"])
        fig.sim_loop = _get(f"{sim.rest}/_sim/truth/loop")["result"]
        bot.send_signal(signal.SIGTERM)
        assert bot.wait(60) == 0, (tmp_path / "bot.err").read_text()[-3000:]
        assert sim.open_orders() == []
    finally:
        err.close()
        _reap(bot)  # type: ignore[arg-type]
        sim.close()
    print(fig.report())
    return fig


def _check(fig: Figures, *, bot_mb_h: float, sim_mb_h: float, lag_p99_ms: float | None) -> None:
    r = fig.report()
    assert not fig.mismatches, (fig.mismatches[:5], r)
    assert len(fig.episodes) >= 2 and min(fig.episodes.values()) >= 1, r  # drops made more
    assert fig.growth_mb_h(fig.bot) < bot_mb_h, r
    assert fig.growth_mb_h(fig.venue) < sim_mb_h, r
    assert fig.spread(fig.bot, 1) <= 4 and fig.spread(fig.venue, 1) <= 4, r  # fds flat
    assert fig.spread(fig.bot, 2) <= 2, r  # threads flat
    if lag_p99_ms is not None:
        assert fig.bot_loop["lag_p99_ms"] < lag_p99_ms, r
        assert fig.sim_loop["lag_p99_ms"] < lag_p99_ms, r
    assert fig.fills > 0, r


def _seed(default: int) -> int:
    return int(os.environ.get("MMFAST_SOAK_SEED", default))


def test_soak_short(tmp_path: Path) -> None:
    """12 simulated minutes (a drop every 2-5 minutes: at least two): the same checks,
    growth bounds loose (a short run's slope is mostly the allocator settling). Loop lag is
    printed, not asserted: it is wall-clock, and on the shared 2-core CI machine with the
    suite beside it the simulator's p99 read 5.3 ms in one run and 42 ms in another (the bot
    2.1 and 20.6 ms); the 5 ms target is held by the soak run (``-m soak``)."""
    fig = _soak(tmp_path, 12, _seed(11))
    _check(fig, bot_mb_h=60, sim_mb_h=120, lag_p99_ms=None)


@pytest.mark.soak
def test_soak_one_simulated_hour(tmp_path: Path) -> None:
    fig = _soak(tmp_path, 64, _seed(12))
    _check(fig, bot_mb_h=10, sim_mb_h=20, lag_p99_ms=5.0)
