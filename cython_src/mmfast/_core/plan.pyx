# cython: language_level=3
"""Compiled requote planner: target ladder vs live orders -> keep / modify / cancel / create.

``plan_requotes`` has the signature, the rules and the output of the pure-Python twin
``mmfast.reference.planner.plan_requotes`` (the property test holds the two equal, action for
action): the rules are described in ``mmfast.strategy.planner`` and docs/risk.md.

How it is fast: every order and level is read once into small C arrays (order slots are read at
their ``__slots__`` offsets, no attribute lookup), the per-side matching, pairing and ranking run
as typed C loops over those arrays (insertion sorts, no dict, set or key function), and the
``Action``/``Plan`` objects are built only for what is sent, straight into their slots. What the
C path does not take (more than ``MAX_PER_SIDE`` levels or orders on a side, an int beyond its
bounds, a field that is not an exact int, an order that is not an ``Order``, parameters that are
not a ``PlannerParams``, a ``busy``/``no_create`` that is not a list, tuple, set, frozenset or
dict) goes to the reference, before the budget is read, so the budget is asked once either way.

A compiled caller cimports ``plan_into`` and ``PlanScratch`` from plan.pxd and plans in a scratch
it owns; ``plan_requotes`` is ``plan_into`` with a scratch on its stack.
"""

from cpython.object cimport PyObject
from cpython.dict cimport PyDict_GetItem, PyDict_Next, PyDict_Size
from cpython.dict cimport PyDict_CheckExact
from cpython.tuple cimport PyTuple_New
from libc.stdint cimport int64_t

import dataclasses

from mmfast.core.plan_types import (
    UNLIMITED,
    Action,
    ActionKind,
    Degrade,
    Plan,
    PlannerParams,
    UnlimitedBudget,
)
from mmfast.core.types import Order, OrderStatus, Side
from mmfast.reference.planner import plan_requotes as _reference_plan

