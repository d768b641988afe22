"""Checks of the system benchmarks' pieces: the pipeline (ours against the pure-Python twin),
the report, the socket helpers and the peers. Run with ``pytest bench/``."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from bench.harness import Stats
from bench.l2stream import L2Stream, StreamConfig, generate
from bench.micro import Metric
from bench.pipeline import CompiledPipeline, PlannerPipeline, PythonPipeline, Stamps
from bench.report import headline_table, write_results


@pytest.fixture(scope="module")
def stream() -> L2Stream:
    return generate(StreamConfig(seed=3, n_deltas=1500))


class _Rec:
    def __init__(self) -> None:
        self.calls: list[tuple[int, bool, int, int]] = []

    def __call__(self, level: int, is_ask: bool, price: int, size: int) -> None:
        self.calls.append((level, is_ask, price, size))


def _drive(pipe: CompiledPipeline | PythonPipeline, stream: L2Stream) -> list[Stamps]:
    out = []
    for data in stream.frames:
        st = Stamps(received=1)
        pipe.on_frame(data, st)
        out.append(st)
    return out


def test_compiled_pipeline_sends_what_the_python_twin_sends(stream: L2Stream) -> None:
    a, b = _Rec(), _Rec()
    ours, twin = CompiledPipeline(stream, a), PythonPipeline(stream, b)
    st_ours = _drive(ours, stream)
    _drive(twin, stream)
    assert a.calls == b.calls and len(a.calls) > 500
    assert ours.top() == twin.top() == stream.tops[-1]
    # Stages are stamped in order on every frame that produced a tx.
    with_tx = [s for s in st_ours if s.n_txs]
    assert with_tx
    for s in with_tx:
        assert s.received <= s.applied <= s.quoted <= s.diffed <= s.first_tx <= s.all_txs
    # The resting ladder is the last quote: replaying the last frame sends nothing more.
    n = len(a.calls)
    ours.on_frame(stream.frames[-1], Stamps())
    assert len(a.calls) == n


def test_planner_pipeline_keeps_a_full_ladder(stream: L2Stream) -> None:
    rec = _Rec()
    pipe = PlannerPipeline(stream, rec)
    _drive(pipe, stream)
    assert pipe.denied == 0 and rec.calls
    bids = sorted((o.price_ticks, o.size_lots) for o in pipe.live if int(o.side) == 0)
    asks = sorted((o.price_ticks, o.size_lots) for o in pipe.live if int(o.side) != 0)
    assert bids == sorted(pipe.engine.bids()) and asks == sorted(pipe.engine.asks())


def test_metric_verdicts_and_headline_table() -> None:
    m = Metric(
        name="step_internal", unit="ns", definition="d", target_ns=3000.0, target_p99_ns=10_000.0
    )
    m.ours = [Stats("ours", 2000.0, 12_000.0, 2500.0, 1000.0, 100, 1)]
    m.baselines = [Stats("py", 20_000.0, 40_000.0, 21_000.0, 15_000.0, 100, 1)]
    assert m.met() is False  # p50 fine, p99 over
    m.ours = [Stats("ours", 2000.0, 9_000.0, 2500.0, 1000.0, 100, 1)]
    assert m.met() is True
    m2 = Metric(name="feed_throughput", unit="ns/msg", definition="d", verdict=False)
    m2.ours = [Stats("ours", 1.0, 1.0, 1.0, 1.0, 1, 1)]
    m3 = Metric(name="x", unit="ns", definition="d", unavailable="not built")
    table = headline_table([m, m2, m3])
    assert "| step_internal |" in table and "10.00x | **met** |" in table
    assert "**NOT met**" in table
    assert "not available: not built" in table and "not measured" in table


def test_write_results_json_md_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    m = Metric(name="step_internal", unit="ns", definition="d", target_ns=3000.0)
    m.ours = [Stats("ours", 2000.0, 2500.0, 2100.0, 1000.0, 3, 1)]
    m.dists = {"ours": [1000.0, 2000.0, 2500.0], "empty": []}
    paths = write_results(tmp_path, [m], {"profile": {}}, "# t")
    data = json.loads(paths["json"].read_text())
    assert data["metrics"][0]["met"] is True
    assert "dists" not in data["metrics"][0]
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "latency.png" in paths["md"].read_text()


def test_echo_round_trip_through_a_child_process() -> None:
    import uvloop

    from bench.loops import _echo_client
    from bench.procs import Remote

    with Remote("echo", "--impl", "picows", "--loop", "uvloop") as far:
        rtts = uvloop.run(_echo_client("picows", far.address, 50, 5))
    assert len(rtts) == 50 and all(r > 0 for r in rtts)


def test_bare_venue_matches_orders_to_deltas(stream: L2Stream) -> None:
    import uvloop

    from bench.wire import _PoolSink, _run_case

    pool = [b'{"fake":1}']
    venue, bot, _cpu = _run_case(
        "picows", stream, 200, 1000, False, _PoolSink(pool), False, uvloop.run
    )
    assert venue["deltas"] == 200
    assert len(venue["echo"]) == 200
    # Every delta that moved the quote produced one order frame the venue matched by id; the
    # snapshot's own order frame (not a timed delta) is the one more.
    assert 0 < len(venue["w2w"]) == venue["order_frames"] - 1 == len(bot["internal"]) - 1
    assert sorted(venue["w2w"])[len(venue["w2w"]) // 2] < 50_000_000  # sane: under 50 ms
    assert bot["top"] == stream.tops[200]


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler")
def test_hummingbot_style_book_follows_the_stream(stream: L2Stream) -> None:
    from bench.peers import build_hb_book

    mod, why = build_hb_book()
    assert mod is not None, why
    book = mod.HbBook(2)
    for m in stream.messages:
        book.apply_message(m)
    assert (book.best_bid(), book.best_ask()) == stream.tops[-1]


def test_cli_forwards_bench_arguments() -> None:
    from mmfast.cli import build_parser

    args = build_parser().parse_args(["bench", "--quick", "--only", "quote"])
    assert args.bench_args == ["--quick", "--only", "quote"]


# --- the real bot stack (bench.botpath) ---------------------------------------------------------


def test_presigned_signer_builds_what_the_sdk_would() -> None:
    import asyncio

    from bench.botpath import PreSignedSigner
    from mmfast.connector.lighter.signer import CancelAllRequest, CreateOrderRequest
    from mmfast.connector.lighter.txcheck import check_signed
    from mmfast.core.types import TimeInForce
    from mmfast.sim.engine import parse_tx_info

    async def main() -> list[object]:
        signer = PreSignedSigner(account_index=1001, api_key_index=4, chain_id=7)
        signer.start()
        out = [
            await signer.sign(
                CreateOrderRequest(
                    0,
                    7,
                    100,
                    206_400,
                    False,
                    TimeInForce.POST_ONLY,
                    11,
                    order_expiry_ms=1_900_000_000_000,
                )
            ),
            await signer.sign(CancelAllRequest(0, 12)),
        ]
        out.append(await signer.token(1_900_000_000))
        signer.stop()
        return out

    create, cancel_all, token = asyncio.run(main())
    for tx in (create, cancel_all):
        # mmfast's own check of a signed tx, and the simulator's parser, both accept it.
        check_signed(tx.request, tx.tx_type, tx.tx_info, account_index=1001, api_key_index=4)
        parse_tx_info(tx.tx_type, tx.tx_info)
        assert tx.nonce == tx.request.nonce and len(tx.info["Sig"]) == 108
    deadline, account, key, sig = str(token).split(":")
    assert (deadline, account, key) == ("1900000000", "1001", "4") and bytes.fromhex(sig)


def test_presigned_signer_native_methods_write_what_submit_would() -> None:
    """The compiled step's direct path (``native``) gets the tx_info ``submit`` makes for the
    same request, which mmfast's check and the simulator accept; off with ``direct=False``."""
    import asyncio

    import orjson

    from bench.botpath import PreSignedSigner
    from mmfast.connector.lighter.signer import CancelOrderRequest, ModifyOrderRequest
    from mmfast.connector.lighter.txcheck import check_signed
    from mmfast.sim.engine import parse_tx_info

    async def main() -> None:
        signer = PreSignedSigner(account_index=1001, api_key_index=4, chain_id=7)
        assert signer.native is None  # not running
        signer.start()
        ns = signer.native
        assert ns is not None
        cases = [
            (
                ModifyOrderRequest(3, 77, 120, 206_500, 41),
                ns.sign_modify_order(3, 77, 120, 206_500, 0, 41, 1_900_000_000_000),
            ),
            (CancelOrderRequest(3, 77, 42), ns.sign_cancel_order(3, 77, 42, 1_900_000_000_000)),
        ]
        for req, (info, tx_hash) in cases:
            via_submit = await signer.sign(req)
            check_signed(req, req.TX_TYPE, info, account_index=1001, api_key_index=4)
            parse_tx_info(req.TX_TYPE, info)
            got, want = orjson.loads(info), orjson.loads(via_submit.tx_info)
            assert got["ExpiredAt"] == 1_900_000_000_000
            assert {k: v for k, v in got.items() if k != "ExpiredAt"} == {
                k: v for k, v in want.items() if k != "ExpiredAt"
            }
            assert list(got) == list(want)  # the SDK's field order
            assert tx_hash == via_submit.tx_hash == f"{req.nonce:080x}"
        signer.stop()
        assert signer.native is None
        off = PreSignedSigner(account_index=1001, api_key_index=4, chain_id=7, direct=False)
        off.start()
        assert off.native is None

    asyncio.run(main())


