"""mmfast's tape file: write, read back as events, and what a damaged file gives."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from mmfast.tape import (
    TAKER_BUY,
    TAKER_SELL,
    BookEvent,
    GapEvent,
    StatsEvent,
    TapeError,
    TapeMarket,
    TradeEvent,
    open_tape,
)
from mmfast.tape.file import TapeWriter, read_mmfast_header

ETH = TapeMarket(0, "ETH", 2, 4, min_base_lots=50, min_quote_micro=10_000_000)
BTC = TapeMarket(1, "BTC", 1, 5, min_base_lots=20)
WALL0 = 1_790_000_000_000_000_000
MONO0 = 5_000_000_000


def _book(
    market: int,
    typ: str,
    nonce: int,
    begin: int,
    bids: list[tuple[str, str]],
    asks: list[tuple[str, str]],
) -> bytes:
    lv = lambda xs: [{"price": p, "size": s} for p, s in xs]  # noqa: E731
    return orjson.dumps(
        {
            "channel": f"order_book:{market}",
            "offset": nonce,
            "order_book": {
                "code": 0,
                "asks": lv(asks),
                "bids": lv(bids),
                "offset": nonce,
                "nonce": nonce,
                "begin_nonce": begin,
            },
            "timestamp": 1,
            "type": f"{typ}/order_book",
        }
    )


def _trade(market: int, price: str, size: str, maker_ask: bool, tid: int) -> bytes:
    return orjson.dumps(
        {
            "channel": f"trade:{market}",
            "liquidation_trades": [],
            "nonce": 1,
            "trades": [
                {
                    "trade_id": tid,
                    "market_id": market,
                    "price": price,
                    "size": size,
                    "is_maker_ask": maker_ask,
                }
            ],
            "type": "update/trade",
        }
    )


def _stats(market: int, mark: str) -> bytes:
    return orjson.dumps(
        {
            "channel": f"market_stats:{market}",
            "timestamp": 1,
            "type": "update/market_stats",
            "market_stats": {"market_id": market, "mark_price": mark, "index_price": mark},
        }
    )


def _writer(path: Path) -> TapeWriter:
    return TapeWriter(
        path, (ETH, BTC), source={"test": True}, start_wall_ns=WALL0, start_mono_ns=MONO0
    )


def _sample(path: Path, end: bool = True) -> None:
    w = _writer(path)
    w.message(
        WALL0,
        MONO0,
        _book(
            0, "subscribed", 100, 0, [("2999.90", "1.5")], [("3000.10", "2"), ("3000.20", "0.0050")]
        ),
    )
    # trade history of a subscribe: not events of the tape
    w.message(
        WALL0,
        MONO0 + 1,
        orjson.dumps({"channel": "trade:0", "type": "subscribed/trade", "trades": [], "nonce": 1}),
    )
    w.message(WALL0, MONO0 + 1_000_000, _trade(0, "3000.10", "0.2500", True, 7))
    w.message(WALL0, MONO0 + 2_000_000, _book(0, "update", 103, 100, [], [("3000.10", "1.7500")]))
    w.message(WALL0, MONO0 + 3_000_000, _stats(0, "3000.00"))
    w.message(WALL0, MONO0 + 4_000_000, _trade(0, "2999.90", "0.0100", False, 8))
    w.gap(WALL0, MONO0 + 5_000_000, "stream down: test", (0, 1))
    w.message(WALL0, MONO0 + 6_000_000, _book(0, "update", 104, 103, [("2999.80", "1")], []))
    w.message(
        WALL0,
        MONO0 + 7_000_000,
        _book(0, "subscribed", 200, 0, [("2999.70", "1")], [("3000.30", "1")]),
    )
    if end:
        w.close(WALL0, MONO0 + 8_000_000, "SIGINT")
    else:
        w.flush()
        w._file.close()  # type: ignore[union-attr]  # a crash: no end record


def test_roundtrip_events_units_and_times(tmp_path: Path) -> None:
    p = tmp_path / "t.tape"
    _sample(p)
    tape = open_tape(p)
    assert tape.info.format == "mmfast"
    assert tape.info.markets == (ETH, BTC)
    assert tape.info.start_ns == WALL0
    assert tape.info.source == {"test": True}
    evs = list(tape.events())
    assert evs == [
        BookEvent(WALL0, 0, True, ((299990, 15000),), ((300010, 20000), (300020, 50))),
        TradeEvent(WALL0 + 1_000_000, 0, 300010, 2500, TAKER_BUY, "7"),
        BookEvent(WALL0 + 2_000_000, 0, False, (), ((300010, 17500),)),
        StatsEvent(WALL0 + 3_000_000, 0, 300000, 300000),
        TradeEvent(WALL0 + 4_000_000, 0, 299990, 100, TAKER_SELL, "8"),
        GapEvent(WALL0 + 5_000_000, (0, 1), "stream down: test"),
        # the delta after the gap waits for a snapshot: dropped
        BookEvent(WALL0 + 7_000_000, 0, True, ((299970, 10000),), ((300030, 10000),)),
    ]
    st = tape.stats
    assert st.ended == "SIGINT" and not st.truncated
    assert st.skipped == {"trade history of a subscribe": 1, "book delta while out of sync": 1}
    assert (st.books, st.trades, st.stats, st.gaps) == (3, 2, 1, 1)
    with pytest.raises(TapeError, match="read once"):
        tape.events()


def test_nonce_chain_break_is_a_gap(tmp_path: Path) -> None:
    p = tmp_path / "t.tape"
    w = _writer(p)
    w.message(WALL0, MONO0, _book(0, "subscribed", 10, 0, [("1.00", "1")], [("2.00", "1")]))
    w.message(WALL0, MONO0 + 1, _book(0, "update", 12, 11, [("1.00", "2")], []))  # 11 != 10
    w.message(WALL0, MONO0 + 2, _book(0, "update", 13, 12, [("1.00", "3")], []))
    w.message(WALL0, MONO0 + 3, _book(0, "subscribed", 20, 0, [("1.00", "4")], []))
    w.message(WALL0, MONO0 + 4, _book(0, "update", 21, 20, [("1.00", "5")], []))
    w.close(WALL0, MONO0 + 5, "done")
    tape = open_tape(p)
    evs = list(tape.events())
    assert [e.kind for e in evs] == ["book", "gap", "book", "book"]
    assert isinstance(evs[1], GapEvent) and "nonce chain broken at 11" in evs[1].reason
    assert evs[3] == BookEvent(WALL0 + 4, 0, False, ((100, 50000),), ())
    assert tape.stats.skipped == {
        "book delta breaking the nonce chain": 1,
        "book delta while out of sync": 1,
    }


def test_crash_without_end_record_reads_to_the_last_frame(tmp_path: Path) -> None:
    p = tmp_path / "t.tape"
    _sample(p, end=False)
    tape = open_tape(p)
    assert len(list(tape.events())) == 7
    assert tape.stats.truncated and tape.stats.ended == ""


def test_truncated_last_record_is_detected_not_a_crash(tmp_path: Path) -> None:
    p = tmp_path / "t.tape"
    _sample(p)
    data = p.read_bytes()
    # Cut at every point of the last frame: never an exception, never a wrong event.
    full = list(open_tape(p).events())
    for cut in range(len(data) - 1, len(data) - 60, -7):
        q = tmp_path / f"cut{cut}.tape"
        q.write_bytes(data[:cut])
        tape = open_tape(q)
        evs = list(tape.events())
        assert tape.stats.truncated
        assert evs == full[: len(evs)]


def test_corrupt_frame_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "t.tape"
    _sample(p)
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    q = tmp_path / "bad.tape"
    q.write_bytes(bytes(data))
    with pytest.raises(TapeError, match="corrupt tape"):
        list(open_tape(q).events())


def test_malformed_records_are_counted_and_skipped(tmp_path: Path) -> None:
    p = tmp_path / "t.tape"
    w = _writer(p)
    w.message(WALL0, MONO0, _book(0, "subscribed", 10, 0, [("1.00", "1")], [("2.00", "1")]))
    w._write(b"not json\n")
    w._write(b'["m", 1]\n')
    w.message(WALL0, MONO0 + 1, b'{"type":"update/trade","trades":[{"market_id":0}]}')
    w.message(WALL0, MONO0 + 2, _book(0, "update", 11, 10, [("1.001", "1")], []))  # 3 decimals
    w.message(WALL0, MONO0 + 3, b'{"type":"ping"}')
    w.close(WALL0, MONO0 + 4, "done")
    tape = open_tape(p)
    evs = list(tape.events())
    assert [e.kind for e in evs] == ["book", "gap"]
    assert "malformed book message" in evs[1].reason  # type: ignore[union-attr]
    assert tape.stats.skipped == {
        "malformed record": 2,
        "malformed trade": 1,
        "malformed book message": 1,
        "ping message": 1,
    }


def test_not_a_tape_and_versions(tmp_path: Path) -> None:
    plain = tmp_path / "x.txt"
    plain.write_text("hello\n")
    with pytest.raises(TapeError, match="neither an mmfast tape nor a Tardis"):
        open_tape(plain)
    with pytest.raises(TapeError, match="no such file"):
        open_tape(tmp_path / "missing.tape")
    import zstandard

    v2 = tmp_path / "v2.tape"
    v2.write_bytes(
        zstandard.ZstdCompressor().compress(
            orjson.dumps({"format": "mmfast-tape", "version": 2}) + b"\n"
        )
    )
    with pytest.raises(TapeError, match="version 2 is not supported"):
        read_mmfast_header(v2)
    nomk = tmp_path / "nomk.tape"
    nomk.write_bytes(
        zstandard.ZstdCompressor().compress(
            orjson.dumps(
                {
                    "format": "mmfast-tape",
                    "version": 1,
                    "start_wall_ns": 1,
                    "start_mono_ns": 1,
                    "markets": [
                        {"market_id": 0, "symbol": "ETH", "price_decimals": "2", "size_decimals": 4}
                    ],
                }
            )
            + b"\n"
        )
    )
    with pytest.raises(TapeError, match="price_decimals must be an integer"):
        read_mmfast_header(nomk)


def test_a_tape_is_never_overwritten(tmp_path: Path) -> None:
    p = tmp_path / "t.tape"
    _sample(p)
    before = p.read_bytes()
    with pytest.raises(TapeError, match="never overwritten"):
        _writer(p)
    assert p.read_bytes() == before


def test_messages_with_newlines_stay_one_record(tmp_path: Path) -> None:
    p = tmp_path / "t.tape"
    w = _writer(p)
    w.message(
        WALL0,
        MONO0,
        b'{"type":"update/market_stats",\n"market_stats":{"market_id":0,'
        b'"mark_price":"3000.00","index_price":"3000.00"}}',
    )
    w.close(WALL0, MONO0 + 1, "done")
    assert list(open_tape(p).events()) == [StatsEvent(WALL0, 0, 300000, 300000)]


def test_one_market_is_read_alone(tmp_path: Path) -> None:
    p = tmp_path / "t.tape"
    w = _writer(p)
    w.message(WALL0, MONO0, _book(0, "subscribed", 10, 0, [("1.00", "1")], [("2.00", "1")]))
    w.message(WALL0, MONO0 + 1, _book(1, "subscribed", 5, 0, [("1.0", "1")], [("2.0", "1")]))
    w.message(WALL0, MONO0 + 2, _trade(1, "2.0", "0.00100", True, 9))
    w.gap(WALL0, MONO0 + 3, "stream down", (1,))  # not this market's
    w.gap(WALL0, MONO0 + 4, "stream down", (0, 1))
    w.message(WALL0, MONO0 + 5, _trade(0, "2.00", "0.5", False, 10))
    w.close(WALL0, MONO0 + 6, "done")
    tape = open_tape(p, only=0)
    assert tape.info.markets == (ETH,)
    assert [
        (e.kind, e.market if e.kind != "gap" else e.markets)  # type: ignore[union-attr]
        for e in tape.events()
    ] == [("book", 0), ("gap", (0,)), ("trade", 0)]
    assert tape.stats.skipped == {"another market's message (not read)": 2}
    with pytest.raises(TapeError, match=r"no market 7 \(it has 0=ETH, 1=BTC\)"):
        open_tape(p, only=7)
