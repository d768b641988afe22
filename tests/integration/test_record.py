"""``mmfast record`` against the simulator on 127.0.0.1: what it writes is what the venue sent
(the book rebuilt from the tape equals the venue's at the same nonce), it survives a dropped
connection with a gap, refuses what it cannot do, and ends cleanly on SIGINT as a process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard

from mmfast.sim.config import FlowConfig, SimConfig
from mmfast.sim.thread import SimThread
from mmfast.tape import GapEvent, open_tape
from mmfast.tape.record import Recorder, RecordOptions, sim_urls

REPO = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def flow_sim() -> Any:
    st = SimThread(SimConfig(seed=5, flow=FlowConfig(), tier="premium", book_history=50_000))
    st.start()
    try:
        yield st
    finally:
        st.stop()


def _record(
    st: SimThread, out: Path, markets: tuple[str, ...], duration_s: float, during: Any = None
) -> tuple[Any, Recorder]:
    opts = RecordOptions(
        rest_url=st.rest_url,
        ws_url=st.ws_url,
        markets=markets,
        out=out,
        duration_s=duration_s,
        status_interval_s=0,
    )
    rec = Recorder(opts)

    async def main() -> Any:
        if during is not None:
            asyncio.get_running_loop().call_later(duration_s / 2, during)
        return await rec.run()

    return asyncio.run(asyncio.wait_for(main(), duration_s + 20)), rec


def _raw_records(path: Path) -> list[Any]:
    """The tape's records as written (the documented format: zstd, JSON lines)."""
    with open(path, "rb") as f:
        data = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()
    lines = data.decode().splitlines()
    return [orjson.loads(x) for x in lines[1:]]


def test_recorded_book_equals_the_venue_book_at_the_same_nonce(
    flow_sim: SimThread, tmp_path: Path
) -> None:
    out = tmp_path / "t.tape"
    res, _ = _record(flow_sim, out, ("ETH", "1"), 2.5)
    assert res.error == "" and res.reason == "duration 2.5 s" and res.messages > 50
    tape = open_tape(out)
    venue = {m.market_id: m for m in flow_sim.config.markets}
    assert [
        (m.market_id, m.symbol, m.price_decimals, m.size_decimals, m.min_base_lots)
        for m in tape.info.markets
    ] == [
        (
            m,
            venue[m].symbol,
            venue[m].price_decimals,
            venue[m].size_decimals,
            venue[m].min_base_amount,
        )
        for m in (0, 1)
    ]
    books: dict[int, dict[bool, dict[int, int]]] = {0: {}, 1: {}}
    kinds: dict[str, int] = {}
    firsts: dict[int, bool] = {}
    for ev in tape.events():
        kinds[ev.kind] = kinds.get(ev.kind, 0) + 1
        if ev.kind == "book":
            firsts.setdefault(ev.market, ev.snapshot)  # type: ignore[union-attr]
            b = books[ev.market]
            if ev.snapshot:  # type: ignore[union-attr]
                b.clear()
            for is_ask, levels in ((False, ev.bids), (True, ev.asks)):  # type: ignore[union-attr]
                side = b.setdefault(is_ask, {})
                for p, q in levels:
                    if q:
                        side[p] = q
                    else:
                        side.pop(p, None)
    assert firsts == {0: True, 1: True}  # each market's book starts with its snapshot
    assert kinds["book"] > 10 and kinds["trade"] > 0 and kinds["stats"] > 0
    assert tape.stats.ended == "duration 2.5 s" and not tape.stats.truncated
    # The last book message of each market, by its nonce, against the venue's history.
    last_nonce: dict[int, int] = {}
    for kind, _w, _m, msg in _raw_records(out):
        if kind == "m" and str(msg.get("type", "")).endswith("/order_book"):
            last_nonce[int(msg["channel"].split(":")[1])] = msg["order_book"]["nonce"]
    for m in (0, 1):
        truth = flow_sim.call(lambda s, m=m: s.truth.book(m, last_nonce[m]))
        assert len(truth["bids"]) > 5 and len(truth["asks"]) > 5
        assert {p: q for p, q in truth["bids"]} == books[m][False]
        assert {p: q for p, q in truth["asks"]} == books[m][True]


