# cython: language_level=3
# The compiled per-market step of market_making (docs/core.md, "The compiled step"): a book frame
# -> book -> quote -> plan -> risk gate -> the gated actions, with no Python object on the way.

from cpython.object cimport PyObject
from libc.stdint cimport int64_t

cimport cython

from mmfast._core.book cimport OrderBook
from mmfast._core.gate cimport GateCore
from mmfast._core.plan cimport PLAN_CAP, Ord, PlanScratch
from mmfast._core.quote cimport QuoteEngine


# Where the ladder is centred (market_making's reference_price).
cdef enum:
    REF_MID = 0
    REF_MICROPRICE = 1
    REF_LAST_TRADE = 2

# Stage stamps kept per step that planned (a ring read by Python on the tick).
cdef enum:
    STAGE_RING = 1024


# One action of a step, in send order: what Python sends (or journals, when denied).
cdef struct Out:
    int kind                 # PLAN_CREATE, PLAN_MODIFY or PLAN_CANCEL
    int side                 # 0 buy, 1 sell
    int level                # target level, -1 for a surplus cancel
    int64_t price            # create/modify: the new price; cancel: the order's price
    int64_t size             # create/modify: the size left on the book; cancel: remaining
    PyObject* order          # modify/cancel: the Order (held until the next step), else NULL
    int reason               # 0 admitted (cancels always), else the gate's RiskReason value
    bint urgent              # the planner's urgency
    bint instead             # a cancel sent instead of a modify the position cap refused


# What order entry, its nonce manager and the rate budget publish for the compiled steps of one
# account (each at its own changes), so a step reads them without calling Python: the nonce
# counter itself, whether a tx may go out now, the budget and the txs in flight.
@cython.final
cdef class SendRoom:
    cdef public int64_t next_nonce        # the nonce manager's counter (its one copy)
    cdef public bint nonce_ready          # nonce state READY and nothing held
    cdef public bint entry_ok             # order entry would send a frame now, first in order
    cdef public bint ws_ok                # the budget admits one more sendtx frame now
    cdef public bint usable               # order_room: the budget is not blocked or reserved
    cdef public int64_t sendtx_used, sendtx_cap, ws_used, ws_cap   # order_room's counts
    cdef public int64_t pending           # txs assigned or held, not yet answered
    cdef public int64_t inflight_cap      # order txs in flight per market, at most
    cdef public int64_t expiry_ms         # ExpiredAt = wall ms + this (the signer's rule)
    cdef public bint watched              # a step sends through it (else entry_ok stays False)
    cdef int n_markets
    cdef int64_t markets[64]              # markets with an in-flight count
    cdef int64_t counts[64]               # their order txs sent and not yet executed

    cdef int64_t inflight_of(self, int64_t market) noexcept
    cdef int64_t plan_inflight(self, int64_t market) noexcept


