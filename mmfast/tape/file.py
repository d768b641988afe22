"""mmfast's own tape file: the venue's messages as received, with their receive times.

A tape is a zstandard-compressed text file of JSON lines (``zstd -dc FILE | head`` shows it):

1. a header object: ``{"format": "mmfast-tape", "version": 1, "start_wall_ns",
   "start_mono_ns", "source": {...}, "markets": [{market_id, symbol, price_decimals,
   size_decimals, min_base_lots, ...}, ...]}``;
2. records, one JSON array a line: ``["m", wall_ns, mono_ns, <message>]`` (a WebSocket
   message exactly as the venue sent it), ``["g", wall_ns, mono_ns, {"reason", "markets"}]``
   (the stream was lost: a gap) and, last, ``["e", wall_ns, mono_ns, {"reason",
   "messages", "gaps"}]`` when the recorder stopped cleanly.

Receive times are the host's wall clock and its monotonic clock, both in ns; a record's time
on the tape is ``start_wall_ns + (mono_ns - start_mono_ns)`` (the monotonic clock orders and
spaces the records even if the wall clock is stepped meanwhile).

Why zstandard (the ``zstandard`` package) rather than the stdlib's gzip: on these JSON lines
it compresses as well for a sixth of the CPU (a recorder runs for hours beside a bot on the
same machine) and decompresses twice as fast (a backtest reads the whole tape; figures in
docs/backtest.md), and each compressed frame carries a checksum, so a corrupt file is an
error, not wrong data.

The writer ends a zstandard frame at every flush (about once a second): a crash or a
``kill -9`` loses at most the last second, and the reader reads every whole frame before it.
A file that ends inside a frame, inside a record or without its end record is read up to
there and reported ``truncated``; a record that is not a JSON array of that shape is counted
and skipped.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson
import zstandard

from mmfast.tape.events import Event, GapEvent, ReadStats, TapeError, TapeInfo, TapeMarket
from mmfast.tape.lighter import LighterNormalizer

__all__ = [
    "FORMAT",
    "VERSION",
    "ZSTD_MAGIC",
    "TapeWriter",
    "read_mmfast_header",
    "read_mmfast_tape",
]

FORMAT = "mmfast-tape"
VERSION = 1
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_READ_CHUNK = 1 << 20


class TapeWriter:
    """Writes a tape (see the module doc). The file must not exist yet (a tape is never
    overwritten). ``flush()`` ends a compressed frame; ``close()`` writes the end record,
    flushes and fsyncs."""

    def __init__(
        self,
        path: str | Path,
        markets: tuple[TapeMarket, ...],
        *,
        source: dict[str, Any],
        start_wall_ns: int,
        start_mono_ns: int,
        level: int = 3,
    ) -> None:
        self.path = Path(path)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise TapeError(f"{self.path} exists: a tape is never overwritten") from None
        self._file: IO[bytes] | None = os.fdopen(fd, "wb")
        self._zw = zstandard.ZstdCompressor(level=level, write_checksum=True).stream_writer(
            self._file, closefd=False, write_return_read=True
        )
        self.messages = 0  # message records written
        self.gaps = 0  # gap records written
        self.bytes_in = 0  # uncompressed bytes written
        header = {
            "format": FORMAT,
            "version": VERSION,
            "start_wall_ns": start_wall_ns,
            "start_mono_ns": start_mono_ns,
            "source": source,
            "markets": [m.to_json() for m in markets],
        }
        self._write(orjson.dumps(header) + b"\n")
        self.flush()  # a header on disk at once: even a recorder killed now leaves a tape

    def _write(self, data: bytes) -> None:
        if self._file is None:
            raise TapeError(f"{self.path}: the tape is closed")
        self._zw.write(data)
        self.bytes_in += len(data)

    def message(self, wall_ns: int, mono_ns: int, payload: bytes) -> None:
        """A venue message (its JSON bytes as received)."""
        if b"\n" in payload or b"\r" in payload:  # one record a line: re-encoded compactly
            payload = orjson.dumps(orjson.loads(payload))
        self._write(b'["m",%d,%d,%b]\n' % (wall_ns, mono_ns, payload))
        self.messages += 1

    def gap(self, wall_ns: int, mono_ns: int, reason: str, markets: tuple[int, ...]) -> None:
        """The stream of ``markets`` was lost (a disconnect, a broken nonce chain)."""
        self._write(
            b'["g",%d,%d,%b]\n'
            % (wall_ns, mono_ns, orjson.dumps({"reason": reason, "markets": list(markets)}))
        )
        self.gaps += 1

    def flush(self) -> None:
        """End the current compressed frame and hand it to the OS."""
        if self._file is not None:
            self._zw.flush(zstandard.FLUSH_FRAME)
            self._file.flush()

    def close(self, wall_ns: int, mono_ns: int, reason: str) -> None:
        """The end record, then everything to the disk."""
        if self._file is None:
            return
        self._write(
            b'["e",%d,%d,%b]\n'
            % (
                wall_ns,
                mono_ns,
                orjson.dumps({"reason": reason, "messages": self.messages, "gaps": self.gaps}),
            )
        )
        self.flush()
        f, self._file = self._file, None
        os.fsync(f.fileno())
        f.close()

    @property
    def closed(self) -> bool:
        return self._file is None


class _TapeLines:
    """The decompressed lines of a tape, frame by frame (each line with its b"\n", a last
    partial one without). ``cut``: the file ends inside a compressed frame (a crash or a
    kill while it was written); TapeError for a frame that does not decompress or whose
    checksum does not match."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cut = False
        self._raw: IO[bytes] | None = open(path, "rb")  # noqa: SIM115 - closed by close()
        if self._raw.read(4) != ZSTD_MAGIC:
            self.close()
            raise TapeError(f"{path}: not an mmfast tape (not zstandard-compressed)")
        self._raw.seek(0)

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    def __iter__(self) -> Iterator[bytes]:
        raw = self._raw
        assert raw is not None
        dctx = zstandard.ZstdDecompressor()
        obj = dctx.decompressobj()
        in_frame = False  # bytes of a frame fed, its end not seen yet
        tail = b""
        lineno = 0
        while True:
            buf = raw.read(_READ_CHUNK)
            if not buf:
                break
            while buf:
                try:
                    out = obj.decompress(buf)
                except zstandard.ZstdError as exc:
                    raise TapeError(
                        f"{self.path}: corrupt tape after line {lineno} ({exc})"
                    ) from None
                in_frame = True
                if out:
                    parts = (tail + out).split(b"\n")
                    tail = parts.pop()
                    for line in parts:
                        lineno += 1
                        yield line + b"\n"
                if obj.eof:
                    buf = obj.unused_data
                    obj = dctx.decompressobj()
                    in_frame = False
                else:
                    buf = b""
        self.cut = in_frame
        if tail:
            yield tail


