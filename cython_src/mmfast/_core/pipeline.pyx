# cython: language_level=3
"""The compiled per-market step of ``market_making``: a book frame -> book -> quote -> plan ->
risk gate -> the gated actions, in one call with no Python object on the way.

``Pipeline.on_frame(data, now_ns)`` applies an order-book frame to the market's ``OrderBook``
and, when it moved what the ladder depends on, runs the step: the guards (the gate's ready /
in-sync / kill / market flags), the target ladder (``QuoteEngine`` on the book, then the fixed
mode's wider side and the price band), the plan (``mmfast._core.plan``'s C steps on a scratch
this object owns, our orders read in place from the strategy's dict, the budget from one
``order_room`` snapshot), and the risk gate on each action (``GateCore.admit_c``, its open-order
counts kept as the strategy's recount would leave them). ``requote(now_ns)`` runs the same step
without a frame (ticks, order and fill events).

What the step leaves is a short array of actions in send order (``n_out``, ``action(i)``),
each admitted or carrying its denial; the strategy sends them through order entry and keeps
its books (``MarketMaking``). It is the same plan, action for action, as the strategy's
Python path (``requote_python``): the twin property test holds the two equal.

A step whose inputs (touch, reference, position, market state, our orders' version) are those
of the last plan, when that plan was on target with no back-off and no order has aged since,
is skipped: it would plan nothing (counted in ``skipped``).
"""

from cpython.object cimport PyObject
from cpython.ref cimport Py_XDECREF, Py_XINCREF
from libc.math cimport isfinite, rint
from libc.stdint cimport INT64_MAX, int64_t
from libc.stdlib cimport calloc, free

cimport cython

from mmfast._core.book cimport BOOK_APPLIED, OrderBook
from mmfast._core.clock cimport monotonic_ns, wall_ms
from mmfast._core.gate cimport G_MAX_POSITION, G_OK, GM_ACTIVE, GM_INACTIVE, GateCore
from mmfast._core.plan cimport (
    PLAN_CANCEL,
    PLAN_CREATE,
    PLAN_DEGRADE_NONE,
    PLAN_MODIFY,
    Act,
    Grp,
    Ord,
    PlanScratch,
    SideIn,
    plan_choose,
    plan_degrade,
    plan_read_orders,
    plan_room,
    plan_shape,
    plan_sides,
    plan_sort,
    plan_widen,
)
from mmfast._core.quote cimport QuoteEngine

import orjson

from mmfast._core.units import format_units
from mmfast.core.plan_types import ActionKind, PlannerParams
from mmfast.core.types import Side
from mmfast.risk.limits import RiskReason, count_open

cdef extern from *:
    """
    static inline int mmpl_ge128(long long a, long long b, long long c) {
        return (__int128)a * b >= (__int128)c;
    }
    """
    bint mmpl_ge128(long long a, long long b, long long c) noexcept nogil


REFERENCES = {"mid": REF_MID, "microprice": REF_MICROPRICE, "last_trade": REF_LAST_TRADE}
_KINDS = (ActionKind.CREATE, ActionKind.MODIFY, ActionKind.CANCEL)
_SIDES = (Side.BUY, Side.SELL)


@cython.final
cdef class SendRoom:
    """The account's send state as order entry, its ``NonceManager`` and its ``RateBudget``
    publish it (pipeline.pxd): the nonce counter lives here, the rest is refreshed at each
    change of what it mirrors. Between changes the windows and in-flight counts only drain,
    so a stale value is the cautious one (less room, more in flight)."""

    def __init__(self, int64_t inflight_cap=16, int64_t expiry_ms=599_000):
        self.next_nonce = -1
        self.inflight_cap = inflight_cap
        self.expiry_ms = expiry_ms
        self.n_markets = 0

    cdef int64_t inflight_of(self, int64_t market) noexcept:
        cdef int i
        for i in range(self.n_markets):
            if self.markets[i] == market:
                return self.counts[i]
        return 0

    def set_inflight(self, int64_t market, int64_t n) -> None:
        """Order txs of ``market`` sent and not yet executed."""
        cdef int i
        for i in range(self.n_markets):
            if self.markets[i] == market:
                self.counts[i] = n
                return
        if self.n_markets == 64:
            raise ValueError("SendRoom tracks 64 markets at most")
        self.markets[self.n_markets] = market
        self.counts[self.n_markets] = n
        self.n_markets += 1

    cdef int64_t plan_inflight(self, int64_t market) noexcept:
        cdef int64_t n = self.inflight_of(market)
        return n if n >= self.pending else self.pending

    def in_flight(self, int64_t market) -> int:
        """What a strategy's plan reads as in flight: the market's count or every pending tx,
        the larger."""
        return self.plan_inflight(market)

    def order_room(self) -> tuple:
        """The budget as ``RateBudget.order_room`` gave it when last published."""
        return (self.usable, self.sendtx_used, self.sendtx_cap, self.ws_used, self.ws_cap)