def test_a_dropped_connection_is_a_gap_then_a_fresh_snapshot(
    flow_sim: SimThread, tmp_path: Path
) -> None:
    out = tmp_path / "t.tape"

    def drop() -> None:
        flow_sim.call(lambda s: s.faults.drop(1006))

    res, rec = _record(flow_sim, out, ("ETH",), 4.0, during=drop)
    assert res.error == "" and rec.downs == 1 and res.gaps == 1
    evs = list(open_tape(out).events())
    gaps = [i for i, e in enumerate(evs) if isinstance(e, GapEvent)]
    assert len(gaps) == 1 and "stream down" in evs[gaps[0]].reason  # type: ignore[union-attr]
    after = [e for e in evs[gaps[0] :] if e.kind == "book"]
    assert after and after[0].snapshot  # type: ignore[union-attr]  # resubscribed
    assert len(after) > 3  # and recording went on


def test_an_unknown_market_is_refused_and_no_tape_is_written(
    flow_sim: SimThread, tmp_path: Path
) -> None:
    out = tmp_path / "t.tape"
    rec = Recorder(
        RecordOptions(
            rest_url=flow_sim.rest_url,
            ws_url=flow_sim.ws_url,
            markets=("ETH", "DOGE"),
            out=out,
            duration_s=1,
        )
    )
    with pytest.raises(
        ValueError,
        match="market 'DOGE' is not listed by the venue "
        r"\(it lists 0=ETH, 1=BTC\)",
    ):
        asyncio.run(rec.open())
    assert not out.exists()
    with pytest.raises(ValueError, match="ws url must be a ws/wss URL"):
        RecordOptions(rest_url="http://127.0.0.1:1", ws_url="http://x", markets=("ETH",), out=out)
    assert sim_urls("http://127.0.0.1:8123/") == (
        "http://127.0.0.1:8123",
        "ws://127.0.0.1:8123/stream",
    )


def _record_proc(st: SimThread, out: Path, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mmfast.cli",
            "record",
            "--sim",
            st.rest_url,
            "--markets",
            "ETH",
            "-o",
            str(out),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_recording(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("recording ETH (0) from ws://127.0.0.1:"), line


def test_record_process_ends_cleanly_on_sigint(flow_sim: SimThread, tmp_path: Path) -> None:
    out = tmp_path / "t.tape"
    proc = _record_proc(flow_sim, out)
    try:
        _wait_recording(proc)
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, stderr
    assert "stopped: SIGINT" in stdout
    assert "Traceback" not in stderr
    tape = open_tape(out)
    evs = list(tape.events())
    assert tape.stats.ended == "SIGINT" and not tape.stats.truncated
    assert evs[0].kind == "book" and evs[0].snapshot  # type: ignore[union-attr]
    assert sum(e.kind == "book" for e in evs) > 5


def test_a_killed_recorder_leaves_a_readable_tape(flow_sim: SimThread, tmp_path: Path) -> None:
    out = tmp_path / "t.tape"
    proc = _record_proc(flow_sim, out)
    try:
        _wait_recording(proc)
        time.sleep(2.5)  # at least one flush (every second)
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    tape = open_tape(out)
    evs = list(tape.events())  # no exception: read up to the last whole frame
    assert tape.stats.truncated and tape.stats.ended == ""
    assert sum(e.kind == "book" for e in evs) > 5


def test_record_process_refuses_an_existing_file(flow_sim: SimThread, tmp_path: Path) -> None:
    out = tmp_path / "t.tape"
    out.write_bytes(b"keep me")
    proc = _record_proc(flow_sim, out, "--duration", "1")
    _out, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "exists: a tape is never overwritten" in stderr
    assert out.read_bytes() == b"keep me"
