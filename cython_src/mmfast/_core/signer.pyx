# cython: language_level=3
"""Lighter's L2 transaction signer, native (see docs/signer.md).

The arithmetic lives in C headers under ``lsig/``: the Goldilocks field and its quintic
extension (``field.h``), Poseidon2 (``poseidon2.h``), the ECgFp5 group, its scalars and Schnorr
signatures (``curve.h``), and the pool of precomputed nonce commitments (``pool.h``). This module
adds the transaction layer (hash inputs, ``L2TxAttributes``, the ``tx_info`` JSON exactly as the
official signer writes it), auth tokens, and ``NativeSigner``: the key in C memory and one
method per transaction kind, each returning the signed ``tx_info`` text and its hash.

Test-facing functions (``public_key``, ``sign_hashed``, ``verify_hashed``, ``sign_tx``,
``auth_token``, ...) take keys as bytes; they are for the shared vectors and the differential
tests. Order entry uses ``NativeSigner``, whose key never leaves C memory.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

import os
import weakref

from mmfast.core.errors import SigningError


cdef extern from "lsig/pool.h" nogil:
    ctypedef struct fp5:
        uint64_t v[5]
    ctypedef struct scalar:
        uint64_t v[5]
    ctypedef struct ec_point:
        fp5 x
        fp5 z
        fp5 u
        fp5 t
    ctypedef struct ec_affine:
        fp5 x
        fp5 u
    ctypedef struct lsig_commit:
        scalar k
        fp5 r
    ctypedef struct lsig_pool:
        int cap
        int count
        int dead
        int failed
        int running
        uint64_t generated

    uint64_t GL_P
    uint64_t gl_canon(uint64_t a)
    uint64_t gl_add(uint64_t a, uint64_t b)
    uint64_t gl_sub(uint64_t a, uint64_t b)
    uint64_t gl_mul(uint64_t a, uint64_t b)
    uint64_t gl_neg(uint64_t a)
    uint64_t gl_inv(uint64_t a)
    uint64_t gl_pow(uint64_t a, uint64_t e)
    void fp5_add(fp5 *r, const fp5 *a, const fp5 *b)
    void fp5_sub(fp5 *r, const fp5 *a, const fp5 *b)
    void fp5_mul(fp5 *r, const fp5 *a, const fp5 *b)
    void fp5_neg(fp5 *r, const fp5 *a)
    void fp5_inv(fp5 *r, const fp5 *a)
    void fp5_pow(fp5 *r, const fp5 *a, uint64_t e)
    int fp5_eq(const fp5 *a, const fp5 *b)
    int fp5_is_zero(const fp5 *a)
    void fp5_from_le(fp5 *r, const uint8_t *b)
    int fp5_from_le_canonical(fp5 *r, const uint8_t *b)
    void fp5_to_le(uint8_t *b, const fp5 *a)
    void p2_permute(uint64_t *s)
    void p2_hash_n_to_m(const uint64_t *inp, size_t n, uint64_t *out, size_t m)
    void p2_hash_to_fp5(const uint64_t *inp, size_t n, fp5 *out)
    void sc_init_constants()
    void sc_from_le(scalar *r, const uint8_t *b)
    void sc_to_le(uint8_t *b, const scalar *a)
    void sc_reduce(scalar *r, const scalar *a)
    int sc_is_canonical(const scalar *a)
    int sc_is_zero(const scalar *a)
    void sc_add(scalar *r, const scalar *a, const scalar *b)
    void sc_sub(scalar *r, const scalar *a, const scalar *b)
    void sc_mul(scalar *r, const scalar *a, const scalar *b)
    void sc_neg(scalar *r, const scalar *a)
    uint64_t SC_N0I
    void ec_gtab_init()
    void ec_neutral(ec_point *p)
    void ec_add(ec_point *r, const ec_point *p, const ec_point *q)
    void ec_double(ec_point *r, const ec_point *p)
    void ec_encode(fp5 *w, const ec_point *p)
    int ec_decode(ec_point *p, const fp5 *w)
    void ec_mul_gen(ec_point *r, const scalar *k)
    void ec_mul_var(ec_point *r, const ec_point *p, const scalar *k)
    void schnorr_commit(fp5 *r_enc, const scalar *k)
    void schnorr_public_key(fp5 *pk, const scalar *sk)
    void schnorr_sign_commit(uint8_t *sig, const scalar *sk, const fp5 *msg, const scalar *k,
                             const fp5 *r_enc)
    int schnorr_verify(const fp5 *pk, const fp5 *msg, const uint8_t *sig)
    void ec_table_build_flat(ec_affine *tab, const ec_point *p)
    int schnorr_verify_flat(ec_affine *tab, const fp5 *msg, const uint8_t *sig)
    void lsig_wipe(void *p, size_t n)
    int lsig_random_scalar(scalar *k)
    int lsig_pool_init(lsig_pool *p, int cap)
    int lsig_pool_take(lsig_pool *p, lsig_commit *out)
    int lsig_pool_count(lsig_pool *p)
    void lsig_pool_destroy(lsig_pool *p)
    void lsig_pool_before_fork(lsig_pool *p)
    void lsig_pool_after_fork_parent(lsig_pool *p)
    void lsig_pool_after_fork_child(lsig_pool *p)


sc_init_constants()
ec_gtab_init()


class NativeSignerError(SigningError, ValueError):
    """A request the native signer refuses (a field out of range, a closed signer, bad key)."""


# ---------------------------------------------------------------------------- tx kinds
# Transaction kinds: tx type, the body fields in the order the official signer hashes and
# writes them (between ApiKeyIndex and ExpiredAt), and whether tx_info carries "L1Sig":"".
cdef enum:
    K_CREATE_ORDER = 0
    K_CANCEL_ORDER = 1
    K_CANCEL_ALL = 2
    K_MODIFY_ORDER = 3
    K_UPDATE_LEVERAGE = 4
    K_APPROVE_INTEGRATOR = 5
    N_KINDS = 6
    MAX_BODY = 10
    N_ATTR = 9           # attribute types 1..8 (index 0 unused)
    ATTRS_PER_TX = 4     # the venue's limit; the attribute hash pads to this many pairs
    JSON_CAP = 768

cdef int KIND_TX_TYPE[6]
KIND_TX_TYPE[:] = [14, 15, 16, 17, 20, 45]

# (kind name, tx type, [(JSON field, request field)], L1Sig)
_KINDS = (
    ("create_order", 14, (
        ("MarketIndex", "market_index"), ("ClientOrderIndex", "client_order_index"),
        ("BaseAmount", "base_amount"), ("Price", "price"), ("IsAsk", "is_ask"),
        ("Type", "order_type"), ("TimeInForce", "time_in_force"),
        ("ReduceOnly", "reduce_only"), ("TriggerPrice", "trigger_price"),
        ("OrderExpiry", "order_expiry"))),
    ("cancel_order", 15, (("MarketIndex", "market_index"), ("Index", "index"))),
    ("cancel_all_orders", 16, (("TimeInForce", "time_in_force"), ("Time", "scheduled_time_ms"))),
    ("modify_order", 17, (
        ("MarketIndex", "market_index"), ("Index", "index"), ("BaseAmount", "base_amount"),
        ("Price", "price"), ("TriggerPrice", "trigger_price"))),
    ("update_leverage", 20, (
        ("MarketIndex", "market_index"),
        ("InitialMarginFraction", "initial_margin_fraction"), ("MarginMode", "margin_mode"))),
    ("approve_integrator", 45, (
        ("IntegratorAccountIndex", "integrator_account_index"),
        ("MaxPerpsTakerFee", "max_perps_taker_fee"), ("MaxPerpsMakerFee", "max_perps_maker_fee"),
        ("MaxSpotTakerFee", "max_spot_taker_fee"), ("MaxSpotMakerFee", "max_spot_maker_fee"),
        ("ApprovalExpiry", "approval_expiry"))),
)
KINDS = tuple(k[0] for k in _KINDS)
TX_TYPES = {k[0]: k[1] for k in _KINDS}

# L2TxAttributes: request field -> attribute type, and each type's "nil" value (absent).
_ATTR_FIELDS = {
    "integrator_account_index": 1, "integrator_taker_fee": 2, "integrator_maker_fee": 3,
    "skip_nonce": 4, "cancel_all_market_index": 5, "self_trade_behavior": 6,
    "self_trade_equality": 7, "order_version": 8,
}
cdef int64_t ATTR_NIL[9]
ATTR_NIL[:] = [0, 0, 0, 0, 0, 255, 0, 0, 0]
# Which attribute types each kind may carry (the official signer's per-kind options).
_KIND_ATTRS = {
    "create_order": (1, 2, 3, 4, 6, 7),
    "cancel_order": (4,),
    "cancel_all_orders": (4, 5),
    "modify_order": (1, 2, 3, 4, 6, 7, 8),
    "update_leverage": (4,),
    "approve_integrator": (4,),
}

# JSON names as C strings, filled once from _KINDS.
cdef const char *KIND_NAMES[6][10]
cdef Py_ssize_t KIND_NAME_LEN[6][10]
cdef int KIND_NVALS[6]
_name_bytes = []
for _i, (_kn, _tt, _body) in enumerate(_KINDS):
    KIND_NVALS[_i] = len(_body)
    for _j, (_json, _field) in enumerate(_body):
        _b = _json.encode()
        _name_bytes.append(_b)
        KIND_NAMES[_i][_j] = <const char *>_b
        KIND_NAME_LEN[_i][_j] = len(_b)


ctypedef struct TxBody:
    int kind                    # K_* index
    int64_t vals[10]            # body fields in KIND_NAMES order
    int64_t attr_val[9]         # attribute values by type
    uint8_t attr_set[9]         # 1 if the attribute is present (non-nil)


cdef inline void _attrs_clear(TxBody *b) noexcept nogil:
    memset(b.attr_set, 0, sizeof(b.attr_set))
    memset(b.attr_val, 0, sizeof(b.attr_val))


cdef inline void _attr_put(TxBody *b, int typ, int64_t value) noexcept nogil:
    # The official signer leaves an attribute out when it holds its nil value.
    if value != ATTR_NIL[typ]:
        b.attr_set[typ] = 1
        b.attr_val[typ] = value


cdef void _tx_hash(const TxBody *b, uint64_t chain_id, int64_t account, int64_t api_key,
                   int64_t nonce, int64_t expired_at, fp5 *out) noexcept nogil:
    cdef uint64_t elems[16]
    cdef uint64_t pair[10]
    cdef fp5 ah
    cdef int i, n = KIND_NVALS[b.kind], na = 0
    elems[0] = chain_id
    elems[1] = <uint64_t>KIND_TX_TYPE[b.kind]
    elems[2] = <uint64_t>nonce
    elems[3] = <uint64_t>expired_at
    elems[4] = <uint64_t>account
    elems[5] = <uint64_t>api_key
    for i in range(n):
        elems[6 + i] = <uint64_t>b.vals[i]
    p2_hash_to_fp5(elems, 6 + n, out)
    # Attributes: present types ascending, (type, value) pairs, zero-padded to 4 pairs; the
    # tx hash is then Poseidon2(tx hash || attribute hash).
    memset(elems, 0, sizeof(elems))
    for i in range(1, N_ATTR):
        if b.attr_set[i] and na < ATTRS_PER_TX:
            elems[2 * na] = <uint64_t>i
            elems[2 * na + 1] = <uint64_t>b.attr_val[i]
            na += 1
    if na == 0:
        return
    p2_hash_to_fp5(elems, 2 * ATTRS_PER_TX, &ah)
    memcpy(pair, out.v, 40)
    memcpy(pair + 5, ah.v, 40)
    p2_hash_to_fp5(pair, 10, out)


cdef inline Py_ssize_t _put(char *buf, Py_ssize_t pos, const char *s, Py_ssize_t n) noexcept nogil:
    memcpy(buf + pos, s, n)
    return pos + n


cdef inline Py_ssize_t _put_i64(char *buf, Py_ssize_t pos, int64_t v) noexcept nogil:
    cdef char tmp[24]
    cdef int n = 0
    cdef uint64_t u
    if v < 0:
        buf[pos] = b'-'
        pos += 1
        u = <uint64_t>(-(v + 1)) + 1
    else:
        u = <uint64_t>v
    while True:
        tmp[n] = <char>(48 + u % 10)
        n += 1
        u //= 10
        if u == 0:
            break
    while n > 0:
        n -= 1
        buf[pos] = tmp[n]
        pos += 1
    return pos


cdef const char *B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
cdef const char *HEX = b"0123456789abcdef"


cdef Py_ssize_t _put_b64(char *buf, Py_ssize_t pos, const uint8_t *d, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i = 0
    cdef uint64_t x
    while i + 3 <= n:
        x = (<uint64_t>d[i] << 16) | (<uint64_t>d[i + 1] << 8) | d[i + 2]
        buf[pos] = B64[(x >> 18) & 63]
        buf[pos + 1] = B64[(x >> 12) & 63]
        buf[pos + 2] = B64[(x >> 6) & 63]
        buf[pos + 3] = B64[x & 63]
        pos += 4
        i += 3
    if n - i == 1:
        x = <uint64_t>d[i] << 16
        buf[pos] = B64[(x >> 18) & 63]
        buf[pos + 1] = B64[(x >> 12) & 63]
        buf[pos + 2] = b'='
        buf[pos + 3] = b'='
        pos += 4
    elif n - i == 2:
        x = (<uint64_t>d[i] << 16) | (<uint64_t>d[i + 1] << 8)
        buf[pos] = B64[(x >> 18) & 63]
        buf[pos + 1] = B64[(x >> 12) & 63]
        buf[pos + 2] = B64[(x >> 6) & 63]
        buf[pos + 3] = b'='
        pos += 4
    return pos


cdef Py_ssize_t _tx_json(const TxBody *b, int64_t account, int64_t api_key, int64_t nonce,
                         int64_t expired_at, const uint8_t *sig, char *buf) noexcept nogil:
    """The official signer's tx_info: Go's encoding/json of its struct (field order as declared,
    Sig as standard base64, L2TxAttributes null or an object keyed by type). Fits JSON_CAP."""
    cdef Py_ssize_t pos = 0
    cdef int i, first = 1, n = KIND_NVALS[b.kind]
    pos = _put(buf, pos, b'{"AccountIndex":', 16)
    pos = _put_i64(buf, pos, account)
    pos = _put(buf, pos, b',"ApiKeyIndex":', 15)
    pos = _put_i64(buf, pos, api_key)
    for i in range(n):
        pos = _put(buf, pos, b',"', 2)
        pos = _put(buf, pos, KIND_NAMES[b.kind][i], KIND_NAME_LEN[b.kind][i])
        pos = _put(buf, pos, b'":', 2)
        pos = _put_i64(buf, pos, b.vals[i])
    pos = _put(buf, pos, b',"ExpiredAt":', 13)
    pos = _put_i64(buf, pos, expired_at)
    pos = _put(buf, pos, b',"Nonce":', 9)
    pos = _put_i64(buf, pos, nonce)
    pos = _put(buf, pos, b',"Sig":"', 8)
    pos = _put_b64(buf, pos, sig, 80)
    pos = _put(buf, pos, b'"', 1)
    if b.kind == K_APPROVE_INTEGRATOR:
        pos = _put(buf, pos, b',"L1Sig":""', 11)
    pos = _put(buf, pos, b',"L2TxAttributes":', 18)
    for i in range(1, N_ATTR):
        if b.attr_set[i]:
            pos = _put(buf, pos, b'{"' if first else b',"', 2)
            first = 0
            buf[pos] = <char>(48 + i)
            pos += 1
            pos = _put(buf, pos, b'":', 2)
            pos = _put_i64(buf, pos, b.attr_val[i])
    if first:
        pos = _put(buf, pos, b'null', 4)
    else:
        pos = _put(buf, pos, b'}', 1)
    pos = _put(buf, pos, b'}', 1)
    return pos


cdef inline Py_ssize_t _hex(char *out, const uint8_t *d, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        out[2 * i] = HEX[d[i] >> 4]
        out[2 * i + 1] = HEX[d[i] & 15]
    return 2 * n


# ---------------------------------------------------------------------------- range checks
# The official signer's validation rules for the fields mmfast sets (its error for each is a
# refusal; ours is a NativeSignerError naming the field).
_MAX_ACCOUNT = (1 << 48) - 2
_MAX_INDEX = (1 << 48) - 1
_MAX_ORDER_INDEX = (1 << 60) - 1
_U32 = (1 << 32) - 1
_I64 = (1 << 63) - 1


def _shown(value):
    """A refused value as an error may show it: short ints only (a key passed in the wrong
    field must not end up in an error text or a log)."""
    if isinstance(value, int) and abs(value) < 10 ** 20:
        return repr(int(value))
    return f"a {type(value).__name__}"


def _check(name, value, lo, hi):
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, int) or not lo <= value <= hi:
        raise NativeSignerError(f"{name} must be an int in {lo}..{hi}, got {_shown(value)}")
    return value


_FIELD_RANGES = {
    "market_index": (0, _MAX_INDEX),  # and not 255: _validate has the rule
    "client_order_index": (0, _MAX_INDEX),
    "base_amount": (0, _MAX_INDEX),
    "price": (1, _U32),
    "is_ask": (0, 1),
    "order_type": (0, 8),
    "time_in_force": (0, 2),
    "reduce_only": (0, 1),
    "trigger_price": (0, _U32),
    "order_expiry": (0, _I64),
    "index": (1, _MAX_ORDER_INDEX),
    "scheduled_time_ms": (0, _I64),
    "initial_margin_fraction": (1, 10_000),
    "margin_mode": (0, 1),
    "integrator_account_index": (0, _MAX_ACCOUNT),
    "max_perps_taker_fee": (0, _U32),
    "max_perps_maker_fee": (0, _U32),
    "max_spot_taker_fee": (0, _U32),
    "max_spot_maker_fee": (0, _U32),
    "approval_expiry": (0, _I64),
    "integrator_taker_fee": (0, 1_000_000),
    "integrator_maker_fee": (0, 1_000_000),
    "skip_nonce": (0, 1),
    "cancel_all_market_index": (0, 255),
    "self_trade_behavior": (0, 3),
    "self_trade_equality": (0, 1),
    "order_version": (0, _MAX_INDEX),
}


# ---------------------------------------------------------------------------- validation
# The official signer's rules (its Validate of each tx type), checked on the final TxBody by
# both paths (NativeSigner's methods and sign_tx), so nothing it refuses is ever signed here.
# Messages name the rule, never a value.
cdef enum:
    OT_LIMIT = 0
    OT_MARKET = 1
    OT_STOP_LOSS = 2
    OT_STOP_LOSS_LIMIT = 3
    OT_TAKE_PROFIT = 4
    OT_TAKE_PROFIT_LIMIT = 5
    OT_TWAP = 6
    TIF_IOC = 0
    TIF_GTT = 1

cdef int64_t MAX_TIMESTAMP = (1 << 48) - 1
cdef int64_t MAX_COI = (1 << 48) - 1
cdef int64_t MAX_OIDX = (1 << 60) - 1
cdef int64_t MAX_PRICE = (1 << 32) - 1
cdef int64_t MAX_ACCT = (1 << 48) - 2


cdef inline bint _market_ok(int64_t m) noexcept nogil:
    # The official signer (lighter-sdk 1.1.8) takes any market id 0..2^48-1 but 255, its
    # "no market"; it no longer tells perps from spot ranges.
    return 0 <= m <= MAX_COI and m != 255


cdef const char *_validate(const TxBody *b, int64_t nonce, int64_t expired_at) noexcept nogil:
    """NULL if the official signer would sign this tx, else why not."""
    cdef const int64_t *v = b.vals
    cdef int i, n = 0
    cdef int64_t typ, tif, exp, trig
    if nonce < 0:
        return "nonce must be >= 0"
    if expired_at < 0 or expired_at > MAX_TIMESTAMP:
        return "expired_at must be within 0..2^48-1"
    # attributes
    for i in range(1, N_ATTR):
        n += b.attr_set[i]
    if n > ATTRS_PER_TX:
        return "at most 4 tx attributes"
    if b.attr_set[1] and not 0 <= b.attr_val[1] <= MAX_ACCT:
        return "integrator_account_index out of range"
    if (b.attr_set[2] and not 0 <= b.attr_val[2] <= 1_000_000) or (
            b.attr_set[3] and not 0 <= b.attr_val[3] <= 1_000_000):
        return "integrator fee out of range (0..1000000)"
    if b.attr_set[4] and b.attr_val[4] != 1:
        return "skip_nonce must be 0 or 1"
    if b.attr_set[5] and not 0 <= b.attr_val[5] <= 255:
        return "cancel_all_market_index out of range"
    if b.attr_set[6] and not 0 <= b.attr_val[6] <= 3:
        return "self_trade_behavior out of range (0..3)"
    if b.attr_set[7] and not 0 <= b.attr_val[7] <= 1:
        return "self_trade_equality out of range (0..1)"
    if b.attr_set[8] and not 0 <= b.attr_val[8] <= MAX_COI:
        return "order_version out of range"
    if (b.attr_set[2] or b.attr_set[3]) and not b.attr_set[1]:
        return "integrator fees need an integrator_account_index"
    if (b.attr_set[6] or b.attr_set[7]) and (b.attr_set[2] or b.attr_set[3]):
        return "a self-trade mode cannot go with integrator fees"
    if b.attr_set[6] and b.attr_val[6] == 3 and b.attr_set[7] and b.attr_val[7] == 1:
        return "self-trade reduce mode cannot go with master-account equality"
    if b.kind == K_CREATE_ORDER:
        # market, coi, base, price, is_ask, type, tif, reduce_only, trigger, order_expiry
        if not _market_ok(v[0]):
            return "market_index must be within 0..2^48-1 and not 255 (no market)"
        if v[1] != 0 and not 1 <= v[1] <= MAX_COI:
            return "client_order_index out of range"
        if v[7] != 1 and v[2] == 0:
            return "base_amount 0 needs reduce_only"
        if not 0 <= v[2] <= MAX_COI:
            return "base_amount out of range"
        if not 1 <= v[3] <= MAX_PRICE:
            return "price out of range (1..2^32-1)"
        if not 0 <= v[4] <= 1:
            return "is_ask must be 0 or 1"
        tif = v[6]
        if not 0 <= tif <= 2:
            return "time_in_force must be 0, 1 or 2"
        if not 0 <= v[7] <= 1:
            return "reduce_only must be 0 or 1"
        exp = v[9]
        if exp < 0:
            return "order_expiry must be 0 (none) or an epoch millisecond"
        trig = v[8]
        if not 0 <= trig <= MAX_PRICE:
            return "trigger_price out of range"
        typ = v[5]
        if typ == OT_MARKET:
            if tif != TIF_IOC or exp != 0 or trig != 0:
                return "a market order is IOC with no expiry and no trigger"
        elif typ == OT_LIMIT:
            if trig != 0:
                return "a limit order takes no trigger price"
            if (tif == TIF_IOC) != (exp == 0):
                return "a limit order has an expiry unless it is IOC"
        elif typ == OT_STOP_LOSS or typ == OT_TAKE_PROFIT:
            if tif != TIF_IOC or trig == 0 or exp == 0:
                return "stop-loss / take-profit: IOC, a trigger and an expiry"
        elif typ == OT_STOP_LOSS_LIMIT or typ == OT_TAKE_PROFIT_LIMIT:
            if trig == 0 or exp == 0:
                return "stop-loss / take-profit limit: a trigger and an expiry"
        elif typ == OT_TWAP:
            if tif != TIF_GTT or trig != 0 or exp == 0:
                return "a TWAP order is GTT with an expiry and no trigger"
        else:
            return "order_type must be 0..6"
    elif b.kind == K_CANCEL_ORDER or b.kind == K_MODIFY_ORDER:
        if not _market_ok(v[0]):
            return "market_index must be within 0..2^48-1 and not 255 (no market)"
        if not 1 <= v[1] <= MAX_OIDX:
            return "index out of range (1..2^60-1)"
        if b.kind == K_MODIFY_ORDER:
            if not 0 <= v[2] <= MAX_COI:
                return "base_amount out of range"
            if not 1 <= v[3] <= MAX_PRICE:
                return "price out of range (1..2^32-1)"
            if not 0 <= v[4] <= MAX_PRICE:
                return "trigger_price out of range"
    elif b.kind == K_CANCEL_ALL:
        tif = v[0]
        if b.attr_set[5] and tif != 0:
            return "a market-scoped cancel-all can only be immediate"
        if tif == 0 or tif == 2:
            if v[1] != 0:
                return "an immediate or abort cancel-all takes time 0"
        elif tif == 1:
            if v[1] < 1:
                return "a scheduled cancel-all needs a time"
        else:
            return "cancel-all time_in_force must be 0, 1 or 2"
    elif b.kind == K_UPDATE_LEVERAGE:
        if not _market_ok(v[0]):
            return "market_index must be within 0..2^48-1 and not 255 (no market)"
        if not 0 <= v[2] <= 1:
            return "margin_mode must be 0 or 1"
        if not 1 <= v[1] <= 10_000:
            return "initial_margin_fraction out of range (1..10000)"
    return NULL


cdef int _validate_or_raise(const TxBody *b, int64_t nonce, int64_t expired_at) except -1:
    cdef const char *why = _validate(b, nonce, expired_at)
    if why != NULL:
        raise NativeSignerError(f"{KINDS[b.kind]}: {why.decode()}")
    return 0


cdef int _kind_index(str kind) except -1:
    try:
        return KINDS.index(kind)
    except ValueError:
        raise NativeSignerError(f"unknown tx kind {kind!r}; known: {', '.join(KINDS)}") from None


cdef void _body_from_fields(TxBody *b, str kind, object fields) except *:
    cdef int k = _kind_index(kind)
    cdef int i
    b.kind = k
    _attrs_clear(b)
    body = _KINDS[k][2]
    known = {f for _, f in body} | {f for f, t in _ATTR_FIELDS.items() if t in _KIND_ATTRS[kind]}
    unknown = set(fields) - known
    if unknown:
        raise NativeSignerError(f"{kind}: unknown field(s) {sorted(unknown)}")
    for i, (json_name, field) in enumerate(body):
        if field not in fields:
            raise NativeSignerError(f"{kind}: missing field {field!r}")
        lo, hi = _FIELD_RANGES[field]
        b.vals[i] = _check(field, fields[field], lo, hi)
    for field, typ in _ATTR_FIELDS.items():
        if field in fields and typ in _KIND_ATTRS[kind]:
            lo, hi = _FIELD_RANGES[field]
            _attr_put(b, typ, _check(field, fields[field], lo, hi))
    if sum(b.attr_set[i] for i in range(1, N_ATTR)) > ATTRS_PER_TX:
        raise NativeSignerError(f"{kind}: at most {ATTRS_PER_TX} tx attributes")


cdef void _check_envelope(uint64_t chain_id, int64_t account_index, int64_t api_key_index,
                          int64_t nonce, int64_t expired_at) except *:
    _check("chain_id", chain_id, 0, _U32)
    _check("account_index", account_index, 1, _MAX_ACCOUNT)
    _check("api_key_index", api_key_index, 0, 254)
    _check("nonce", nonce, 0, _I64)
    _check("expired_at", expired_at, 0, _I64)


# ---------------------------------------------------------------------------- key handling
cdef void _scalar_from_key(scalar *sk, object key) except *:
    cdef bytes b
    if isinstance(key, str):
        s = key[2:] if key[:2] in ("0x", "0X") else key
        try:
            b = bytes.fromhex(s)
        except ValueError:
            raise NativeSignerError("private key is not hex") from None
    elif isinstance(key, (bytes, bytearray, memoryview)):
        b = bytes(key)
    else:
        raise NativeSignerError("private key must be 40 bytes or 80 hex digits")
    if len(b) != 40:
        raise NativeSignerError(f"private key must be 40 bytes, got {len(b)}")
    cdef scalar raw
    sc_from_le(&raw, <const uint8_t *>PyBytes_AS_STRING(b))
    sc_reduce(sk, &raw)                     # the official signer reduces mod n too
    lsig_wipe(&raw, sizeof(raw))
    if sc_is_zero(sk):
        raise NativeSignerError("private key is zero mod the group order")


cdef inline void _need(object b, Py_ssize_t n, str what) except *:
    if not isinstance(b, bytes) or PyBytes_GET_SIZE(b) != n:
        raise NativeSignerError(f"{what} must be {n} bytes")


cdef inline const uint8_t *_ptr(bytes b):
    return <const uint8_t *>PyBytes_AS_STRING(b)


# ---------------------------------------------------------------------------- primitives
def gl_op(str op, a, b=0):
    """Goldilocks field operation on canonical ints: add, sub, mul, neg, inv, pow (b = exponent)."""
    cdef uint64_t x = gl_canon(a), y
    if op == "pow":
        return gl_pow(x, b)
    y = gl_canon(b)
    if op == "add":
        return gl_add(x, y)
    if op == "sub":
        return gl_sub(x, y)
    if op == "mul":
        return gl_mul(x, y)
    if op == "neg":
        return gl_neg(x)
    if op == "inv":
        return gl_inv(x)
    raise ValueError(f"unknown op {op!r}")


def fp5_op(str op, bytes a, b=None):
    """Fp5 operation on 40-byte little-endian elements: add, sub, mul, neg, inv, pow (b = int)."""
    cdef fp5 x, y, r
    _need(a, 40, "a")
    fp5_from_le(&x, _ptr(a))
    if op == "pow":
        fp5_pow(&r, &x, b)
    elif op == "neg":
        fp5_neg(&r, &x)
    elif op == "inv":
        fp5_inv(&r, &x)
    else:
        _need(b, 40, "b")
        fp5_from_le(&y, _ptr(b))
        if op == "add":
            fp5_add(&r, &x, &y)
        elif op == "sub":
            fp5_sub(&r, &x, &y)
        elif op == "mul":
            fp5_mul(&r, &x, &y)
        elif op == "eq":
            return bool(fp5_eq(&x, &y))
        else:
            raise ValueError(f"unknown op {op!r}")
    cdef uint8_t out[40]
    fp5_to_le(out, &r)
    return PyBytes_FromStringAndSize(<char *>out, 40)


cdef list _elems(bytes data):
    if len(data) % 8:
        raise NativeSignerError("field elements are 8 bytes each")
    return [int.from_bytes(data[i:i + 8], "little") for i in range(0, len(data), 8)]


def poseidon2_permute(bytes state):
    """One Poseidon2 permutation of 12 little-endian field elements (96 bytes)."""
    cdef uint64_t s[12]
    cdef int i
    _need(state, 96, "state")
    for i, v in enumerate(_elems(state)):
        s[i] = gl_canon(v)
    p2_permute(s)
    return b"".join(int(s[i]).to_bytes(8, "little") for i in range(12))


def poseidon2_hash(bytes data, int num_outputs):
    """The sponge without padding: 8-byte little-endian elements in, num_outputs elements out."""
    if not 0 <= num_outputs <= (1 << 16):
        raise NativeSignerError("num_outputs must be within 0..65536")
    vals = _elems(data)
    cdef size_t n = len(vals), i
    cdef uint64_t *inp = <uint64_t *>malloc(8 * (n + 1))
    cdef uint64_t *out = <uint64_t *>malloc(8 * (num_outputs + 1))
    if inp == NULL or out == NULL:
        free(inp)
        free(out)
        raise MemoryError()
    try:
        for i in range(n):
            inp[i] = vals[i]
        p2_hash_n_to_m(inp, n, out, num_outputs)
        return b"".join(int(out[i]).to_bytes(8, "little") for i in range(num_outputs))
    finally:
        free(inp)
        free(out)


def hash_to_quintic(bytes data):
    """Poseidon2 of field elements into one Fp5 element (40 bytes): Lighter's message hash."""
    return poseidon2_hash(data, 5)


