# cython: language_level=3
# Requote planner in C (docs/risk.md, "Requote planner"): the scratch one plan is worked out in,
# and plan_into, the entry a compiled pipeline cimports to plan with a scratch it owns. Same plan
# as plan_requotes (and its pure-Python twin mmfast.reference.planner); keep these stable.

from cpython.object cimport PyObject
from libc.stdint cimport int64_t


# Levels, and orders, per side the C path takes (MAX_PER_SIDE in Python); more: the reference.
cdef enum:
    PLAN_CAP = 64

# Action kinds: the values of mmfast.core.plan_types.ActionKind.
cdef enum:
    PLAN_CREATE = 0
    PLAN_MODIFY = 1
    PLAN_CANCEL = 2

# How far a plan backed off to save rate budget: the values of mmfast.core.plan_types.Degrade.
cdef enum:
    PLAN_DEGRADE_NONE = 0
    PLAN_DEGRADE_WIDE = 1
    PLAN_DEGRADE_FEW_LEVELS = 2
    PLAN_DEGRADE_ONE_SIDE = 3


# One live order of a side, as the plan reads it.
cdef struct Ord:
    PyObject* obj                # the Order (held)
    PyObject* price_obj          # its price_ticks (held): a cancel carries this object
    int64_t price                # price_ticks
    int64_t rem                  # size_lots - filled_lots
    int64_t coi                  # client_order_index (tie-break of every ranking)
    int64_t created              # created_ns (read only when max_order_age_ns > 0, else 0)
    int status                   # OrderStatus value (0, 1, 2 or 7: the statuses acted on)
    bint busy                    # tx in flight: PENDING_NEW / UNKNOWN, or listed in busy
    bint aged                    # max_age > 0 and now - created >= max_age


# One side's target levels and live orders.
cdef struct SideIn:
    int n_lvl                    # levels in play (after the FEW_LEVELS cut)
    int64_t tp[PLAN_CAP]         # level price (ticks), best first
    int64_t tq[PLAN_CAP]         # level size (lots)
    PyObject* lvl[PLAN_CAP]      # the (price, size) tuples (held): creates/modifies reuse them
    int m                        # orders of this side (OPEN, PARTIALLY_FILLED, in motion)
    Ord o[PLAN_CAP]              # best first once sorted
    bint no_create               # this side is in no_create: modifies and cancels only
    bint active                  # quoted in this plan (False: the side ONE_SIDE drops)


# One action of a group: what it does, to which level and which order.
cdef struct Act:
    int kind                     # PLAN_CREATE, PLAN_MODIFY or PLAN_CANCEL
    int level                    # Action.level: target level, -1 for surplus cancels
    int ordi                     # index into the side's orders, -1 for a create


# Actions sent together or not at all (a replace is a create and a cancel).
cdef struct Grp:
    int64_t key                  # (not urgent, level, side) packed: lower goes first
    int side                     # 0 bids, 1 asks
    int n                        # 1, or 2 for a replace (create, then cancel)
    bint chosen                  # fits the in-flight cap and the budget: sent in this plan
    bint urgent_cancels          # every action an urgent cancel: skips the budget check
    bint holdable                # has a non-urgent cancel (the never-dark pass may hold it)
    bint urgent[2]               # per action: urgent (Action.urgent)
    Act a[2]                     # the actions, in send order


# Everything one plan works in (about 34 KB). Nothing in it outlives the call: plan_into overwrites
# it, and releases the references it took before it returns. One plan at a time per scratch.
cdef struct PlanScratch:
    SideIn s[2]                  # [bids, asks]
    int n_grp                    # groups in g
    Grp g[4 * PLAN_CAP]          # the groups, in the order they were made
    int rank[4 * PLAN_CAP]       # group indexes in send order
    int n_kept                   # orders in kept
    PyObject* kept[2 * PLAN_CAP]  # orders left as they are (Plan.kept)
    int n_wait                   # orders in wait
    PyObject* wait[2 * PLAN_CAP]  # orders waiting on a tx in flight or a degraded side
    int n_held                   # references in held
    PyObject* held[6 * PLAN_CAP]  # references taken by this call, released at its end


# plan_requotes(bids, asks, live, now_ns=..., params=..., ...) with every argument given, in a
# scratch the caller owns: the same Plan, or the same exception (the reference plans what the C
# path does not take).
cdef object plan_into(PlanScratch* w, object bids, object asks, object live, object now_ns,
                      object params, object inflight, object budget, object position_lots,
                      object busy, object no_create, object intents)


# The steps of a plan, for a compiled caller that fills the scratch itself (the sides' levels,
# orders sorted best first with busy/aged set, no_create): read our Order objects, back off
# for the budget, cut the ladder, match and rank, choose what fits. plan_into runs the same
# steps on Python inputs.
cdef bint plan_read_orders(PlanScratch* w, object live, bint need_created, object intents,
                           int64_t now, int64_t* until) noexcept
cdef void plan_sort(PlanScratch* w) noexcept nogil
cdef int plan_degrade(double headroom, double wide_below, double few_below,
                      double one_below) noexcept nogil
cdef int64_t plan_widen(int64_t tol, int64_t factor, int degrade) noexcept nogil
cdef void plan_shape(PlanScratch* w, int degrade, int64_t k_levels,
                     int position_sign) noexcept nogil
cdef bint plan_sides(PlanScratch* w, int64_t ptol, int64_t stol, int degrade) noexcept nogil
cdef double plan_room(const int64_t* room, int64_t n) noexcept nogil
cdef int plan_choose(PlanScratch* w, int64_t slots, const int64_t* room,
                     object budget) except -1