cdef extern from *:
    """
    #include "structmember.h"  /* PyMemberDef (Python 3.11) */

    /* An object slot of a __slots__ class, by byte offset; NULL when unset. */
    #define MMP_SLOT(o, off) (*(PyObject **)((char *)(o) + (off)))

    /* Byte offset of a __slots__ member descriptor (an object slot), or -1 if it is not one. */
    static Py_ssize_t mmp_slot_offset(PyObject *descr) {
        PyMemberDef *m;
        if (descr == NULL || Py_TYPE(descr) != &PyMemberDescr_Type) return -1;
        m = ((PyMemberDescrObject *)descr)->d_member;
        if (m->type != 16 /* T_OBJECT_EX */ || m->offset <= 0) return -1;
        return m->offset;
    }

    static inline PyObject *mmp_get(PyObject *o, Py_ssize_t off) { return MMP_SLOT(o, off); }

    static inline int mmp_type_is(PyObject *o, PyObject *t) { return (PyObject *)Py_TYPE(o) == t; }

    /* Store o (borrowed) at i of a fresh tuple. */
    static inline void mmp_tuple_put(PyObject *t, Py_ssize_t i, PyObject *o) {
        Py_INCREF(o);
        PyTuple_SET_ITEM(t, i, o);
    }

    /* The value of an int (or int subclass) of at most two 30-bit digits, read in place: the
       conversion call is a fifth of an on-target plan otherwise. 0 when it is bigger. */
    static inline int mmp_compact(PyObject *v, int64_t *out) {
    #if PY_VERSION_HEX >= 0x030C0000
        if (!PyUnstable_Long_IsCompact((PyLongObject *)v)) return 0;
        *out = (int64_t)PyUnstable_Long_CompactValue((PyLongObject *)v);
        return 1;
    #else
        const digit *d = ((PyLongObject *)v)->ob_digit;
        switch (Py_SIZE(v)) {
            case 0: *out = 0; return 1;
            case 1: *out = (int64_t)d[0]; return 1;
            case -1: *out = -(int64_t)d[0]; return 1;
            case 2: *out = ((int64_t)d[1] << PyLong_SHIFT) | (int64_t)d[0]; return 1;
            case -2: *out = -(((int64_t)d[1] << PyLong_SHIFT) | (int64_t)d[0]); return 1;
            default: return 0;
        }
    #endif
    }

    /* v -> *out when v is an exact int within [lo, hi]; 0 otherwise (never an exception). */
    static inline int mmp_int(PyObject *v, int64_t lo, int64_t hi, int64_t *out) {
        int overflow;
        long long x;
        int64_t c;
        if (v == NULL || !PyLong_CheckExact(v)) return 0;
        if (mmp_compact(v, &c)) {
            if (c < lo || c > hi) return 0;
            *out = c;
            return 1;
        }
        x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow || x < lo || x > hi) return 0;
        *out = (int64_t)x;
        return 1;
    }

    /* v -> *out clamped into [lo, hi] when v is an exact int or of type alt (an IntEnum);
       0 otherwise. */
    static inline int mmp_int_clamp(PyObject *v, PyObject *alt, int64_t lo, int64_t hi,
                                    int64_t *out) {
        int overflow;
        long long x;
        if (v == NULL || !(PyLong_CheckExact(v) || (PyObject *)Py_TYPE(v) == alt)) return 0;
        if (mmp_compact(v, out)) {
            if (*out > hi) *out = hi;
            else if (*out < lo) *out = lo;
            return 1;
        }
        x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow > 0 || (!overflow && x > hi)) x = hi;
        else if (overflow < 0 || x < lo) x = lo;
        *out = (int64_t)x;
        return 1;
    }

    /* Items of an exact list or tuple (borrowed); 0 when seq is neither. */
    static inline int mmp_items(PyObject *seq, PyObject ***items, Py_ssize_t *n) {
        if (PyList_CheckExact(seq)) {
            *n = PyList_GET_SIZE(seq);
            *items = ((PyListObject *)seq)->ob_item;
            return 1;
        }
        if (PyTuple_CheckExact(seq)) {
            *n = PyTuple_GET_SIZE(seq);
            *items = ((PyTupleObject *)seq)->ob_item;
            return 1;
        }
        return 0;
    }

    /* Size of an exact set, frozenset, tuple, list or dict; -1 for anything else. */
    static inline Py_ssize_t mmp_coll_size(PyObject *c) {
        if (PyAnySet_CheckExact(c)) return PySet_GET_SIZE(c);
        if (PyTuple_CheckExact(c)) return PyTuple_GET_SIZE(c);
        if (PyList_CheckExact(c)) return PyList_GET_SIZE(c);
        if (PyDict_CheckExact(c)) return PyDict_GET_SIZE(c);
        return -1;
    }

    static inline void mmp_hold(PyObject **held, int *n, PyObject *o) {
        Py_INCREF(o);
        held[(*n)++] = o;
    }

    static inline void mmp_release(PyObject **held, int n) {
        int i;
        for (i = 0; i < n; i++) Py_DECREF(held[i]);
    }

    /* A fresh instance of a __slots__ dataclass with its n slots set from vals (borrowed),
       without running __init__: the import checks there is no __post_init__ and that the
       fields are exactly these slots. NULL (exception set) when out of memory. */
    static PyObject *mmp_make(PyObject *type, const Py_ssize_t *offs, PyObject *const *vals,
                              int n) {
        PyObject *o = ((PyTypeObject *)type)->tp_alloc((PyTypeObject *)type, 0);
        int i;
        if (o == NULL) return NULL;
        for (i = 0; i < n; i++) {
            Py_INCREF(vals[i]);
            MMP_SLOT(o, offs[i]) = vals[i];
        }
        return o;
    }

    /* A tuple of n borrowed items (new references). */
    static PyObject *mmp_tuple(PyObject *const *items, int n) {
        PyObject *t = PyTuple_New(n);
        int i;
        if (t == NULL) return NULL;
        for (i = 0; i < n; i++) {
            Py_INCREF(items[i]);
            PyTuple_SET_ITEM(t, i, items[i]);
        }
        return t;
    }

    static inline PyObject *mmp_bool(int b) { return b ? Py_True : Py_False; }  /* borrowed */

    static inline PyObject *mmp_tuple_item(PyObject *t, Py_ssize_t i) {
        return PyTuple_GET_ITEM(t, i);
    }

    static inline Py_ssize_t mmp_tuple_size(PyObject *t) {
        return PyTuple_CheckExact(t) ? PyTuple_GET_SIZE(t) : -1;
    }
    """
    Py_ssize_t mmp_slot_offset(PyObject* descr) noexcept
    PyObject* mmp_get(PyObject* o, Py_ssize_t off) noexcept nogil
    bint mmp_type_is(PyObject* o, PyObject* t) noexcept nogil
    void mmp_tuple_put(PyObject* t, Py_ssize_t i, PyObject* o) noexcept
    int mmp_int(PyObject* v, int64_t lo, int64_t hi, int64_t* out) noexcept
    int mmp_int_clamp(PyObject* v, PyObject* alt, int64_t lo, int64_t hi, int64_t* out) noexcept
    int mmp_items(PyObject* seq, PyObject*** items, Py_ssize_t* n) noexcept
    Py_ssize_t mmp_coll_size(PyObject* c) noexcept
    void mmp_hold(PyObject** held, int* n, PyObject* o) noexcept
    void mmp_release(PyObject** held, int n) noexcept
    object mmp_make(PyObject* type, const Py_ssize_t* offs, PyObject** vals, int n)
    object mmp_tuple(PyObject** items, int n)
    PyObject* mmp_bool(int b) noexcept nogil
    PyObject* mmp_tuple_item(PyObject* t, Py_ssize_t i) noexcept
    Py_ssize_t mmp_tuple_size(PyObject* t) noexcept


# In plan.pxd: PLAN_CAP, the action kinds PLAN_*, the back-off levels PLAN_DEGRADE_*, the
# structs (Ord, SideIn, Act, Grp, PlanScratch) and plan_into.
cdef enum:
    _SURPLUS_LEVEL = 1000        # rank offset of surplus cancels (after every real level)

MAX_PER_SIDE = PLAN_CAP

# Value bounds of the C path: every difference and sum below stays inside int64.
cdef int64_t _LIM_PRICE = (1 << 61) - 1      # prices (ticks), order and target
cdef int64_t _LIM_SIZE = (1 << 60) - 1       # sizes and filled sizes (lots)
cdef int64_t _LIM_TIME = (1 << 62) - 1       # now_ns and created_ns
cdef int64_t _TOL_CAP = 1 << 62              # a tolerance this wide already keeps everything
cdef int64_t _INT64_MAX = 0x7FFFFFFFFFFFFFFF
cdef int64_t _BIG = 1 << 61
cdef int64_t _SLOTS_CAP = 1 << 40            # in-flight slots beyond any plan's tx count


# ------------------------------------------------------------------ import-time slot layout