@cython.final
cdef class Pipeline:
    cdef readonly OrderBook book          # the market's book (the connector's)
    cdef readonly QuoteEngine engine      # the strategy's quote engine
    cdef readonly GateCore gate           # the strategy's risk gate (its state is the truth)
    cdef PlanScratch* w                   # the plan's scratch (malloc'd, ~34 KB)
    # planner parameters (PlannerParams)
    cdef int64_t ptol, stol, max_age_ns, max_inflight, wide_factor, degraded_levels
    cdef double wide_below, few_below, one_below
    # the ladder's shape beyond the engine (market_making's fixed-mode spreads, price band)
    cdef int64_t widen_ticks              # the wider side moves out by this (multiple of step)
    cdef bint widen_asks                  # True: asks move up; False: bids move down
    cdef int64_t ceiling, floor           # bids above / asks below are dropped (0: none)
    cdef int64_t min_notional             # the venue minimum (widened bids are checked)
    cdef int ref_kind                     # REF_*
    # inputs Python keeps current
    cdef public int64_t last_trade_ref    # REF_LAST_TRADE: the ladder's centre in ticks
    cdef public bint running              # the strategy runs (else no step plans)
    cdef public int64_t last_fill_ns      # the filled-order delay counts from here (0: none)
    cdef public double fill_delay_ns      # no creates while now - last_fill_ns < this
    cdef public int64_t version           # bumped by Python on any change of our orders
    cdef object orders                    # the strategy's dict coi -> Order (read in place)
    cdef object intents                   # ModifyIntents.pending: coi -> (price, size, deadline)
    cdef object calls                     # the strategy's set of cois with a call in progress
    cdef object room                      # () -> order_room snapshot, or None (unlimited)
    cdef SendRoom sroom                   # the published state (room, in flight, nonces)
    cdef object in_flight                 # () -> order txs of the market in flight, or None
    # our orders as last read (sorted, busy from their status only), reused while `version`
    # is unchanged: a frame reads contiguous C slots, not a dozen Python objects
    cdef int64_t c_version
    cdef int64_t c_until                  # the read holds until then (an intent's deadline)
    cdef bint c_valid
    cdef int c_m[2]
    cdef Ord c_o[2][PLAN_CAP]
    cdef int c_n_held
    cdef PyObject* c_held[4 * PLAN_CAP]
    cdef readonly int64_t order_reads    # times our orders were read from the Python objects
    # the last plan, for skipping a step whose inputs are those of a plan on target
    cdef bint last_whole
    cdef int64_t k_bid, k_ask, k_ref, k_pos, k_version, k_until
    cdef int k_state
    # the ladder's inputs of the last step that passed its guards: warm() reruns the step's
    # reading half only on these (so the target it rewrites is the one that step wrote)
    cdef bint s_valid
    cdef int64_t s_bid, s_ask, s_ref, s_pos
    cdef int s_state
    cdef readonly int64_t warms           # warm() calls that ran
    cdef readonly int64_t warm_plans      # ... whose dry acting half gated actions
    cdef readonly int64_t warm_directs    # ... and reached the direct path's send checks
    cdef readonly int64_t warm_scans      # ... whose shadow book took its two frames
    cdef OrderBook shadow                 # warm(): a private book the scanner runs on
    cdef bytes shadow_snap, shadow_delta  # ... its snapshot and a delta on it
    cdef bint shadow_off                  # ... not made or not taken: no scan warm-up
    # output
    cdef readonly int n_out               # actions of the last step
    cdef Out out[4 * PLAN_CAP]
    cdef readonly int degrade             # the last plan's back-off (Degrade value)
    cdef readonly int deferred            # txs the last plan left for later
    # the first tx signed and sent by the step itself (attach_sender), -1: none this step
    cdef object sender                    # OrderEntry's DirectSender (None: not attached)
    cdef readonly int direct_i            # its action index
    cdef readonly int64_t direct_nonce    # its nonce
    cdef readonly int64_t direct_expired_at   # its ExpiredAt (wall ms)
    cdef readonly object direct_info      # its tx_info (None: signing failed, nonce given back)
    cdef readonly object direct_hash      # its tx hash
    cdef readonly bint direct_sent        # the socket took the frame
    cdef readonly int64_t t_ready         # CLOCK_MONOTONIC ns: the tx had its nonce
    cdef readonly int64_t t_signed        # ... was signed
    cdef readonly int64_t t_sent          # ... its frame was handed to the socket (before
                                          #     the write)
    cdef readonly int64_t direct_sends    # txs sent this way
    # counters
    cdef readonly int64_t frames          # frames applied through on_frame
    cdef readonly int64_t steps           # steps that planned
    cdef readonly int64_t skipped         # steps skipped: same inputs as a plan on target
    cdef readonly int64_t errors          # steps that raised (book applied, no plan)
    cdef readonly object last_error       # the last such exception (Python logs it)
    cdef readonly int64_t seen_messages   # the book's message count after the last on_frame
    # stage stamps: entry, quoted, planned, gated (CLOCK_MONOTONIC ns)
    cdef readonly int64_t t_entry         # CLOCK_MONOTONIC ns: the last on_frame's start
    cdef int64_t stamps[STAGE_RING][4]
    cdef Py_ssize_t st_head, st_count

    cdef int on_frame_c(self, const char* p, Py_ssize_t n, int64_t now_ns) except -2
    cdef int _applied(self, int code, int64_t now_ns) except -2
    cdef void _release(self) noexcept
    cdef void _drop_cache(self) noexcept
    cdef int _load_orders(self, int64_t now_ns) except -1
    cdef void _sync_book(self) except *
    cdef int _step(self, int64_t now_ns, int64_t trigger_ns) except -1
    cdef bint _guards_hold(self) noexcept
    cdef int _quote(self, int64_t pos, int64_t ref) except -1
    cdef int _read_orders(self, int64_t now_ns, bint no_create) except -1
    cdef bint _shape_sides(self, int64_t pos, int degrade) noexcept
    cdef bint _plan_sides(self, int degrade) noexcept
    cdef void _drop_held(self) noexcept
    cdef int64_t _ref(self) noexcept
    cdef int _state(self, int64_t now_ns) noexcept
    cdef void _target(self) noexcept
    cdef int _busy_aged(self, int64_t now_ns) except -1
    cdef int64_t _next_age(self, int64_t now_ns) noexcept
    cdef int _gate_all(self, int64_t now_ns, bint dry) except -1
    cdef int _direct(self, int i, bint dry) except -1
    cdef bint _first_sendable(self, int* scan, bint dry) except -1
    cdef int _warm_actions(self, int64_t now_ns) except -1
    cdef int _warm_scan(self) except -1
    cdef OrderBook _make_shadow(self)
    cdef bint _room(self, int64_t* room) except -1
    cdef int64_t _inflight(self) except? -1
    cdef void _recount(self, tuple base, list mods, list creates) except *
    cdef void _put(self, int kind, int side, int level, int64_t price, int64_t size,
                   PyObject* order, int reason, bint urgent, bint instead) noexcept
