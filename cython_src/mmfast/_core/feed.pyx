# cython: language_level=3
"""The market-data socket's picows listener, compiled (docs/core.md, "The compiled step").

picows calls ``on_ws_frame`` through its C vtable. A text frame carrying ``order_book:<m>`` of
a market whose compiled step is attached (``fast[m] = (Pipeline, after)``, kept by the stream)
goes to ``Pipeline.on_frame_c`` on the frame's bytes in place: book, quote, plan, gate, and the
first tx signed and on the wire, with no Python call before it. Python is called after the step,
for what is not on the way to the wire: ``after(code, now_ns)`` (the strategy sends the step's
other actions) and the stream's ``_after_book`` (counters, snapshots and readiness, the venue
time for the skew monitor, the book event).

Everything else takes the stream's Python handler as before (``stream._on_frame``): another
message, a market with no attached step, a frame the book's scanner does not take (nothing
applied then), a time source that is not the host's monotonic clock, and the first frame after
a stall of the event loop (``alive_until``: the stall watch's last stamp + its threshold, so
the stall is reported before the frame is used).

The class is compiled against picows's ``.pxd`` (its object layouts): it must run with the
picows it was built for (``PICOWS_VERSION``); the import refuses another one and the stream
falls back to its Python listener.
"""

from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from libc.stdint cimport int64_t

cimport cython
from picows.picows cimport WSFrame, WSListener, WSMsgType, WSTransport

from mmfast._core.book cimport BOOK_NOT_BOOK
from mmfast._core.clock cimport monotonic_ns
from mmfast._core.pipeline cimport Pipeline

import picows as _picows

from mmfast._core.book import BookError

# The picows release whose .pxd this module is compiled against (pyproject pins it exactly).
PICOWS_VERSION = "2.3.1"

if _picows.__version__ != PICOWS_VERSION:
    raise ImportError(f"mmfast._core.feed was built for picows {PICOWS_VERSION}, found "
                      f"{_picows.__version__}: the stream uses its Python listener")

__all__ = ["PICOWS_VERSION", "BookFeed"]


cdef inline Py_ssize_t _find(const char* p, Py_ssize_t n, const char* tag,
                             Py_ssize_t k) noexcept nogil:
    """Index of ``tag`` (``k`` bytes) in ``p[:n]``, -1 if absent."""
    cdef Py_ssize_t i, j
    cdef char c0 = tag[0]
    for i in range(n - k + 1):
        if p[i] == c0:
            j = 1
            while j < k and p[i + j] == tag[j]:
                j += 1
            if j == k:
                return i
    return -1


cdef inline int64_t _int_at(const char* p, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    """The non-negative decimal integer at ``p[i]`` (-1 if none or over 18 digits)."""
    cdef int64_t v = -1
    cdef int digits = 0
    while i < n and p[i] >= 48 and p[i] <= 57:
        v = (0 if v < 0 else v * 10) + (p[i] - 48)
        digits += 1
        if digits > 18:
            return -1
        i += 1
    return v


@cython.final
cdef class BookFeed(WSListener):
    """picows listener of one market-data connection (see the module doc)."""

    cdef public object stream          # the WsStream (its Python handlers)
    cdef public int gen                # the connection generation it serves
    cdef public dict fast              # market -> (Pipeline, after): the stream's; None: off
    cdef public int64_t alive_until    # the stall watch's stamp + threshold (0: not watched)
    cdef public int64_t skew_every_ns  # venue time read for the skew monitor this often
    cdef public int64_t last_ts_ns     # ... last read (CLOCK_MONOTONIC ns)
    cdef readonly int64_t fast_frames  # frames the compiled path took
    cdef readonly int64_t t_frame      # CLOCK_MONOTONIC ns at the last on_ws_frame's entry
    cdef object _after_book            # stream._after_book
    cdef object _after_other           # stream._after_other

    def __init__(self, stream, int gen, dict fast, int64_t skew_every_ns):
        self.stream = stream
        self.gen = gen
        self.fast = fast
        self.alive_until = 0
        self.skew_every_ns = skew_every_ns
        self.last_ts_ns = -(1 << 62)
        self.fast_frames = 0
        self.t_frame = 0
        self._after_book = stream._after_book
        self._after_other = stream._after_other

    cdef _py_frame(self, WSTransport transport, WSFrame frame):
        # Looked up on each call: the stream's handler as it is now (a wrapper included).
        return self.stream._on_frame(self, transport, frame)

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        cdef int64_t now = monotonic_ns()
        self.t_frame = now
        cdef const char* p = frame.payload_ptr
        cdef Py_ssize_t n = frame.payload_size
        cdef Py_ssize_t i
        cdef int64_t market, ts
        cdef PyObject* entry
        cdef Pipeline pipe
        cdef int code
        cdef int64_t snaps
        cdef dict fast = self.fast
        if not fast or frame.msg_type != WSMsgType.TEXT:
            return self._py_frame(transport, frame)
        i = _find(p, n, b"order_book:", 11)
        market = _int_at(p, n, i + 11) if i >= 0 else -1
        if market < 0:
            return self._py_frame(transport, frame)
        entry = PyDict_GetItem(fast, market)
        if entry is NULL:
            return self._py_frame(transport, frame)
        if self.alive_until != 0 and now > self.alive_until:
            return self._py_frame(transport, frame)  # a stall: reported there first
        pipe = <Pipeline>(<tuple>entry)[0]
        snaps = pipe.book.snapshots
        try:
            code = pipe.on_frame_c(p, n, now)
        except BookError:
            self.stream.malformed += 1
            return None
        if code < 0:
            return self._py_frame(transport, frame)  # not taken: nothing applied
        self.fast_frames += 1
        if code == BOOK_NOT_BOOK:
            return self._after_other(frame.get_payload_as_bytes(), now)
        ts = -1
        if now - self.last_ts_ns >= self.skew_every_ns:
            i = _find(p, n, b'"timestamp":', 12)
            if i >= 0:
                ts = _int_at(p, n, i + 12)
                if ts > 1_000_000_000_000:  # epoch ms
                    self.last_ts_ns = now
                else:
                    ts = -1
        (<object>(<tuple>entry)[1])(code, now)
        self._after_book(market, code, now, pipe.book.snapshots != snaps, ts)
        return None

    cpdef on_ws_disconnected(self, WSTransport transport):
        self.stream._on_disconnected(self)

    cpdef send_user_specific_ping(self, WSTransport transport):
        self.stream._send_ping(transport)

    cpdef is_user_specific_pong(self, WSFrame frame):
        return frame.payload_size < 64 and _find(frame.payload_ptr, frame.payload_size,
                                                 b'"pong"', 6) >= 0