cdef PyObject* _ORDER_T = <PyObject*>Order
cdef PyObject* _PARAMS_T = <PyObject*>PlannerParams
cdef PyObject* _ACTION_T = <PyObject*>Action
cdef PyObject* _PLAN_T = <PyObject*>Plan
cdef PyObject* _STATUS_T = <PyObject*>OrderStatus
cdef PyObject* _SIDE_T = <PyObject*>Side
cdef PyObject* _UNLIMITED_T = <PyObject*>UnlimitedBudget

_ORDER_FIELDS = ("client_order_index", "side", "price_ticks", "size_lots", "status",
                 "filled_lots", "created_ns")
_PARAM_FIELDS = ("price_tolerance_ticks", "size_tolerance_lots", "max_order_age_ns",
                 "max_inflight", "wide_below", "few_levels_below", "one_side_below",
                 "wide_factor", "degraded_levels")
_ACTION_FIELDS = ("kind", "side", "level", "price_ticks", "size_lots", "order", "urgent")
_PLAN_FIELDS = ("actions", "kept", "waiting", "deferred", "degrade")


def _slot_offsets(cls, names, bint exact):
    """Byte offsets of ``names`` in ``cls`` instances. The C path reads and writes these slots
    directly, so a change of layout (a field that is no longer a slot, a __post_init__ that
    building without __init__ would skip) must fail the import, not the plans."""
    if exact:
        fields = tuple(f.name for f in dataclasses.fields(cls))
        if fields != tuple(names) or hasattr(cls, "__post_init__"):
            raise ImportError(f"mmfast._core.plan: {cls.__name__} fields are {fields}, "
                              f"expected {tuple(names)} and no __post_init__")
    out = []
    for name in names:
        descr = cls.__dict__.get(name)
        off = mmp_slot_offset(<PyObject*>descr)
        if off < 0:
            raise ImportError(f"mmfast._core.plan: {cls.__name__}.{name} is not a __slots__ field")
        out.append(off)
    return out


cdef Py_ssize_t _O_COI, _O_SIDE, _O_PRICE, _O_SIZE, _O_STATUS, _O_FILLED, _O_CREATED
_O_COI, _O_SIDE, _O_PRICE, _O_SIZE, _O_STATUS, _O_FILLED, _O_CREATED = _slot_offsets(
    Order, _ORDER_FIELDS, False)
cdef Py_ssize_t _P_PTOL, _P_STOL, _P_AGE, _P_INFL, _P_WIDE, _P_FEW, _P_ONE, _P_FACTOR, _P_LEVELS
(_P_PTOL, _P_STOL, _P_AGE, _P_INFL, _P_WIDE, _P_FEW, _P_ONE, _P_FACTOR,
 _P_LEVELS) = _slot_offsets(PlannerParams, _PARAM_FIELDS, False)
cdef Py_ssize_t _ACT_OFF[7]
cdef Py_ssize_t _PLAN_OFF[5]
for _i, _off in enumerate(_slot_offsets(Action, _ACTION_FIELDS, True)):
    _ACT_OFF[_i] = _off
for _i, _off in enumerate(_slot_offsets(Plan, _PLAN_FIELDS, True)):
    _PLAN_OFF[_i] = _off

# The enum members the output carries (held by this tuple for the module's life).
_MEMBERS = (ActionKind.CREATE, ActionKind.MODIFY, ActionKind.CANCEL, Side.BUY, Side.SELL,
            Degrade.NONE, Degrade.WIDE, Degrade.FEW_LEVELS, Degrade.ONE_SIDE)
cdef PyObject* _KIND[3]
cdef PyObject* _SIDES[2]
cdef PyObject* _DEGRADE[4]
for _i in range(3):
    _KIND[_i] = <PyObject*>_MEMBERS[_i]
for _i in range(2):
    _SIDES[_i] = <PyObject*>_MEMBERS[3 + _i]
for _i in range(4):
    _DEGRADE[_i] = <PyObject*>_MEMBERS[5 + _i]

_DEFAULT_PARAMS = PlannerParams()  # frozen: a shared default is safe
# C-level references: the hot path does no module-dict lookups.
cdef object _ONE = 1.0             # UnlimitedBudget.headroom


# ------------------------------------------------------------------ reading the inputs (C path)

cdef inline int64_t _abs(int64_t x) noexcept nogil:
    return -x if x < 0 else x


cdef bint _read_levels(PlanScratch* w, int s, object target) noexcept:
    """Target levels of side s into C arrays; False when the C path does not take them."""
    cdef PyObject** items
    cdef Py_ssize_t n, i
    cdef PyObject* e
    cdef SideIn* S = &w.s[s]
    if not mmp_items(<PyObject*>target, &items, &n) or n > PLAN_CAP:
        return False
    for i in range(n):
        e = items[i]
        if mmp_tuple_size(e) != 2:
            return False
        if not mmp_int(mmp_tuple_item(e, 0), -_LIM_PRICE, _LIM_PRICE, &S.tp[i]):
            return False
        if not mmp_int(mmp_tuple_item(e, 1), -_LIM_SIZE, _LIM_SIZE, &S.tq[i]):
            return False
        S.lvl[i] = e
        mmp_hold(w.held, &w.n_held, e)
    S.n_lvl = <int>n
    return True