def hash_n_to_one(list hashes):
    """Fold 32-byte (4-element) hashes left to right with two-to-one Poseidon2."""
    if not hashes:
        raise NativeSignerError("hash_n_to_one needs at least one hash")
    acc = bytes(hashes[0])
    for h in hashes[1:]:
        acc = poseidon2_hash(acc + bytes(h), 4)
    return acc


def point_decode(bytes w):
    """(decodes, is_neutral, encoded_back) for a 40-byte encoded point."""
    cdef fp5 x, back
    cdef ec_point p
    _need(w, 40, "w")
    if not fp5_from_le_canonical(&x, _ptr(w)) or not ec_decode(&p, &x):
        return False, False, None
    ec_encode(&back, &p)
    cdef uint8_t out[40]
    fp5_to_le(out, &back)
    return True, bool(fp5_is_zero(&p.u)), PyBytes_FromStringAndSize(<char *>out, 40)


cdef void _decode_or_raise(ec_point *p, bytes w) except *:
    cdef fp5 x
    _need(w, 40, "point")
    if not fp5_from_le_canonical(&x, _ptr(w)) or not ec_decode(p, &x):
        raise NativeSignerError("not an encoded ECgFp5 point")


cdef bytes _encode(const ec_point *p):
    cdef fp5 w
    cdef uint8_t out[40]
    ec_encode(&w, p)
    fp5_to_le(out, &w)
    return PyBytes_FromStringAndSize(<char *>out, 40)