def _header(path: Path, first: bytes) -> tuple[TapeInfo, int]:
    """The header's info and its monotonic origin (``start_mono_ns``)."""
    try:
        h = orjson.loads(first)
    except orjson.JSONDecodeError:
        raise TapeError(f"{path}: the first line is not a tape header") from None
    if not isinstance(h, dict) or h.get("format") != FORMAT:
        raise TapeError(f"{path}: not an mmfast tape (no {FORMAT!r} header)")
    version = h.get("version")
    if version != VERSION:
        raise TapeError(
            f"{path}: tape version {version!r} is not supported (this mmfast "
            f"reads version {VERSION})"
        )
    for name in ("start_wall_ns", "start_mono_ns"):
        if type(h.get(name)) is not int:
            raise TapeError(f"{path}: header field {name!r} must be an integer")
    markets = h.get("markets")
    if not isinstance(markets, list) or not markets:
        raise TapeError(f"{path}: the header names no market")
    try:
        ms = tuple(TapeMarket.from_json(m) for m in markets)
    except TapeError as exc:
        raise TapeError(f"{path}: {exc}") from None
    if len({m.market_id for m in ms}) != len(ms):
        raise TapeError(f"{path}: a market is listed twice")
    raw_source = h.get("source")
    source: dict[str, Any] = raw_source if isinstance(raw_source, dict) else {}
    info = TapeInfo("mmfast", VERSION, (str(path),), ms, h["start_wall_ns"], source)
    return info, h["start_mono_ns"]