cdef bint plan_read_orders(PlanScratch* w, object live, bint need_created, object intents,
                           int64_t now, int64_t* until) noexcept:
    """Our orders of the market (a list, tuple or the values of a dict) into the per-side
    arrays (unsorted, references held in ``w.held``); terminal and PENDING_CANCEL ones are
    skipped. An order with a modify the venue has not shown (``intents``: a dict coi ->
    (price, total size, deadline ns), or None) is read at the modify's price and remaining
    while its deadline is after ``now``; ``until`` gets the first such deadline (INT64_MAX if
    none): the read holds until then. False when the C path does not take them."""
    cdef PyObject** items
    cdef Py_ssize_t n, j
    cdef PyObject* o
    cdef PyObject* pend
    cdef int64_t status, side, size, filled, ip, isz, idl
    cdef SideIn* S
    cdef Ord* r
    cdef Py_ssize_t pos = 0
    cdef bint is_dict = PyDict_CheckExact(live)
    cdef bint any_intent
    until[0] = _INT64_MAX
    if intents is None:
        any_intent = False
    elif PyDict_CheckExact(intents):
        any_intent = PyDict_Size(intents) > 0
    else:
        return False
    if is_dict:
        n = PyDict_Size(live)
    elif not mmp_items(<PyObject*>live, &items, &n):
        return False
    for j in range(n):
        if is_dict:
            if not PyDict_Next(live, &pos, NULL, &o):
                return False  # changed while read (never: nothing runs meanwhile)
        else:
            o = items[j]
        if not mmp_type_is(o, _ORDER_T):
            return False  # duck-typed orders (or subclasses) go to the reference
        if not mmp_int_clamp(mmp_get(o, _O_STATUS), _STATUS_T, -1, 100, &status):
            return False
        if status != 0 and status != 1 and status != 2 and status != 7:
            continue  # terminal or PENDING_CANCEL: not ours to act on
        if not mmp_int_clamp(mmp_get(o, _O_SIDE), _SIDE_T, -1, 2, &side) or (side != 0
                                                                             and side != 1):
            return False
        S = &w.s[side]
        if S.m == PLAN_CAP:
            return False
        r = &S.o[S.m]
        if not mmp_int(mmp_get(o, _O_PRICE), -_LIM_PRICE, _LIM_PRICE, &r.price):
            return False
        if not mmp_int(mmp_get(o, _O_SIZE), -_LIM_SIZE, _LIM_SIZE, &size):
            return False
        if not mmp_int(mmp_get(o, _O_FILLED), -_LIM_SIZE, _LIM_SIZE, &filled):
            return False
        if not mmp_int(mmp_get(o, _O_COI), -_INT64_MAX, _INT64_MAX, &r.coi):
            return False
        r.created = 0
        if need_created and not mmp_int(mmp_get(o, _O_CREATED), -_LIM_TIME, _LIM_TIME,
                                        &r.created):
            return False
        r.rem = size - filled
        pend = NULL
        if any_intent:
            pend = PyDict_GetItem(intents, <object>mmp_get(o, _O_COI))
            if pend != NULL:
                if (mmp_tuple_size(pend) != 3
                        or not mmp_int(mmp_tuple_item(pend, 0), -_LIM_PRICE, _LIM_PRICE, &ip)
                        or not mmp_int(mmp_tuple_item(pend, 1), -_LIM_SIZE, _LIM_SIZE, &isz)
                        or not mmp_int(mmp_tuple_item(pend, 2), -_INT64_MAX, _INT64_MAX,
                                       &idl)):
                    return False
                if idl > now:
                    r.price = ip
                    r.rem = isz - filled if isz > filled else 0
                    if idl < until[0]:
                        until[0] = idl
                else:
                    pend = NULL  # run out: the venue's values
        r.status = <int>status
        r.busy = status == 0 or status == 7
        r.aged = False
        r.obj = o
        r.price_obj = mmp_get(o, _O_PRICE) if pend == NULL else mmp_tuple_item(pend, 0)
        mmp_hold(w.held, &w.n_held, o)
        mmp_hold(w.held, &w.n_held, r.price_obj)
        S.m += 1
    return True


cdef inline bint _before(Ord* a, Ord* b, int64_t sign) noexcept nogil:
    # Sort key (sign * price, client order index): bids by price descending, asks ascending.
    cdef int64_t ka = sign * a.price, kb = sign * b.price
    return ka < kb or (ka == kb and a.coi < b.coi)


cdef void plan_sort(PlanScratch* w) noexcept nogil:
    """Both sides' orders best first (bids by price descending, asks ascending)."""
    _sort_orders(&w.s[0], -1)
    _sort_orders(&w.s[1], 1)


cdef void _sort_orders(SideIn* S, int64_t sign) noexcept nogil:
    # Stable insertion sort (the inputs are a handful of orders).
    cdef int i, j
    cdef Ord x
    for i in range(1, S.m):
        if not _before(&S.o[i], &S.o[i - 1], sign):
            continue
        x = S.o[i]
        j = i
        while j > 0 and _before(&x, &S.o[j - 1], sign):
            S.o[j] = S.o[j - 1]
            j -= 1
        S.o[j] = x


# ------------------------------------------------------------------ planning (pure C)

cdef bint _whole(SideIn* S, int64_t ptol, int64_t stol, bint use_age) noexcept nogil:
    """The side's orders pair rank by rank with the levels, each within tolerance, none in
    flight and none stale (``_on_target`` of the reference)."""
    cdef int k
    cdef Ord* o
    if S.m != S.n_lvl:
        return False
    for k in range(S.m):
        o = &S.o[k]
        if (_abs(o.price - S.tp[k]) > ptol or _abs(o.rem - S.tq[k]) > stol
                or (o.status != 1 and o.status != 2) or o.busy or (use_age and o.aged)):
            return False
    return True


cdef inline void _group(PlanScratch* w, int side, int64_t not_urgent, int64_t level) noexcept nogil:
    cdef Grp* g = &w.g[w.n_grp]
    g.key = (not_urgent << 40) | (level << 1) | side
    g.side = side
    g.n = 0
    g.chosen = False
    w.n_grp += 1