def point_add(bytes a, bytes b):
    cdef ec_point p, q, r
    _decode_or_raise(&p, a)
    _decode_or_raise(&q, b)
    ec_add(&r, &p, &q)
    return _encode(&r)


def point_double(bytes a):
    cdef ec_point p, r
    _decode_or_raise(&p, a)
    ec_double(&r, &p)
    return _encode(&r)


def point_mul(bytes w, bytes scalar_le):
    """scalar * point (scalar: 40 bytes little-endian, reduced mod n)."""
    cdef ec_point p, r
    cdef scalar raw, k
    _decode_or_raise(&p, w)
    _need(scalar_le, 40, "scalar")
    sc_from_le(&raw, _ptr(scalar_le))
    sc_reduce(&k, &raw)
    ec_mul_var(&r, &p, &k)
    return _encode(&r)


def generator_mul(bytes scalar_le):
    """scalar * G through the fixed-base table (the signing path)."""
    cdef ec_point r
    cdef scalar raw, k
    _need(scalar_le, 40, "scalar")
    sc_from_le(&raw, _ptr(scalar_le))
    sc_reduce(&k, &raw)
    ec_mul_gen(&r, &k)
    return _encode(&r)


def scalar_op(str op, bytes a, b=None):
    """Scalar (mod n) operation on 40-byte little-endian values: add, sub, mul, neg, is_zero."""
    cdef scalar x, y, r, raw
    _need(a, 40, "a")
    sc_from_le(&raw, _ptr(a))
    sc_reduce(&x, &raw)
    if op == "is_zero":
        return bool(sc_is_zero(&x))
    if op == "neg":
        sc_neg(&r, &x)
    else:
        _need(b, 40, "b")
        sc_from_le(&raw, _ptr(b))
        sc_reduce(&y, &raw)
        if op == "add":
            sc_add(&r, &x, &y)
        elif op == "sub":
            sc_sub(&r, &x, &y)
        elif op == "mul":
            sc_mul(&r, &x, &y)
        else:
            raise ValueError(f"unknown op {op!r}")
    cdef uint8_t out[40]
    sc_to_le(out, &r)
    return PyBytes_FromStringAndSize(<char *>out, 40)