def test_venue_resubscribe_snapshot_is_the_stream_state(stream: L2Stream) -> None:
    from bench.remote import _book_state
    from mmfast.reference.book import ReferenceBook

    for upto in (0, 1, 400, 1500):
        book = ReferenceBook(0, 2, 4)
        book.apply_message(_book_state(stream.messages, upto))
        assert (book.best_bid(), book.best_ask()) == stream.tops[upto]


def test_venue_stamps_a_send_as_its_frame_is_written() -> None:
    """The venue's send stamp is the simulator connection's write, not the send call: work
    before the write (building the frame) is not counted; a send that writes nothing is
    stamped at the call and counted."""
    from bench.remote import _WriteClock
    from mmfast.sim.server import _Conn

    class Transport:
        def __init__(self) -> None:
            self.frames: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.frames.append(data)

        def is_closing(self) -> bool:
            return False

        def get_write_buffer_size(self) -> int:
            return 0

    t = Transport()
    conn = _Conn(None, 1, None, t, "127.0.0.1", 0)  # type: ignore[arg-type]
    clock = time.perf_counter_ns

    def slow_send(payload: bytes) -> None:
        time.sleep(0.005)  # the frame built before it is written
        conn.send_payload(payload, None)

    writes = _WriteClock()
    writes.install()
    try:
        t0 = clock()
        stamp = writes.stamp(slow_send, b'{"echo":1}')
        t1 = clock()
        assert t0 + 5_000_000 <= stamp <= t1
        assert t.frames and t.frames[-1].endswith(b'{"echo":1}')
        assert writes.unwritten == 0
        conn.closed = True  # writes nothing
        t0 = clock()
        stamp = writes.stamp(slow_send, b'{"echo":2}')
        assert t0 <= stamp < t0 + 5_000_000
        assert writes.unwritten == 1 and len(t.frames) == 1
    finally:
        writes.remove()
    assert not writes.installed
    conn.closed = False
    before = writes.first
    conn.send_payload(b"{}", None)  # removed: no stamp taken
    assert writes.first == before and len(t.frames) == 2