cdef inline void _act(PlanScratch* w, int kind, int level, int ordi, bint urgent) noexcept nogil:
    cdef Grp* g = &w.g[w.n_grp - 1]
    g.a[g.n].kind = kind
    g.a[g.n].level = level
    g.a[g.n].ordi = ordi
    g.urgent[g.n] = urgent
    g.n += 1


cdef void _plan_side(PlanScratch* w, int s, int64_t ptol, int64_t stol, int degrade,
                     bint whole) noexcept nogil:
    cdef SideIn* S = &w.s[s]
    cdef int n = S.n_lvl, m = S.m
    cdef int i, k, q, lvl, pick, n_free = 0, n_mov = 0, n_stale = 0, n_pairs, sp, rank
    cdef int64_t d, pick_dist, best_lim = 0
    cdef bint has_best = n > 0, u
    cdef bint covered[PLAN_CAP]
    cdef bint used[PLAN_CAP]
    cdef bint stale[PLAN_CAP]
    cdef bint urgent[PLAN_CAP]
    cdef int free_lv[PLAN_CAP]
    cdef int movable[PLAN_CAP]
    cdef int stale_l[PLAN_CAP]
    cdef int tail[2 * PLAN_CAP]
    cdef int n_tail
    cdef Ord* o
    if whole:
        for k in range(m):
            w.kept[w.n_kept] = S.o[k].obj
            w.n_kept += 1
        return
    # Past the best target (beyond tolerance), or a side that should be empty: urgent.
    if has_best:
        best_lim = S.tp[0] + ptol if s == 0 else S.tp[0] - ptol
    for i in range(m):
        o = &S.o[i]
        used[i] = False
        # Replacing needs a create: where none may go out, an old order is modified instead.
        stale[i] = o.aged and S.active and not S.no_create and not o.busy
        if not has_best:
            urgent[i] = True
        elif s == 0:
            urgent[i] = o.price > best_lim
        else:
            urgent[i] = o.price < best_lim
    # 1. Keep what is within tolerance (closest price first, ties by client order index).
    for lvl in range(n):
        covered[lvl] = False
        pick = -1
        pick_dist = 0
        for i in range(m):
            if used[i] or stale[i]:
                continue
            o = &S.o[i]
            d = _abs(o.price - S.tp[lvl])
            if d <= ptol and _abs(o.rem - S.tq[lvl]) <= stol and (
                    pick < 0 or d < pick_dist or (d == pick_dist and o.coi < S.o[pick].coi)):
                pick = i
                pick_dist = d
        if pick >= 0:
            used[pick] = True
            covered[lvl] = True
            if S.o[pick].busy:
                w.wait[w.n_wait] = S.o[pick].obj
                w.n_wait += 1
            else:
                w.kept[w.n_kept] = S.o[pick].obj
                w.n_kept += 1
    for lvl in range(n):
        if not covered[lvl]:
            free_lv[n_free] = lvl
            n_free += 1
    for i in range(m):
        if used[i]:
            continue
        if stale[i]:
            stale_l[n_stale] = i
            n_stale += 1
        else:
            movable[n_mov] = i
            n_mov += 1
    # 2. Pair the rest with the free levels, best first: in-flight orders wait on theirs.
    n_pairs = n_mov if n_mov < n_free else n_free
    for q in range(n_pairs):
        i = movable[q]
        lvl = free_lv[q]
        if S.o[i].busy or (not S.active and not urgent[i]):
            w.wait[w.n_wait] = S.o[i].obj  # in flight, or degraded to the other side
            w.n_wait += 1
        else:
            _group(w, s, 0 if urgent[i] else 1, lvl)
            _act(w, PLAN_MODIFY, lvl, i, urgent[i])
    # 3. Replace stale orders on free levels (create first: the side stays lit), create the
    # rest, cancel what is left over.
    sp = 0
    for q in range(n_pairs, n_free):
        lvl = free_lv[q]
        if S.no_create or not S.active:
            continue
        _group(w, s, 1, lvl)
        _act(w, PLAN_CREATE, lvl, -1, False)
        if sp < n_stale:
            i = stale_l[sp]
            sp += 1
            _act(w, PLAN_CANCEL, lvl, i, urgent[i])
    n_tail = 0
    for q in range(sp, n_stale):
        tail[n_tail] = stale_l[q]
        n_tail += 1
    for q in range(n_pairs, n_mov):
        tail[n_tail] = movable[q]
        n_tail += 1
    for rank in range(n_tail):
        i = tail[rank]
        if S.o[i].busy:
            w.wait[w.n_wait] = S.o[i].obj
            w.n_wait += 1
            continue
        u = urgent[i]
        # Degraded: a surplus order behind the target costs nothing where it is; keep it.
        if not u and (degrade >= PLAN_DEGRADE_FEW_LEVELS or not S.active):
            w.wait[w.n_wait] = S.o[i].obj
            w.n_wait += 1
            continue
        _group(w, s, 0 if u else 1, _SURPLUS_LEVEL + rank)
        _act(w, PLAN_CANCEL, -1, i, u)


cdef void _rank_groups(PlanScratch* w) noexcept nogil:
    """Send order: urgent first, then level by level with both sides interleaved (a stable
    insertion sort on the packed key)."""
    cdef int i, j, k, u, c
    cdef Grp* g
    for i in range(w.n_grp):
        g = &w.g[i]
        u = 1
        c = 0
        for k in range(g.n):
            if not (g.urgent[k] and g.a[k].kind == PLAN_CANCEL):
                u = 0
            if g.a[k].kind == PLAN_CANCEL and not g.urgent[k]:
                c = 1
        g.urgent_cancels = u
        g.holdable = c
        j = i
        while j > 0 and w.g[w.rank[j - 1]].key > g.key:
            w.rank[j] = w.rank[j - 1]
            j -= 1
        w.rank[j] = i