def montgomery_n0i():
    """-n^-1 mod 2^64 as derived at import (a check on the derivation)."""
    return SC_N0I


# ---------------------------------------------------------------------------- Schnorr, tests
def public_key(sk):
    """The 40-byte public key (encoded sk * G) of a 40-byte private key (bytes or hex)."""
    cdef scalar s
    cdef fp5 pk
    cdef uint8_t out[40]
    _scalar_from_key(&s, sk)
    schnorr_public_key(&pk, &s)
    lsig_wipe(&s, sizeof(s))
    fp5_to_le(out, &pk)
    return PyBytes_FromStringAndSize(<char *>out, 40)


def sign_hashed(sk, bytes hashed_msg, bytes k):
    """Schnorr signature (80 bytes) of a hashed message with a GIVEN nonce k.

    For test vectors only: a fixed or predictable k reveals the key. Order entry never calls it.
    """
    cdef scalar s, kk, raw
    cdef fp5 msg, r
    cdef uint8_t sig[80]
    _need(hashed_msg, 40, "hashed_msg")
    _need(k, 40, "k")
    _scalar_from_key(&s, sk)
    fp5_from_le(&msg, _ptr(hashed_msg))
    sc_from_le(&raw, _ptr(k))
    sc_reduce(&kk, &raw)
    schnorr_commit(&r, &kk)
    schnorr_sign_commit(sig, &s, &msg, &kk, &r)
    lsig_wipe(&s, sizeof(s))
    lsig_wipe(&kk, sizeof(kk))
    return PyBytes_FromStringAndSize(<char *>sig, 80)