def test_retime_sets_the_venue_timestamp_only(stream: L2Stream) -> None:
    import orjson

    from bench.botpath import retime

    frame = stream.frames[5]
    out = orjson.loads(retime(frame, 1_796_000_000_123))
    want = dict(stream.messages[5], timestamp=1_796_000_000_123)
    assert out == want


def test_bot_stack_quotes_the_stream_through_the_venue(stream: L2Stream) -> None:
    """mmfast run's stack against the venue process: 300 live deltas, then stamps checked."""
    from bench.botpath import bot_case, join_wire, problems, stage_lists

    n = 300
    run, _cpu = bot_case(stream, n, 2_000, False, worker_signer=False)
    assert problems(run, stream, n) == []
    venue = run.venue
    assert venue["deltas"] == n and len(venue["delta_sent"]) == n
    assert len(venue["echo"]) == n  # every probe came back over the market-data connection
    assert run.top == stream.tops[n] and run.exit_code == 0
    led = [r for r in run.rows if r.submit]
    assert led and {r.delta for r in run.rows} <= set(range(1, n + 1))
    # The bot never sends without a reason: frames that moved nothing submitted nothing.
    assert venue["order_frames"] >= len(led) and run.status["orders"]["api_rejects"] == 0
    joined, missing = join_wire(run)
    assert missing == 0 and len(joined) == len(led)
    sent = venue["delta_sent"]
    recv = {}
    for t, nonces in venue["order_nonces"]:
        for x in nonces:
            recv.setdefault(x, t)
    for r in led:
        # Stamps in order in the bot; the bot's own span fits inside the venue's.
        assert r.t0 < r.submit and r.t0 < r.end
        assert r.submit <= r.sent and r.sent_any and r.sent_any <= r.sent
        assert r.sent - r.t0 < recv[r.tx_nonce] - sent[r.delta - 1]
    lists = stage_lists(run.rows)
    assert len(lists["submit"]) == len(lists["sent"]) == len(led)


def test_bot_stack_takes_frames_fed_into_its_callback(stream: L2Stream) -> None:
    """step_internal's real-stack row: stream frames handed straight to the frame callback."""
    from bench.botpath import bot_case, problems

    direct = 200
    run, _cpu = bot_case(stream, 0, 2_000, False, worker_signer=False, direct=direct)
    assert problems(run, stream, 0, direct) == []
    assert run.direct_top == run.top == stream.tops[direct]
    assert [r.delta for r in run.direct] == list(range(1, direct + 1))
    led = [r for r in run.direct if r.submit]
    assert led and all(r.t0 < r.submit <= r.sent for r in led)
    assert run.venue["order_frames"] >= len(led) and not run.venue["w2w"]