cdef int _never_dark(PlanScratch* w) noexcept nogil:
    """Hold back the non-urgent cancels that would leave a side with a target and orders
    without any order; returns the txs held back. A safety net, as in the reference: with the
    steps above a side with a free level always keeps a modified, kept or waiting order, so no
    input found so far reaches the hold (the property test cannot exercise it)."""
    cdef int s, i, k, n_after, held = 0
    cdef Grp* g
    for s in range(2):
        if w.s[s].n_lvl == 0 or w.s[s].m == 0:
            continue
        n_after = w.s[s].m
        for i in range(w.n_grp):
            g = &w.g[i]
            if g.chosen and g.side == s:
                for k in range(g.n):
                    if g.a[k].kind == PLAN_CREATE:
                        n_after += 1
                    elif g.a[k].kind == PLAN_CANCEL:
                        n_after -= 1
        if n_after <= 0:
            for i in range(w.n_grp):
                g = &w.g[i]
                if g.chosen and g.side == s and g.holdable:
                    g.chosen = False
                    held += g.n
    return held


# ------------------------------------------------------------------ shared steps (plan.pxd)

cdef inline int64_t _clamp_slots(int64_t slots) noexcept nogil:
    if slots < 0:
        return 0
    return _SLOTS_CAP if slots > _SLOTS_CAP else slots


cdef int plan_degrade(double headroom, double wide_below, double few_below,
                      double one_below) noexcept nogil:
    """How far to back off for this budget headroom (PLAN_DEGRADE_*)."""
    if headroom >= wide_below:
        return PLAN_DEGRADE_NONE
    if headroom >= few_below:
        return PLAN_DEGRADE_WIDE
    if headroom >= one_below:
        return PLAN_DEGRADE_FEW_LEVELS
    return PLAN_DEGRADE_ONE_SIDE


cdef int64_t plan_widen(int64_t tol, int64_t factor, int degrade) noexcept nogil:
    """A tolerance widened for ``degrade`` ((t + 1) * factor - 1 per step, at most two steps),
    clamped where wider changes nothing."""
    cdef int steps = degrade if degrade < 2 else 2
    cdef int _step
    for _step in range(steps):
        if tol >= _TOL_CAP or factor >= _TOL_CAP or (tol + 1) > _TOL_CAP // factor:
            return _TOL_CAP
        tol = (tol + 1) * factor - 1
    return _TOL_CAP if tol > _TOL_CAP else tol


cdef void plan_shape(PlanScratch* w, int degrade, int64_t k_levels,
                     int position_sign) noexcept nogil:
    """The back-off's cut: FEW_LEVELS keeps the first ``k_levels`` levels of each side (Python
    slice bounds), ONE_SIDE quotes only the side that reduces the position (none when flat)."""
    cdef int s
    cdef int64_t k, x
    if degrade >= PLAN_DEGRADE_FEW_LEVELS:
        for s in range(2):
            k = w.s[s].n_lvl
            x = k_levels + k if k_levels < 0 else k_levels
            if x < 0:
                x = 0
            if x < k:
                w.s[s].n_lvl = <int>x
    w.s[0].active = True
    w.s[1].active = True
    if degrade == PLAN_DEGRADE_ONE_SIDE:
        if position_sign > 0:
            w.s[0].active = False
        elif position_sign < 0:
            w.s[1].active = False
        else:
            w.s[0].active = False
            w.s[1].active = False


cdef bint plan_sides(PlanScratch* w, int64_t ptol, int64_t stol, int degrade) noexcept nogil:
    """Match, pair and rank both sides (orders sorted, levels and flags set): kept, waiting and
    the groups in send order. True when both sides are on target (no group)."""
    cdef bint whole0, whole1
    w.n_kept = 0
    w.n_wait = 0
    w.n_grp = 0
    whole0 = _whole(&w.s[0], ptol, stol, w.s[0].active and not w.s[0].no_create)
    whole1 = _whole(&w.s[1], ptol, stol, w.s[1].active and not w.s[1].no_create)
    if whole0 and whole1:
        _plan_side(w, 0, ptol, stol, degrade, True)
        _plan_side(w, 1, ptol, stol, degrade, True)
        return True
    _plan_side(w, 0, ptol, stol, degrade, whole0)
    _plan_side(w, 1, ptol, stol, degrade, whole1)
    _rank_groups(w)
    return False


cdef double plan_room(const int64_t* room, int64_t n) noexcept nogil:
    """BudgetView's free share after spending ``n`` txs in one frame, from an ``order_room``
    snapshot (usable, sendtx used, sendtx cap, ws used, ws cap); -1 when it does not fit."""
    cdef int64_t s_free, w_free
    cdef double a, b
    if not room[0] or room[2] <= 0 or room[4] <= 0:
        return -1.0
    s_free = room[2] - room[1] - n
    w_free = room[4] - room[3] - (1 if n else 0)
    if s_free < 0 or w_free < 0:
        return -1.0
    a = <double>s_free / <double>room[2]
    b = <double>w_free / <double>room[4]
    if b < a:
        a = b
    return 1.0 if a > 1.0 else a