def verify_hashed(pk, hashed_msg, sig):
    """True if sig (80 bytes) is a valid signature of hashed_msg (40 bytes) under pk (40 bytes)."""
    cdef fp5 p, m
    if not (isinstance(pk, bytes) and isinstance(hashed_msg, bytes) and isinstance(sig, bytes)):
        return False
    if len(pk) != 40 or len(hashed_msg) != 40 or len(sig) != 80:
        return False
    if not fp5_from_le_canonical(&p, _ptr(pk)):
        return False
    fp5_from_le(&m, _ptr(hashed_msg))
    return bool(schnorr_verify(&p, &m, _ptr(sig)))


@cython.final
cdef class Verifier:
    """One public key prepared for many verifications: decoded once, with a fixed-base table
    of its multiples (80 KiB, ~2 ms to build) so each check costs two table walks instead of a
    variable-base multiplication. What the simulator keeps per registered API key."""

    cdef ec_affine *_tab            # 64 x 16 affine multiples of the key
    cdef readonly bytes public_key  # the 40-byte encoded key

    def __cinit__(self, pk):
        cdef ec_point p
        self._tab = NULL
        _need(pk, 40, "public key")
        _decode_or_raise(&p, pk)
        self._tab = <ec_affine *>malloc(sizeof(ec_affine) * 1024)
        if self._tab == NULL:
            raise MemoryError()
        ec_table_build_flat(self._tab, &p)
        self.public_key = pk

    def __dealloc__(self):
        free(self._tab)

    def verify(self, hashed_msg, sig):
        """True if sig (80 bytes) signs hashed_msg (40 bytes) under this key."""
        cdef fp5 m
        if not (isinstance(hashed_msg, bytes) and isinstance(sig, bytes)):
            return False
        if len(hashed_msg) != 40 or len(sig) != 80:
            return False
        fp5_from_le(&m, _ptr(hashed_msg))
        return bool(schnorr_verify_flat(self._tab, &m, _ptr(sig)))

    def __repr__(self):
        return f"Verifier({self.public_key.hex()})"