def read_mmfast_header(path: str | Path) -> TapeInfo:
    """The tape's header (markets, start time, source); TapeError when it is not a tape."""
    return _read_header(Path(path))[0]


def _first_line(path: Path, lines: Iterator[bytes]) -> bytes:
    first = next(lines, b"")
    if not first.endswith(b"\n"):
        raise TapeError(f"{path}: the tape has no complete header")
    return first


def _read_header(p: Path) -> tuple[TapeInfo, int]:
    src = _TapeLines(p)
    try:
        return _header(p, _first_line(p, iter(src)))
    finally:
        src.close()


def read_mmfast_tape(
    path: str | Path, stats: ReadStats, only: int | None = None
) -> tuple[TapeInfo, Iterator[Event]]:
    """The header and the event stream of a tape (read lazily; ``stats`` is filled as the
    events are consumed). ``only``: the events of that market alone (the others' messages
    are skipped before they are parsed, and counted). TapeError for a file that is not a
    tape or is corrupt, or a market it does not have."""
    p = Path(path)
    info, mono0 = _read_header(p)
    if only is not None:
        info = dataclasses.replace(info, markets=(info.market(only),))
    return info, _events(p, info, mono0, stats, only)


def _channel_market(line: bytes) -> int | None:
    """The market id of a message record's channel ("...:<id>"), found without parsing it;
    None when there is none to find (the record is parsed as usual)."""
    i = line.find(b'"channel":"')
    if i < 0:
        return None
    j = line.find(b'"', i + 11)
    k = line.rfind(b":", i + 11, j)
    if k < 0 or not line[k + 1 : j].isdigit():
        return None
    return int(line[k + 1 : j])


def _events(
    path: Path, info: TapeInfo, mono0: int, stats: ReadStats, only: int | None = None
) -> Iterator[Event]:
    norm = LighterNormalizer(info.markets, stats)
    wall0 = info.start_ns
    last_t = wall0
    src = _TapeLines(path)
    try:
        lines = iter(src)
        _first_line(path, lines)  # the header, read already
        ended = False
        for line in lines:
            if not line.endswith(b"\n"):
                stats.skip("truncated last record")  # cut inside it (a crash or a kill)
                break
            stats.records += 1
            if only is not None and line.startswith(b'["m"'):
                mid = _channel_market(line)
                if mid is not None and mid != only:
                    stats.skip("another market's message (not read)")
                    continue
            try:
                rec = orjson.loads(line)
                kind, _wall, mono, body = rec
                if type(mono) is not int or not isinstance(kind, str):
                    raise ValueError
            except (orjson.JSONDecodeError, ValueError, TypeError):
                stats.skip("malformed record")
                continue
            t = wall0 + (mono - mono0)
            if t < last_t:
                stats.skip("record earlier than the one before (kept in order)")
                t = last_t
            last_t = t
            if kind == "m":
                for ev in norm.events(body, t):
                    _count(stats, ev)
                    yield ev
            elif kind == "g":
                markets = body.get("markets") if isinstance(body, dict) else None
                if not isinstance(markets, list) or not all(type(m) is int for m in markets):
                    markets = [m.market_id for m in info.markets]
                if only is not None:
                    if only not in markets:
                        continue
                    markets = [only]
                reason = str(body.get("reason", "")) if isinstance(body, dict) else ""
                norm.gap(tuple(markets))
                ev = GapEvent(t, tuple(markets), reason or "recorder lost the stream")
                _count(stats, ev)
                yield ev
            elif kind == "e":
                stats.ended = str(body.get("reason", "")) if isinstance(body, dict) else "end"
                ended = True
                break
            else:
                stats.skip("unknown record kind")
        if ended:
            for _ in lines:  # to the end of the file: is its last frame whole?
                pass
            stats.truncated = src.cut
        else:
            stats.truncated = True  # the recorder did not stop cleanly
    finally:
        src.close()


def _count(stats: ReadStats, ev: Event) -> None:
    stats.events += 1
    k = ev.kind
    if k == "book":
        stats.books += 1
    elif k == "trade":
        stats.trades += 1
    elif k == "stats":
        stats.stats += 1
    else:
        stats.gaps += 1