cdef int plan_choose(PlanScratch* w, int64_t slots, const int64_t* room,
                     object budget) except -1:
    """Choose the ranked groups that fit the in-flight ``slots`` and the budget, then the
    never-dark hold. The budget: ``room`` (an ``order_room`` snapshot), else ``budget`` (a
    RateBudget asked ``can_spend`` per group, looked up only when needed), else unlimited.
    Returns the txs deferred."""
    cdef int i, deferred = 0
    cdef int64_t used = 0, spent = 0
    cdef Grp* g
    can_spend = None
    slots = _clamp_slots(slots)
    for i in range(w.n_grp):
        g = &w.g[w.rank[i]]
        if used + g.n <= slots:
            if g.urgent_cancels or (room == NULL and budget is None):
                g.chosen = True
            elif room != NULL:
                g.chosen = plan_room(room, spent + g.n) >= 0.0
            else:
                if can_spend is None:
                    can_spend = budget.can_spend
                g.chosen = bool(can_spend(spent + g.n))
        if g.chosen:
            used += g.n
            if not g.urgent_cancels:
                spent += g.n
        else:
            deferred += g.n
    return deferred + _never_dark(w)


# ------------------------------------------------------------------ output objects

cdef object _action(PlanScratch* w, Grp* g, int k):
    cdef Act* a = &g.a[k]
    cdef SideIn* S = &w.s[g.side]
    cdef PyObject* vals[7]
    cdef Ord* o
    cdef object level = a.level    # small ints: cached by CPython, no allocation
    cdef object size = None
    vals[0] = _KIND[a.kind]
    vals[1] = _SIDES[g.side]
    vals[2] = <PyObject*>level
    if a.kind == PLAN_CANCEL:
        o = &S.o[a.ordi]
        size = o.rem
        vals[3] = o.price_obj
        vals[4] = <PyObject*>size
        vals[5] = o.obj
    else:
        vals[3] = mmp_tuple_item(S.lvl[a.level], 0)
        vals[4] = mmp_tuple_item(S.lvl[a.level], 1)
        vals[5] = S.o[a.ordi].obj if a.kind == PLAN_MODIFY else <PyObject*>None
    vals[6] = mmp_bool(g.urgent[k])
    return mmp_make(_ACTION_T, _ACT_OFF, vals, 7)


cdef object _make_plan(object actions, object kept, object waiting, int deferred, int degrade):
    cdef PyObject* vals[5]
    cdef object d = deferred
    vals[0] = <PyObject*>actions
    vals[1] = <PyObject*>kept
    vals[2] = <PyObject*>waiting
    vals[3] = <PyObject*>d
    vals[4] = _DEGRADE[degrade]
    return mmp_make(_PLAN_T, _PLAN_OFF, vals, 5)


# ------------------------------------------------------------------ the plan

cdef inline bint _tol(object v, int64_t* out) noexcept:
    # A tolerance as int64, clamped to +-_TOL_CAP (wider changes nothing: every difference the
    # planner compares is below it). False when it is not an exact int.
    return mmp_int_clamp(<PyObject*>v, NULL, -_TOL_CAP, _TOL_CAP, out)