cdef int _fresh_sign(uint8_t *sig, const scalar *sk, const fp5 *msg) except -1:
    """Sign with a fresh nonce from the CSPRNG (no pool)."""
    cdef lsig_commit c
    if lsig_random_scalar(&c.k):
        raise NativeSignerError("the OS refused randomness (getrandom)")
    schnorr_commit(&c.r, &c.k)
    schnorr_sign_commit(sig, sk, msg, &c.k, &c.r)
    lsig_wipe(&c, sizeof(c))
    return 0


def tx_hash(str kind, fields, *, chain_id, account_index, api_key_index, nonce, expired_at):
    """The 40-byte hash of a transaction (what is signed, and its venue tx hash)."""
    cdef TxBody b
    cdef fp5 h
    cdef uint8_t out[40]
    _check_envelope(chain_id, account_index, api_key_index, nonce, expired_at)
    _body_from_fields(&b, kind, fields)
    _validate_or_raise(&b, nonce, expired_at)
    _tx_hash(&b, chain_id, account_index, api_key_index, nonce, expired_at, &h)
    fp5_to_le(out, &h)
    return PyBytes_FromStringAndSize(<char *>out, 40)


def sign_tx(str kind, fields, *, sk, chain_id, account_index, api_key_index, nonce, expired_at):
    """Sign one transaction with a fresh nonce: (tx_info JSON text, 40-byte tx hash)."""
    cdef TxBody b
    cdef fp5 h
    cdef scalar s
    cdef uint8_t sig[80]
    cdef uint8_t hb[40]
    cdef char buf[JSON_CAP]
    _check_envelope(chain_id, account_index, api_key_index, nonce, expired_at)
    _body_from_fields(&b, kind, fields)
    _validate_or_raise(&b, nonce, expired_at)
    _scalar_from_key(&s, sk)
    try:
        _tx_hash(&b, chain_id, account_index, api_key_index, nonce, expired_at, &h)
        _fresh_sign(sig, &s, &h)
    finally:
        lsig_wipe(&s, sizeof(s))
    cdef Py_ssize_t n = _tx_json(&b, account_index, api_key_index, nonce, expired_at, sig, buf)
    fp5_to_le(hb, &h)
    return PyUnicode_DecodeASCII(buf, n, NULL), PyBytes_FromStringAndSize(<char *>hb, 40)


# tx_info (as the venue receives it) -> the same hash: the simulator's check of every tx.
_INFO_ATTRS = {"1", "2", "3", "4", "5", "6", "7", "8"}


def tx_info_hash(int tx_type, info, uint64_t chain_id):
    """The 40-byte hash of a received tx_info (parsed JSON) of type 14/15/16/17/20/45 or 8.

    Raises NativeSignerError if a field is missing or not an int. ChangePubKey (8) hashes the
    new public key's five limbs (``PubKey``, base64) in place of body fields.
    """
    cdef TxBody b
    cdef fp5 h, ah
    cdef uint8_t out[40]
    cdef uint64_t elems[16]
    cdef uint64_t pair[10]
    cdef int i, k = -1
    try:
        account, api_key, nonce, expired_at = (
            info["AccountIndex"], info["ApiKeyIndex"], info["Nonce"], info["ExpiredAt"])
        attrs = info.get("L2TxAttributes") or {}
    except (KeyError, TypeError, AttributeError):
        raise NativeSignerError("tx_info: AccountIndex, ApiKeyIndex, Nonce or ExpiredAt missing"
                                ) from None
    for v in (account, api_key, nonce, expired_at):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _I64:
            raise NativeSignerError("tx_info: AccountIndex, ApiKeyIndex, Nonce and ExpiredAt"
                                    " must be ints >= 0")
    _attrs_clear(&b)
    if not isinstance(attrs, dict) or not set(attrs) <= _INFO_ATTRS:
        raise NativeSignerError("tx_info: bad L2TxAttributes")
    if len(attrs) > ATTRS_PER_TX:
        raise NativeSignerError(f"tx_info: at most {ATTRS_PER_TX} L2TxAttributes")
    for key, value in attrs.items():
        if isinstance(value, bool) or not isinstance(value, int) or not -_I64 <= value <= _I64:
            raise NativeSignerError("tx_info: bad L2TxAttributes value")
        _attr_put(&b, int(key), value)
    if tx_type == 8:
        import base64 as _b64
        try:
            pk = _b64.b64decode(info["PubKey"], validate=True)
        except Exception:
            raise NativeSignerError("tx_info: bad PubKey") from None
        _need(pk, 40, "PubKey")
        elems[0] = chain_id
        elems[1] = 8
        elems[2] = <uint64_t>nonce
        elems[3] = <uint64_t>expired_at
        elems[4] = <uint64_t>account
        elems[5] = <uint64_t>api_key
        fp5_from_le(&h, _ptr(pk))
        for i in range(5):
            elems[6 + i] = h.v[i]
        p2_hash_to_fp5(elems, 11, &h)
        memset(elems, 0, sizeof(elems))
        na = 0
        for i in range(1, N_ATTR):
            if b.attr_set[i] and na < ATTRS_PER_TX:
                elems[2 * na] = i
                elems[2 * na + 1] = <uint64_t>b.attr_val[i]
                na += 1
        if na:
            p2_hash_to_fp5(elems, 2 * ATTRS_PER_TX, &ah)
            memcpy(pair, h.v, 40)
            memcpy(pair + 5, ah.v, 40)
            p2_hash_to_fp5(pair, 10, &h)
    else:
        for i in range(N_KINDS):
            if KIND_TX_TYPE[i] == tx_type:
                k = i
        if k < 0:
            raise NativeSignerError(f"tx_info: no hash rule for tx type {tx_type}")
        b.kind = k
        for i, (json_name, _field) in enumerate(_KINDS[k][2]):
            v = info.get(json_name)
            if isinstance(v, bool) or not isinstance(v, int) or not -_I64 <= v <= _I64:
                raise NativeSignerError(f"tx_info: {json_name} missing or not an int")
            b.vals[i] = v
        _tx_hash(&b, chain_id, account, api_key, nonce, expired_at, &h)
    fp5_to_le(out, &h)
    return PyBytes_FromStringAndSize(<char *>out, 40)