cdef inline bint _read_int(object v, int64_t* out):
    # An exact int that fits int64 (the budget snapshot's numbers).
    if type(v) is not int and type(v) is not bool:
        raise TypeError(f"order_room gave {type(v).__name__}, not an int")
    out[0] = v
    return True


@cython.final
cdef class Pipeline:
    """The compiled step of one market (see the module doc).

    ``orders`` is the strategy's dict client_order_index -> ``Order`` (read in place at each
    plan); ``intents`` the strategy's modifies the venue has not shown yet
    (``ModifyIntents.pending``: coi -> (price, total size, deadline ns): until the deadline
    the order is busy and planned at those values); ``calls`` the set of
    cois with an order call in progress. ``room()`` gives the rate budget's ``order_room``
    snapshot (None: unlimited) and ``in_flight()`` the market's order txs in flight.
    """

    def __cinit__(self):
        # Zeroed: target() and the counts read it before any step has planned.
        self.w = <PlanScratch*>calloc(1, sizeof(PlanScratch))
        if self.w == NULL:
            raise MemoryError()
        self.w.n_held = 0
        self.n_out = 0
        self.c_valid = False
        self.c_n_held = 0

    def __dealloc__(self):
        self._release()
        self._drop_cache()
        if self.w != NULL:
            free(self.w)
            self.w = NULL

    def __init__(self, OrderBook book not None, QuoteEngine engine not None,
                 GateCore gate not None, params, *, orders, intents, calls, room=None,
                 in_flight=None, str reference="mid", int64_t widen_ticks=0,
                 bint widen_asks=True, int64_t ceiling=0, int64_t floor=0,
                 double fill_delay_s=0.0, int64_t min_notional=0):
        if not isinstance(params, PlannerParams):
            raise TypeError("params must be a PlannerParams")
        if type(orders) is not dict or type(intents) is not dict or type(calls) is not set:
            raise TypeError("orders and intents must be dicts, calls a set")
        if reference not in REFERENCES:
            raise ValueError(f"reference must be one of {sorted(REFERENCES)}, got {reference!r}")
        if widen_ticks < 0 or ceiling < 0 or floor < 0 or fill_delay_s < 0:
            raise ValueError("widen_ticks, ceiling, floor and fill_delay_s must be >= 0")
        self.book = book
        self.engine = engine
        self.gate = gate
        self.set_params(params)
        self.orders = orders
        self.intents = intents
        self.calls = calls
        if isinstance(room, SendRoom):
            self.sroom = room
            self.room = None
            self.in_flight = None
        else:
            self.room = room
            self.in_flight = in_flight
        self.ref_kind = REFERENCES[reference]
        self.widen_ticks = widen_ticks
        self.widen_asks = widen_asks
        self.ceiling = ceiling
        self.floor = floor
        self.min_notional = min_notional
        self.fill_delay_ns = fill_delay_s * 1e9
        self.running = False
        self.last_whole = False

    def set_params(self, params) -> None:
        """Take a ``PlannerParams`` (tolerances, age, in-flight cap, back-off)."""
        if not isinstance(params, PlannerParams):
            raise TypeError("params must be a PlannerParams")
        self.ptol = min(params.price_tolerance_ticks, 1 << 62)
        self.stol = min(params.size_tolerance_lots, 1 << 62)
        self.max_age_ns = min(params.max_order_age_ns, INT64_MAX)
        self.max_inflight = params.max_inflight
        self.wide_factor = min(params.wide_factor, 1 << 62)
        self.degraded_levels = min(params.degraded_levels, 1 << 61)
        self.wide_below = params.wide_below
        self.few_below = params.few_levels_below
        self.one_below = params.one_side_below
        self.version += 1

    # ------------------------------------------------------------------ the step
    cdef void _drop_cache(self) noexcept:
        cdef int i
        for i in range(self.c_n_held):
            Py_XDECREF(self.c_held[i])
        self.c_n_held = 0
        self.c_valid = False

    cdef int _load_orders(self, int64_t now_ns) except -1:
        """Our orders into the scratch, sorted, busy from their status only: from the slots
        read at this ``version`` (while no pending modify they took has run out), or read
        again from the Order objects and the intents (the references the read takes are kept
        with the slots)."""
        cdef PlanScratch* w = self.w
        cdef int s, i
        if self.c_valid and self.c_version == self.version and now_ns < self.c_until:
            for s in range(2):
                w.s[s].m = self.c_m[s]
                for i in range(self.c_m[s]):
                    w.s[s].o[i] = self.c_o[s][i]
            return 0
        self._drop_cache()
        w.s[0].m = 0
        w.s[1].m = 0
        w.n_held = 0
        ok = plan_read_orders(w, self.orders, self.max_age_ns > 0, self.intents, now_ns,
                              &self.c_until)
        for i in range(w.n_held):
            self.c_held[i] = w.held[i]  # now the slots' (released with them)
        self.c_n_held = w.n_held
        w.n_held = 0
        if not ok:
            self._drop_cache()
            raise ValueError("an order the compiled plan does not take (not an Order, a "
                             "field out of range, or more than 64 on a side)")
        plan_sort(w)
        for s in range(2):
            self.c_m[s] = w.s[s].m
            for i in range(w.s[s].m):
                self.c_o[s][i] = w.s[s].o[i]
        self.c_version = self.version
        self.c_valid = True
        self.order_reads += 1
        return 0

    cdef void _release(self) noexcept:
        cdef int i
        for i in range(self.n_out):
            Py_XDECREF(self.out[i].order)
            self.out[i].order = NULL
        self.n_out = 0

    def on_frame(self, data, int64_t now_ns) -> int:
        """Apply a market-data frame to the book; when it applied, the book is in sync and
        neither crossed nor locked, run the step. Returns the book's code (``APPLIED``,
        ``GAP``, ...); the actions are in ``n_out`` / ``action(i)``. A malformed frame raises
        ``BookError`` (nothing applied); a step that raises is counted in ``errors`` and
        left for the next one (the book stays applied)."""
        self.t_entry = monotonic_ns()
        return self._applied(self.book.apply_frame(data), now_ns)

    cdef int on_frame_c(self, const char* p, Py_ssize_t n, int64_t now_ns) except -2:
        """``on_frame`` on a frame's bytes in place (a compiled listener's); -1 when the book's
        scanner does not take the frame: nothing applied, the caller takes the Python path."""
        self.t_entry = monotonic_ns()
        cdef int code = self.book._scan_frame(p, n)
        if code < 0:
            return -1
        return self._applied(code, now_ns)

    cdef int _applied(self, int code, int64_t now_ns) except -2:
        """After the book took a frame (``code``): the step, when the book is usable."""
        cdef OrderBook book = self.book
        self.frames += 1
        self.seen_messages = book.messages
        self._release()
        if code != BOOK_APPLIED or book.is_crossed() or book.is_locked():
            return code
        try:
            self._sync_book()
            self._step(now_ns, now_ns)
        except Exception as exc:
            self.errors += 1
            self.last_error = exc
            self._release()
        return code

    def requote(self, int64_t now_ns, int64_t trigger_ns=0) -> int:
        """Run the step on the book as it is (no frame); the number of actions."""
        self.t_entry = monotonic_ns()
        self._release()
        self._sync_book()
        self._step(now_ns, trigger_ns or now_ns)
        return self.n_out

    cdef void _sync_book(self) except *:
        # What the strategy's on_book does: the gate's in-sync flag, a first mark.
        cdef OrderBook book = self.book
        cdef GateCore gate = self.gate
        cdef int64_t m2
        gate.book_in_sync = book.in_sync()
        if gate.mark_price == 0 and gate.book_in_sync:
            m2 = <int64_t>book.mid_x2()
            if m2 > 0:
                gate.mark_price = m2 // 2

    cdef int _step(self, int64_t now_ns, int64_t trigger_ns) except -1:
        cdef GateCore gate = self.gate
        cdef OrderBook book = self.book
        cdef PlanScratch* w = self.w
        cdef int64_t pos, ref, bid, ask
        cdef int64_t room[5]
        cdef const int64_t* room_p = NULL
        cdef int degrade, state
        cdef bint no_create, whole
        cdef double h
        cdef Py_ssize_t slot = self.st_head
        self.n_out = 0
        self.deferred = 0
        self.direct_i = -1
        # Guards (why_not_quote): no plan at all while one holds.
        if not self._guards_hold():
            self.last_whole = False
            self.s_valid = False
            return 0
        pos = gate.position_lots
        bid = book.best_bid()
        ask = book.best_ask()
        ref = self._ref()
        state = self._state(now_ns)
        no_create = state >> 4
        self.s_bid, self.s_ask, self.s_ref, self.s_pos = bid, ask, ref, pos
        self.s_state = state
        self.s_valid = True
        if (self.last_whole and bid == self.k_bid and ask == self.k_ask and ref == self.k_ref
                and pos == self.k_pos and self.version == self.k_version
                and state == self.k_state and now_ns < self.k_until):
            self.skipped += 1
            return 0
        self.steps += 1
        self.stamps[slot][0] = self.t_entry
        self._quote(pos, ref)
        self.stamps[slot][1] = monotonic_ns()
        w.n_held = 0
        try:
            self._read_orders(now_ns, no_create)
            # Budget back-off from one snapshot.
            degrade = PLAN_DEGRADE_NONE
            if self._room(room):
                room_p = room
                h = plan_room(room_p, 0)
                degrade = plan_degrade(h if h > 0 else 0.0, self.wide_below, self.few_below,
                                       self.one_below)
            self.degrade = degrade
            whole = self._shape_sides(pos, degrade)
            self.stamps[slot][2] = monotonic_ns()
            if whole:
                self.last_whole = degrade == PLAN_DEGRADE_NONE
                self.k_bid, self.k_ask, self.k_ref, self.k_pos = bid, ask, ref, pos
                self.k_version, self.k_state = self.version, state
                self.k_until = self._next_age(now_ns)
                self.stamps[slot][3] = self.stamps[slot][2]
            else:
                self.last_whole = False
                self.deferred = plan_choose(w, self.max_inflight - self._inflight(), room_p,
                                            None)
                self._gate_all(now_ns, False)
                self.stamps[slot][3] = monotonic_ns()
        finally:
            self._drop_held()
        self.st_head = (slot + 1) % STAGE_RING
        if self.st_count < STAGE_RING:
            self.st_count += 1
        return self.n_out

    cdef bint _room(self, int64_t* room) except -1:
        """The budget snapshot (``order_room``'s five counts) into ``room``; False when the
        step has no budget (unlimited)."""
        cdef int i
        if self.sroom is not None:
            room[0] = self.sroom.usable
            room[1] = self.sroom.sendtx_used
            room[2] = self.sroom.sendtx_cap
            room[3] = self.sroom.ws_used
            room[4] = self.sroom.ws_cap
            return True
        if self.room is not None:
            snap = self.room()
            for i in range(5):
                _read_int(snap[i], &room[i])
            return True
        return False

    cdef int64_t _inflight(self) except? -1:
        """Order txs of the market in flight, as the plan counts them."""
        if self.sroom is not None:
            return self.sroom.plan_inflight(self.book.market_id)
        if self.in_flight is not None:
            return self.in_flight()
        return 0

    cdef bint _guards_hold(self) noexcept:
        cdef GateCore gate = self.gate
        return not (not self.running or not gate.connector_ready or not gate.book_in_sync
                    or gate.kill_switch_tripped or gate.market_state == GM_INACTIVE)

    cdef int64_t _ref(self) noexcept:
        """The ladder's centre when it is not the mid (0: the mid)."""
        cdef double mp
        if self.ref_kind == REF_MICROPRICE:
            mp = self.book.microprice()
            if isfinite(mp) and mp > 0:
                return <int64_t>rint(mp)
        elif self.ref_kind == REF_LAST_TRADE:
            return self.last_trade_ref if self.last_trade_ref > 0 else 0
        return 0

    cdef int _state(self, int64_t now_ns) noexcept:
        """The market's state, with bit 4 set while the filled-order delay holds creates."""
        cdef bint no_create = (self.fill_delay_ns > 0 and self.last_fill_ns != 0
                               and <double>(now_ns - self.last_fill_ns) < self.fill_delay_ns)
        return self.gate.market_state | (no_create << 4)

    def warm(self, int64_t now_ns) -> bool:
        """Run the step's reading half again between frames, so the next frame finds its code
        and data in cache (``[run] warm_us``: a loop that polls without sleeping calls this
        in its idle time; on a shared machine a few ms of idling leave the step 2-3x slower).

        Only on the ladder's inputs of the last step (book top, reference, position, market
        state): the book's scanner runs on a private shadow book (``_warm_scan``), then it
        recomputes the quote and the target ladder from the same inputs into the
        scratch that step wrote, so ``target()`` reads the same, and reads our orders (as the
        next step will: from the slots, or again when their version moved) with their busy
        and aged marks and the plan's shape and sides into the plan's scratch, which every
        step writes before reading. Then the acting half, dry, on that target moved one
        price step (``_warm_actions``: planned, chosen, gated by the rules only, up to the
        direct path's send checks; the target put back, no action kept). Then the direct
        path's signer warms (``native.warm()``: a throwaway tx hashed, signed with constants and
        written, no key, nonce or commitment touched). Acts on nothing: no action, nonce,
        stamp or step counter changes. False (nothing run) when a guard holds or an input
        moved since the last step."""
        cdef OrderBook book = self.book
        cdef int64_t pos
        cdef int state
        if not self.s_valid or not self._guards_hold():
            return False
        pos = self.gate.position_lots
        state = self._state(now_ns)
        if (book.best_bid() != self.s_bid or book.best_ask() != self.s_ask
                or pos != self.s_pos or state != self.s_state or self._ref() != self.s_ref):
            return False
        self._warm_scan()
        self._quote(pos, self.s_ref)
        self.w.n_held = 0
        try:
            self._read_orders(now_ns, state >> 4)
            # The last plan's back-off: the shape it cut the target to stays as it was.
            self._shape_sides(pos, self.degrade)
            self._warm_actions(now_ns)
        finally:
            self._drop_held()
        sender = self.sender
        if sender is not None:
            ns = sender.native
            if ns is not None:
                ns.warm()
            wall_ms()  # the direct tx's ExpiredAt clock read, kept warm with the rest
        self.warms += 1
        return True

    cdef int _warm_scan(self) except -1:
        """The book's frame scanner for warm(), on a private shadow of the market's book: a
        snapshot (which resets it) then a delta on it, made once from the book's top and
        decimals in the venue's frame layout. The market's book is not touched; its own
        levels stay as cold as the frames leave them, the code that reads them does not."""
        cdef OrderBook sh = self.shadow
        cdef const char* p
        if self.shadow_off:
            return 0
        if sh is None:
            sh = self._make_shadow()
            if sh is None:
                self.shadow_off = True
                return 0
        p = self.shadow_snap
        if sh._scan_frame(p, len(self.shadow_snap)) != BOOK_APPLIED:
            self.shadow_off = True
            return 0
        p = self.shadow_delta
        if sh._scan_frame(p, len(self.shadow_delta)) != BOOK_APPLIED:
            self.shadow_off = True
            return 0
        self.warm_scans += 1
        return 0

    cdef OrderBook _make_shadow(self):
        """The shadow book and its two frames (None: the book's top is too low to copy)."""
        cdef OrderBook book = self.book
        cdef int64_t bid = book.best_bid(), ask = book.best_ask()
        cdef int pd = book.price_decimals, sd = book.size_decimals
        if bid <= 8 or ask <= bid:
            return None

        def lv(int64_t px, int64_t lots):
            return {"price": format_units(px, pd), "size": format_units(lots, sd)}

        channel = f"order_book:{book.market_id}"
        snap = {"code": 0, "asks": [lv(ask + i, 10 + i) for i in range(5)],
                "bids": [lv(bid - i, 10 + i) for i in range(5)], "offset": 1, "nonce": 1}
        delta = {"code": 0, "asks": [lv(ask, 0), lv(ask + 5, 7)], "bids": [lv(bid - 1, 12)],
                 "offset": 2, "nonce": 2, "begin_nonce": 1}
        self.shadow_snap = orjson.dumps({"channel": channel, "offset": 1, "order_book": snap,
                                         "timestamp": 1, "type": "subscribed/order_book"})
        self.shadow_delta = orjson.dumps({"channel": channel, "offset": 2, "order_book": delta,
                                          "timestamp": 2, "type": "update/order_book"})
        self.shadow = OrderBook(book.market_id, pd, sd, book.window)
        return self.shadow

    cdef int _warm_actions(self, int64_t now_ns) except -1:
        """The step's acting half, dry, for warm(): the target just read moved one price
        step past the refresh tolerance (bids down, asks up), planned against our orders,
        chosen, and gated up to the first tx the step would send itself (``_gate_all`` and
        ``_direct`` dry: the gate's rules only, no nonce, signature or send). On a shared
        machine the code of this half goes cold between frames as the reading half does,
        and a frame that moves the quote runs it. The target is put back, the dry actions
        dropped: ``target()``, ``n_out`` and ``action(i)`` read as before."""
        cdef PlanScratch* w = self.w
        cdef int64_t saved[2][PLAN_CAP]
        cdef int64_t room[5]
        cdef const int64_t* room_p = NULL
        cdef int s, i, n0 = self.n_out
        cdef int64_t step = self.gate.price_step if self.gate.price_step > 0 else 1
        cdef int64_t tol = plan_widen(self.ptol, self.wide_factor, self.degrade)
        cdef int64_t shift = step * (tol // step + 1)
        for s in range(2):
            for i in range(w.s[s].n_lvl):
                saved[s][i] = w.s[s].tp[i]
                w.s[s].tp[i] += shift if s else -shift
        try:
            if not self._plan_sides(self.degrade) and n0 + 2 * w.n_grp <= 4 * PLAN_CAP:
                if self._room(room):
                    room_p = room
                plan_choose(w, self.max_inflight - self._inflight(), room_p, None)
                self._gate_all(now_ns, True)
                self.warm_plans += 1
        finally:
            for s in range(2):
                for i in range(w.s[s].n_lvl):
                    w.s[s].tp[i] = saved[s][i]
            for i in range(n0, self.n_out):
                Py_XDECREF(self.out[i].order)
                self.out[i].order = NULL
            self.n_out = n0
        return 0

    cdef int _quote(self, int64_t pos, int64_t ref) except -1:
        """The target ladder into the scratch's levels (none unless the market is active)."""
        self.w.s[0].n_lvl = 0
        self.w.s[1].n_lvl = 0
        if (self.gate.market_state == GM_ACTIVE
                and self.engine.compute_from_book(self.book, pos, ref) > 0):
            self._target()
        return 0

    cdef int _read_orders(self, int64_t now_ns, bint no_create) except -1:
        """Our orders into the plan's scratch, busy and aged, best first (the references the
        read holds are released by _drop_held)."""
        self._load_orders(now_ns)
        self._busy_aged(now_ns)
        self.w.s[0].no_create = no_create
        self.w.s[1].no_create = no_create
        return 0

    cdef bint _shape_sides(self, int64_t pos, int degrade) noexcept:
        """The target cut to the back-off's shape, then both sides planned: True when the
        book already holds the target (nothing to do)."""
        plan_shape(self.w, degrade, self.degraded_levels,
                   1 if pos > 0 else (-1 if pos < 0 else 0))
        return self._plan_sides(degrade)

    cdef bint _plan_sides(self, int degrade) noexcept:
        """Both sides planned against the scratch's target, the tolerances widened for the
        back-off: True when the book already holds the target."""
        return plan_sides(self.w, plan_widen(self.ptol, self.wide_factor, degrade),
                          plan_widen(self.stol, self.wide_factor, degrade), degrade)

    cdef void _drop_held(self) noexcept:
        cdef int i
        for i in range(self.w.n_held):
            Py_XDECREF(self.w.held[i])
        self.w.n_held = 0

    cdef void _target(self) noexcept:
        """The engine's ladder into the scratch's levels, then market_making's shaping: the
        wider fixed-mode side moved out (bids that fall to zero or under the venue minimum
        dropped), bids above the ceiling and asks below the floor dropped."""
        cdef QuoteEngine e = self.engine
        cdef SideIn* B = &self.w.s[0]
        cdef SideIn* A = &self.w.s[1]
        cdef int i, n = 0
        cdef int64_t p, q, d = self.widen_ticks
        for i in range(e.n_bids):
            p = e._bid_px[i]
            q = e._bid_sz[i]
            if d and not self.widen_asks:
                p -= d
                if p <= 0 or not mmpl_ge128(p, q, self.min_notional):
                    continue
            if self.ceiling and p > self.ceiling:
                continue
            B.tp[n] = p
            B.tq[n] = q
            n += 1
        B.n_lvl = n
        n = 0
        for i in range(e.n_asks):
            p = e._ask_px[i]
            q = e._ask_sz[i]
            if d and self.widen_asks:
                p += d
            if self.floor and p < self.floor:
                continue
            A.tp[n] = p
            A.tq[n] = q
            n += 1
        A.n_lvl = n

    cdef int _busy_aged(self, int64_t now_ns) except -1:
        cdef PlanScratch* w = self.w
        cdef int s, i
        cdef Ord* o
        cdef object coi
        cdef bint any_calls = len(self.calls) > 0
        cdef bint any_mod = len(self.intents) > 0
        for s in range(2):
            for i in range(w.s[s].m):
                o = &w.s[s].o[i]
                if (any_calls or any_mod) and not o.busy:
                    coi = o.coi
                    if any_calls and coi in self.calls:
                        o.busy = True
                    elif any_mod:
                        p = self.intents.get(coi)
                        if p is not None and p[2] > now_ns:
                            o.busy = True
                if self.max_age_ns > 0:
                    o.aged = now_ns - o.created >= self.max_age_ns
        return 0

    cdef int64_t _next_age(self, int64_t now_ns) noexcept:
        # The first time an order of the plan ages (a replace is due then): INT64_MAX if never.
        cdef PlanScratch* w = self.w
        cdef int s, i
        cdef int64_t t, first = INT64_MAX
        if self.max_age_ns <= 0:
            return INT64_MAX
        for s in range(2):
            for i in range(w.s[s].m):
                t = w.s[s].o[i].created
                if t <= INT64_MAX - self.max_age_ns and t + self.max_age_ns < first:
                    first = t + self.max_age_ns
        return first

    cdef int _gate_all(self, int64_t now_ns, bint dry) except -1:
        """The chosen groups' actions, in send order, through the risk gate: creates and
        modifies admitted or denied (a refused modify the position cap catches moving away is
        replaced by a cancel), cancels never gated. After each admitted create the gate's open
        counts are those the strategy's recount gives once it has placed it.

        ``dry`` (the warm-up): the gate's rules only (nothing recorded or counted, no
        recount), the actions put after the step's own, and it ends once the first
        sendable one went through ``_direct``, dry too."""
        cdef PlanScratch* w = self.w
        cdef GateCore gate = self.gate
        cdef int i, k, r, side
        cdef Grp* g
        cdef Act* a
        cdef Ord* o
        cdef int64_t price, size
        cdef bint away
        cdef int scan = self.n_out
        cdef bint tried = self.sender is None
        cdef object base = None
        mods = []  # (Order, new remaining) of admitted modifies
        creates = [0, 0, 0]  # orders, bid lots, ask lots of admitted creates
        for i in range(w.n_grp):
            g = &w.g[w.rank[i]]
            if not g.chosen:
                continue
            side = g.side
            for k in range(g.n):
                if not tried and scan < self.n_out:
                    tried = self._first_sendable(&scan, dry)
                    if tried and dry:
                        return 0
                a = &g.a[k]
                if a.kind == PLAN_CANCEL:
                    o = &w.s[side].o[a.ordi]
                    self._put(PLAN_CANCEL, side, a.level, o.price, o.rem, o.obj, G_OK,
                              g.urgent[k], False)
                    continue
                price = w.s[side].tp[a.level]
                size = w.s[side].tq[a.level]
                if a.kind == PLAN_MODIFY:
                    o = &w.s[side].o[a.ordi]
                    order = <object>o.obj
                    if dry:
                        r = gate._rules(side, price, size, order.reduce_only, True)
                    else:
                        r = gate.admit_c(side, price, size, order.reduce_only, True, now_ns)
                    self._put(PLAN_MODIFY, side, a.level, price, size, o.obj, r, g.urgent[k],
                              False)
                    if r == G_OK:
                        mods.append((order, size))
                    elif r == G_MAX_POSITION:
                        away = price < o.price if side == 0 else price > o.price
                        if away:
                            self._put(PLAN_CANCEL, side, a.level, o.price, o.rem, o.obj, G_OK,
                                      g.urgent[k], True)
                    continue
                if dry:
                    r = gate._rules(side, price, size, False, False)
                else:
                    r = gate.admit_c(side, price, size, False, False, now_ns)
                self._put(PLAN_CREATE, side, a.level, price, size, NULL, r, g.urgent[k], False)
                if r == G_OK and not dry:
                    creates[0] += 1
                    creates[1 + side] += size
                    if base is None:
                        base = count_open(self.orders.values(), self.intents, now_ns)
                    self._recount(base, mods, creates)
        if not tried and scan < self.n_out:
            self._first_sendable(&scan, dry)
        return 0

    cdef bint _first_sendable(self, int* scan, bint dry) except -1:
        """Once the first action that is sent is gated: send it here when it can go (True:
        decided, nothing more to try this step)."""
        cdef Out* a
        while scan[0] < self.n_out:
            a = &self.out[scan[0]]
            if a.kind == PLAN_CANCEL or a.reason == G_OK:
                if a.kind != PLAN_CREATE:
                    self._direct(scan[0], dry)
                return True
            scan[0] += 1
        return False

    cdef void _recount(self, tuple base, list mods, list creates) except *:
        cdef GateCore gate = self.gate
        n, bids, asks = base
        for order, size in mods:
            if order.reduce_only or order.status.is_terminal:
                continue
            # Until the venue shows the modify the order may hold either remaining: the
            # larger counts (count_open's rule for a pending modify).
            rem = order.remaining_lots
            if size <= rem:
                continue
            if order.side is Side.BUY:
                bids += size - rem
            else:
                asks += size - rem
        gate.open_orders = n + creates[0]
        gate.open_bid_lots = bids + creates[1] + gate.unreported_bid_lots
        gate.open_ask_lots = asks + creates[2] + gate.unreported_ask_lots

    cdef void _put(self, int kind, int side, int level, int64_t price, int64_t size,
                   PyObject* order, int reason, bint urgent, bint instead) noexcept:
        cdef Out* out = &self.out[self.n_out]
        out.kind = kind
        out.side = side
        out.level = level
        out.price = price
        out.size = size
        out.order = order
        Py_XINCREF(order)
        out.reason = reason
        out.urgent = urgent
        out.instead = instead
        self.n_out += 1

    def attach_sender(self, sender) -> None:
        """Sign and send the first tx of each step here, before Python books it: ``sender``
        is order entry's ``DirectSender`` (``native``, ``send``, ``sent``, ``room``: its
        ``SendRoom``, which becomes the step's room), None to stop. Only a modify or a cancel
        goes this way (a create needs a client order index and the tracker first); the
        strategy books it with ``sender.sent`` before anything else
        (``MarketMaking._send_step``)."""
        self.sender = sender
        if sender is not None:
            self.sroom = sender.room
            self.sroom.watched = True
            self.room = None
            self.in_flight = None

    cdef int _direct(self, int i, bint dry) except -1:
        """Action ``i``, the step's first tx to send (a modify or a cancel), when order entry
        would send it now: its nonce, signature and sendtx frame, handed to the order socket
        before the rest of the plan is gated. ``dry`` (the warm-up): the same reads, nothing
        taken, signed or sent (the signer warms apart)."""
        cdef Out* a = &self.out[i]
        cdef SendRoom r = self.sroom
        cdef int64_t market = self.book.market_id
        if (r is None or not r.nonce_ready or not r.entry_ok or not r.ws_ok
                or r.next_nonce < 0 or r.inflight_of(market) >= r.inflight_cap):
            return 0  # order entry sends it (after what waits, within its caps)
        if dry:
            self.warm_directs += 1
            return 0
        # The nonce, and the frame and budget spoken for until order entry publishes again.
        self.direct_nonce = r.next_nonce
        r.next_nonce += 1
        r.entry_ok = False
        r.ws_ok = False
        self.t_ready = monotonic_ns()
        self.direct_i = i
        self.direct_expired_at = wall_ms() + r.expiry_ms
        coi = (<object>a.order).client_order_index
        self.direct_info = None
        self.direct_hash = ""
        self.direct_sent = False
        sender = self.sender
        ns = sender.native
        try:
            if a.kind == PLAN_MODIFY:
                info, h = ns.sign_modify_order(market, coi, a.size, a.price, 0,
                                               self.direct_nonce, self.direct_expired_at)
                head = b'{"type":"jsonapi/sendtx","data":{"tx_type":17,"tx_info":'
            else:
                info, h = ns.sign_cancel_order(market, coi, self.direct_nonce,
                                               self.direct_expired_at)
                head = b'{"type":"jsonapi/sendtx","data":{"tx_type":15,"tx_info":'
        except Exception:
            return 0  # direct_info None: the strategy gives the nonce back, sends it normally
        self.t_signed = monotonic_ns()
        self.direct_info = info
        self.direct_hash = h
        frame = head + (<str>info).encode() + b'}}'
        self.t_sent = monotonic_ns()  # handed to the socket (the write follows)
        try:
            self.direct_sent = bool(sender.send(frame))
        except Exception:
            self.direct_sent = False  # booked as a lost frame: recovered as any other
        self.direct_sends += 1
        return 0

    # ------------------------------------------------------------------ reading
    def action(self, int i):
        """Action ``i`` of the last step: (kind, side, level, price_ticks, size_lots, order,
        reason, urgent, instead); ``order`` None for a create, ``reason`` ``RiskReason.OK``
        when admitted, ``instead``: a cancel replacing a modify the position cap refused."""
        if not 0 <= i < self.n_out:
            raise IndexError(f"action {i} of {self.n_out}")
        cdef Out* a = &self.out[i]
        return (_KINDS[a.kind], _SIDES[a.side], a.level, a.price, a.size,
                None if a.order == NULL else <object>a.order, RiskReason(a.reason),
                a.urgent, a.instead)

    def target(self):
        """The last step's target ladder (bids, asks) as (price_ticks, size_lots), best first,
        after the back-off's cut."""
        cdef SideIn* S
        out = []
        for s in range(2):
            S = &self.w.s[s]
            out.append([(S.tp[i], S.tq[i]) for i in range(S.n_lvl)])
        return out[0], out[1]

    def drain_stages(self):
        """The stage stamps of the steps that planned since the last drain (the last
        ``STAGE_RING`` at most), oldest first: (entry, quoted, planned, gated), CLOCK_MONOTONIC
        ns; entry is the call's start (on_frame: before the frame is applied)."""
        cdef Py_ssize_t n = self.st_count, start = (self.st_head - n) % STAGE_RING, i, j
        out = []
        for i in range(n):
            j = (start + i) % STAGE_RING
            out.append((self.stamps[j][0], self.stamps[j][1], self.stamps[j][2],
                        self.stamps[j][3]))
        self.st_count = 0
        return out