cdef object _plan(PlanScratch* w, object bids, object asks, object live, object now_ns,
                  object params, object inflight, object budget, object position_lots,
                  object busy, object no_create, object intents):
    """The plan, or None when the C path does not take these inputs (nothing has been called
    on them yet: the reference takes over)."""
    cdef PyObject* p = <PyObject*>params
    cdef int64_t max_age, max_inflight, n_inflight, k_levels, now, ptol, stol, until
    cdef int64_t x
    cdef int degrade, s, i, k, n_act, deferred = 0
    cdef Py_ssize_t busy_n, no_create_n
    cdef bint unlimited
    cdef Grp* g
    cdef Ord* o
    if not mmp_type_is(p, _PARAMS_T):
        return None
    # Parameters: read and type-checked before anything is called on the inputs.
    if (mmp_get(p, _P_PTOL) == NULL or mmp_get(p, _P_STOL) == NULL
            or mmp_get(p, _P_FACTOR) == NULL or mmp_get(p, _P_WIDE) == NULL
            or mmp_get(p, _P_FEW) == NULL or mmp_get(p, _P_ONE) == NULL):
        return None  # unset fields: the reference raises the AttributeError
    ptol_o = <object>mmp_get(p, _P_PTOL)
    stol_o = <object>mmp_get(p, _P_STOL)
    factor_o = <object>mmp_get(p, _P_FACTOR)
    wide_o = <object>mmp_get(p, _P_WIDE)
    few_o = <object>mmp_get(p, _P_FEW)
    one_o = <object>mmp_get(p, _P_ONE)
    if not (_tol(ptol_o, &x) and _tol(stol_o, &x) and type(factor_o) is int):
        return None
    # Clamping max_order_age_ns and degraded_levels changes nothing (no age difference reaches
    # int64's top, a slice past the ends is the whole list or none); the in-flight numbers are
    # taken exactly or not at all.
    if not mmp_int_clamp(mmp_get(p, _P_AGE), NULL, -_INT64_MAX, _INT64_MAX, &max_age):
        return None
    if not mmp_int_clamp(mmp_get(p, _P_LEVELS), NULL, -_BIG, _BIG, &k_levels):
        return None
    if not mmp_int(mmp_get(p, _P_INFL), -_BIG, _BIG, &max_inflight):
        return None
    if not mmp_int(<PyObject*>inflight, -_BIG, _BIG, &n_inflight):
        return None
    now = 0
    if ((max_age > 0 or intents) and
            not mmp_int(<PyObject*>now_ns, -_LIM_TIME, _LIM_TIME, &now)):
        return None
    busy_n = mmp_coll_size(<PyObject*>busy)
    no_create_n = mmp_coll_size(<PyObject*>no_create)
    if busy_n < 0 or no_create_n < 0:
        return None
    w.s[0].m = 0
    w.s[1].m = 0
    w.s[0].n_lvl = 0
    w.s[1].n_lvl = 0
    if not (_read_levels(w, 0, bids) and _read_levels(w, 1, asks)
            and plan_read_orders(w, live, max_age > 0, intents, now, &until)):
        return None
    # From here on the C path is committed.
    for s in range(2):
        for i in range(w.s[s].m):
            o = &w.s[s].o[i]
            if busy_n > 0 and not o.busy:
                o.busy = (<object>mmp_get(o.obj, _O_COI)) in busy
            if max_age > 0:
                o.aged = now - o.created >= max_age
        _sort_orders(&w.s[s], -1 if s == 0 else 1)
    w.s[0].no_create = no_create_n > 0 and <object>_SIDES[0] in no_create
    w.s[1].no_create = no_create_n > 0 and <object>_SIDES[1] in no_create

    # Budget back-off.
    if mmp_type_is(<PyObject*>budget, _UNLIMITED_T):
        h_o = _ONE
    else:
        h_o = budget.headroom
    if (type(h_o) is float and type(wide_o) is float and type(few_o) is float
            and type(one_o) is float):
        degrade = plan_degrade(h_o, wide_o, few_o, one_o)
    elif h_o >= wide_o:
        degrade = PLAN_DEGRADE_NONE
    elif h_o >= few_o:
        degrade = PLAN_DEGRADE_WIDE
    elif h_o >= one_o:
        degrade = PLAN_DEGRADE_FEW_LEVELS
    else:
        degrade = PLAN_DEGRADE_ONE_SIDE
    # Tolerances (validated >= 0, the factor >= 1) widened in C: clamped at _TOL_CAP, where a
    # wider one keeps the same orders.
    _tol(ptol_o, &ptol)
    _tol(stol_o, &stol)
    mmp_int_clamp(<PyObject*>factor_o, NULL, 1, _TOL_CAP, &x)
    ptol = plan_widen(ptol, x, degrade)
    stol = plan_widen(stol, x, degrade)
    plan_shape(w, degrade, k_levels, 1 if position_lots > 0 else (-1 if position_lots < 0 else 0))
    if plan_sides(w, ptol, stol, degrade):
        # The common case between price moves: both sides on target, nothing to send.
        return _make_plan((), mmp_tuple(w.kept, w.n_kept), (), 0, degrade)

    # Take the groups in order while they fit the in-flight cap and the budget
    # (UnlimitedBudget.can_spend is always True: not called).
    unlimited = mmp_type_is(<PyObject*>budget, _UNLIMITED_T)
    deferred = plan_choose(w, max_inflight - n_inflight, NULL, None if unlimited else budget)

    n_act = 0
    for i in range(w.n_grp):
        g = &w.g[i]
        if g.chosen:
            n_act += g.n
    actions = PyTuple_New(n_act)
    k = 0
    for i in range(w.n_grp):
        g = &w.g[w.rank[i]]
        if g.chosen:
            for s in range(g.n):
                a = _action(w, g, s)
                mmp_tuple_put(<PyObject*>actions, k, <PyObject*>a)
                k += 1
    return _make_plan(actions, mmp_tuple(w.kept, w.n_kept),
                      mmp_tuple(w.wait, w.n_wait), deferred, degrade)


cdef object plan_into(PlanScratch* w, object bids, object asks, object live, object now_ns,
                      object params, object inflight, object budget, object position_lots,
                      object busy, object no_create, object intents):
    """``plan_requotes`` in a scratch the caller owns (plan.pxd): the C path, or the reference
    for what it does not take."""
    if type(live) is not list and type(live) is not tuple:
        live = list(live)  # read once, here and by the reference if it takes over
    w.n_held = 0
    try:
        plan = _plan(w, bids, asks, live, now_ns, params, inflight, budget, position_lots,
                     busy, no_create, intents)
    finally:
        mmp_release(w.held, w.n_held)
        w.n_held = 0
    if plan is None:
        return _reference_plan(bids, asks, live, now_ns=now_ns, params=params,
                               inflight=inflight, budget=budget, position_lots=position_lots,
                               busy=busy, no_create=no_create, intents=intents)
    return plan


def plan_requotes(bids, asks, live, *, now_ns, params=_DEFAULT_PARAMS, inflight=0,
                  budget=UNLIMITED, position_lots=0, busy=(), no_create=(), intents=None):
    """Plan the txs that move ``live`` toward the target ladder.

    ``bids``/``asks``: target levels ``(price_ticks, size_lots)``, best first (e.g.
    ``QuoteEngine.bids()``). ``live``: our orders of this market (any status; terminal and
    PENDING_CANCEL ones are ignored). ``inflight``: order txs of this market already in
    flight. ``busy``: client order indexes with a tx in flight (e.g. a modify not yet acked).
    ``position_lots`` picks the side kept in ONE_SIDE mode. ``no_create``: sides on which no
    new order may be created now (e.g. the filled-order delay); modifies and cancels still go.
    ``intents``: modifies the venue has not shown yet (coi -> (price, total size, deadline
    ns), ``ModifyIntents.pending``): until its deadline such an order is planned at the price
    and remaining it will have. Same plan as ``mmfast.reference.planner.plan_requotes``.
    """
    cdef PlanScratch w
    return plan_into(&w, bids, asks, live, now_ns, params, inflight, budget, position_lots,
                     busy, no_create, intents)