cdef bytes _auth_message(int64_t deadline, int64_t account_index, int64_t api_key_index):
    return f"{deadline}:{account_index}:{api_key_index}".encode()


cdef void _auth_hash(bytes message, fp5 *out) except *:
    # The message's bytes in 8-byte little-endian chunks, the last zero-padded.
    cdef Py_ssize_t n = len(message), nel = (n + 7) // 8, i
    cdef uint64_t elems[16]
    if nel > 16:
        raise NativeSignerError("auth message too long")
    padded = message + b"\0" * (nel * 8 - n)
    for i in range(nel):
        elems[i] = int.from_bytes(padded[8 * i:8 * i + 8], "little")
    p2_hash_to_fp5(elems, nel, out)


def auth_token(sk, *, account_index, api_key_index, deadline):
    """An auth token "deadline:account:key:hex(sig)" (deadline in epoch seconds)."""
    cdef scalar s
    cdef fp5 h
    cdef uint8_t sig[80]
    _check("account_index", account_index, 1, _MAX_ACCOUNT)
    _check("api_key_index", api_key_index, 0, 254)
    _check("deadline", deadline, 0, _I64)
    msg = _auth_message(deadline, account_index, api_key_index)
    _auth_hash(msg, &h)
    _scalar_from_key(&s, sk)
    try:
        _fresh_sign(sig, &s, &h)
    finally:
        lsig_wipe(&s, sizeof(s))
    return msg.decode() + ":" + PyBytes_FromStringAndSize(<char *>sig, 80).hex()


def verify_auth_token(pk, str token):
    """True if token is well formed and signed by pk (expiry is the caller's to check)."""
    cdef fp5 h
    parts = token.split(":")
    if len(parts) != 4:
        return False
    try:
        deadline, account, key = int(parts[0]), int(parts[1]), int(parts[2])
        sig = bytes.fromhex(parts[3])
    except ValueError:
        return False
    if f"{deadline}:{account}:{key}" != ":".join(parts[:3]):
        return False
    _auth_hash(":".join(parts[:3]).encode(), &h)
    cdef uint8_t hb[40]
    fp5_to_le(hb, &h)
    return verify_hashed(pk, PyBytes_FromStringAndSize(<char *>hb, 40), sig)


# ---------------------------------------------------------------------------- NativeSigner
_live_signers = weakref.WeakSet()


@cython.final
cdef class NativeSigner:
    """Signs Lighter txs for one (account, API key) of one chain, on the calling thread.

    The private key is copied into C memory at construction (the caller's copy is the caller's
    to drop) and wiped by ``close()``, on garbage collection, and in a forked child. With
    ``pool_size > 0`` a C thread keeps that many nonce commitments ready; a signature takes one
    (``pooled``) or, when the pool is empty, makes a fresh one inline (``fresh``). Each
    ``sign_*`` method returns ``(tx_info, tx_hash)``: the JSON text the venue receives and the
    80-hex-digit hash, the same as the official signer's for the same request.
    """

    cdef scalar *_sk                # the private key (malloc'd, wiped on close)
    cdef fp5 _pk                    # the public key
    cdef uint64_t _chain_id         # signed into every tx hash
    cdef int64_t _account           # AccountIndex of every tx
    cdef int64_t _api_key           # ApiKeyIndex of every tx
    cdef lsig_pool *_pool           # nonce commitments, NULL without a pool
    cdef TxBody _body               # scratch request, reused by every sign_* call
    cdef char _json[JSON_CAP]       # scratch tx_info
    cdef readonly object closed_reason  # None while usable, else why not
    cdef readonly uint64_t pooled   # signatures that used a pooled commitment
    cdef readonly uint64_t fresh    # signatures that computed their commitment inline
    cdef readonly uint64_t warms    # warm() calls that ran
    cdef object __weakref__

    def __cinit__(self, key, *, int chain_id, int64_t account_index, int api_key_index,
                  int pool_size=0):
        self._sk = NULL
        self._pool = NULL
        self.closed_reason = "not initialised"
        _check("chain_id", chain_id, 0, _U32)
        _check("account_index", account_index, 1, _MAX_ACCOUNT)
        _check("api_key_index", api_key_index, 0, 254)
        _check("pool_size", pool_size, 0, 1 << 16)
        self._sk = <scalar *>malloc(sizeof(scalar))
        if self._sk == NULL:
            raise MemoryError()
        _scalar_from_key(self._sk, key)
        schnorr_public_key(&self._pk, self._sk)
        self._chain_id = chain_id
        self._account = account_index
        self._api_key = api_key_index
        if pool_size > 0:
            self._pool = <lsig_pool *>malloc(sizeof(lsig_pool))
            if self._pool == NULL or lsig_pool_init(self._pool, pool_size):
                free(self._pool)
                self._pool = NULL
                self._wipe_key()
                raise NativeSignerError("could not start the nonce pool thread")
        self.closed_reason = None
        _live_signers.add(self)

    def __dealloc__(self):
        self._release()

    def __repr__(self):
        return (f"NativeSigner(chain_id={self._chain_id}, account_index={self._account},"
                f" api_key_index={self._api_key}, pool={self.pool_available}/{self.pool_size},"
                f" closed={self.closed_reason!r})")

    def __reduce__(self):
        raise TypeError("NativeSigner cannot be pickled or copied")

    cdef void _wipe_key(self) noexcept:
        if self._sk != NULL:
            lsig_wipe(self._sk, sizeof(scalar))
            free(self._sk)
            self._sk = NULL

    cdef void _release(self) noexcept:
        self._wipe_key()
        if self._pool != NULL:
            with nogil:
                lsig_pool_destroy(self._pool)
            free(self._pool)
            self._pool = NULL

    def close(self):
        """Wipe the key and the pool, stop the pool thread. Idempotent."""
        self._release()
        if self.closed_reason is None:
            self.closed_reason = "closed"

    # fork hooks (module-level os.register_at_fork calls these on every live signer)
    def _before_fork(self):
        if self._pool != NULL and self._pool.running:
            with nogil:
                lsig_pool_before_fork(self._pool)

    def _after_fork_parent(self):
        if self._pool != NULL and self._pool.running:
            lsig_pool_after_fork_parent(self._pool)

    def _after_fork_child(self):
        if self._pool != NULL:
            lsig_pool_after_fork_child(self._pool)
        self._wipe_key()
        self.closed_reason = "inherited through fork(); make a new signer in this process"

    @property
    def public_key(self):
        """The 40-byte public key registered for this API key."""
        cdef uint8_t out[40]
        fp5_to_le(out, &self._pk)
        return PyBytes_FromStringAndSize(<char *>out, 40)

    @property
    def chain_id(self):
        return self._chain_id

    @property
    def account_index(self):
        return self._account

    @property
    def api_key_index(self):
        return self._api_key

    @property
    def pool_size(self):
        return self._pool.cap if self._pool != NULL else 0

    @property
    def pool_available(self):
        """Commitments ready now."""
        if self._pool == NULL:
            return 0
        return lsig_pool_count(self._pool)

    @property
    def pool_generated(self):
        return self._pool.generated if self._pool != NULL else 0

    cdef int _ready(self) except -1:
        if self._sk == NULL:
            raise NativeSignerError(f"signer is closed: {self.closed_reason}")
        return 0

    cdef int _sign_msg(self, uint8_t *sig, const fp5 *msg) except -1:
        cdef lsig_commit c
        if self._pool != NULL and lsig_pool_take(self._pool, &c):
            schnorr_sign_commit(sig, self._sk, msg, &c.k, &c.r)
            lsig_wipe(&c, sizeof(c))
            self.pooled += 1
        else:
            _fresh_sign(sig, self._sk, msg)
            self.fresh += 1
        return 0

    cdef tuple _finish(self, int64_t nonce, int64_t expired_at):
        cdef fp5 h
        _validate_or_raise(&self._body, nonce, expired_at)
        cdef uint8_t sig[80]
        cdef uint8_t hb[40]
        cdef char hx[80]
        _tx_hash(&self._body, self._chain_id, self._account, self._api_key, nonce, expired_at, &h)
        self._sign_msg(sig, &h)
        cdef Py_ssize_t n = _tx_json(&self._body, self._account, self._api_key, nonce, expired_at,
                                     sig, self._json)
        fp5_to_le(hb, &h)
        _hex(hx, hb, 40)
        return (PyUnicode_DecodeASCII(self._json, n, NULL), PyUnicode_DecodeASCII(hx, 80, NULL))

    cdef TxBody *_begin(self, int kind) except NULL:
        """The scratch body, cleared for ``kind`` (field rules are checked on the finished
        body by _validate: one place for both paths)."""
        self._ready()
        cdef TxBody *b = &self._body
        b.kind = kind
        _attrs_clear(b)
        return b

    def sign_create_order(self, int64_t market_index, int64_t client_order_index,
                          int64_t base_amount, int64_t price, int64_t is_ask, int order_type,
                          int time_in_force, int64_t reduce_only, int64_t trigger_price,
                          int64_t order_expiry, int64_t nonce, int64_t expired_at):
        """CreateOrder (type 14) with the venue's default attributes (none)."""
        cdef TxBody *b = self._begin(K_CREATE_ORDER)
        b.vals[0] = market_index
        b.vals[1] = client_order_index
        b.vals[2] = base_amount
        b.vals[3] = price
        b.vals[4] = is_ask
        b.vals[5] = order_type
        b.vals[6] = time_in_force
        b.vals[7] = reduce_only
        b.vals[8] = trigger_price
        b.vals[9] = order_expiry
        return self._finish(nonce, expired_at)

    def sign_cancel_order(self, int64_t market_index, int64_t index, int64_t nonce,
                          int64_t expired_at):
        """CancelOrder (type 15): index is a client_order_index (< 2^48) or an order_index."""
        cdef TxBody *b = self._begin(K_CANCEL_ORDER)
        b.vals[0] = market_index
        b.vals[1] = index
        return self._finish(nonce, expired_at)

    def sign_modify_order(self, int64_t market_index, int64_t index, int64_t base_amount,
                          int64_t price, int64_t trigger_price, int64_t nonce,
                          int64_t expired_at):
        """ModifyOrder (type 17)."""
        cdef TxBody *b = self._begin(K_MODIFY_ORDER)
        b.vals[0] = market_index
        b.vals[1] = index
        b.vals[2] = base_amount
        b.vals[3] = price
        b.vals[4] = trigger_price
        return self._finish(nonce, expired_at)

    def sign_cancel_all(self, int time_in_force, int64_t time_ms, int market_index,
                        int64_t nonce, int64_t expired_at):
        """CancelAllOrders (type 16); market_index 255 = every market (no attribute)."""
        cdef TxBody *b = self._begin(K_CANCEL_ALL)
        b.vals[0] = time_in_force
        b.vals[1] = time_ms
        _attr_put(b, 5, market_index)
        return self._finish(nonce, expired_at)

    def sign_update_leverage(self, int64_t market_index, int initial_margin_fraction,
                             int margin_mode, int64_t nonce, int64_t expired_at):
        """UpdateLeverage (type 20)."""
        cdef TxBody *b = self._begin(K_UPDATE_LEVERAGE)
        b.vals[0] = market_index
        b.vals[1] = initial_margin_fraction
        b.vals[2] = margin_mode
        return self._finish(nonce, expired_at)

    def sign_tx(self, str kind, fields, *, nonce, expired_at):
        """Any supported kind by name, fields as in ``sign_tx`` (module level)."""
        self._ready()
        _body_from_fields(&self._body, kind, fields)
        return self._finish(nonce, expired_at)

    def warm(self):
        """Run the signing code once on throwaway data, so a signature that follows idle time
        finds that code and its tables in cache (the compiled step's ``warm``): a ModifyOrder
        of constants hashed, "signed" with the constant 1 as key and nonce and the hash as
        the commitment, written as tx_info into the JSON scratch and hexed. Public data only:
        the key, the pool and its commitments are not touched. False (nothing run) once
        closed."""
        cdef TxBody b
        cdef fp5 h
        cdef scalar one
        cdef uint8_t sig[80]
        cdef uint8_t hb[40]
        cdef char hx[80]
        if self._sk == NULL:
            return False
        memset(&b, 0, sizeof(b))
        b.kind = K_MODIFY_ORDER
        b.vals[1] = 1
        b.vals[2] = 1
        b.vals[3] = 1
        memset(&one, 0, sizeof(one))
        one.v[0] = 1
        _validate_or_raise(&b, 1, 1)
        _tx_hash(&b, self._chain_id, self._account, self._api_key, 1, 1, &h)
        schnorr_sign_commit(sig, &one, &h, &one, &h)
        _tx_json(&b, self._account, self._api_key, 1, 1, sig, self._json)
        fp5_to_le(hb, &h)
        _hex(hx, hb, 40)
        self.warms += 1
        return True

    def auth_token(self, int64_t deadline):
        """An auth token valid until ``deadline`` (epoch seconds)."""
        cdef fp5 h
        cdef uint8_t sig[80]
        self._ready()
        if deadline < 0:
            raise NativeSignerError(f"deadline must be >= 0, got {deadline}")
        msg = _auth_message(deadline, self._account, self._api_key)
        _auth_hash(msg, &h)
        self._sign_msg(sig, &h)
        return msg.decode() + ":" + PyBytes_FromStringAndSize(<char *>sig, 80).hex()


def _before_fork():
    for s in list(_live_signers):
        s._before_fork()


def _after_fork_parent():
    for s in list(_live_signers):
        s._after_fork_parent()


def _after_fork_child():
    for s in list(_live_signers):
        s._after_fork_child()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent,
                    after_in_child=_after_fork_child)
