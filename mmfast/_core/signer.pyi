"""Lighter's L2 transaction signer, compiled (``cython_src/mmfast/_core/signer.pyx``; docs/signer.md).

Goldilocks field (p = 2^64 - 2^32 + 1), its quintic extension Fp5, Poseidon2, the ECgFp5 group
and its scalars (mod n, n < 2^319), Schnorr signatures, Lighter tx hashes and the ``tx_info``
JSON text exactly as the official signer writes it, and auth tokens.

Encodings: field elements are ints (``gl_op``) or 8 bytes little-endian; Fp5 elements, encoded
points and public keys are 40 bytes (five little-endian limbs); scalars and private keys are 40
bytes little-endian (a key may also be 80 hex digits, optionally ``0x``-prefixed; it is reduced
mod n); a signature is 80 bytes, ``s || e``; a tx hash is a 40-byte Fp5 element (80 hex digits in
``NativeSigner`` results). The module-level functions take keys as bytes and exist for the
shared vectors and the differential tests; order entry uses ``NativeSigner``, whose key stays in
C memory. Refused requests raise ``NativeSignerError`` (a ``ValueError``).
"""

from collections.abc import Mapping
from typing import Any, Final, Literal, TypeAlias, final, overload

from mmfast.core.errors import SigningError

KINDS: Final[tuple[str, ...]]
"""Tx kinds ``sign_tx``/``tx_hash`` take: create_order, cancel_order, cancel_all_orders,
modify_order, update_leverage, approve_integrator."""
TX_TYPES: Final[dict[str, int]]
"""Kind -> Lighter tx type: 14, 15, 16, 17, 20, 45."""

_Kind: TypeAlias = Literal[
    "create_order",
    "cancel_order",
    "cancel_all_orders",
    "modify_order",
    "update_leverage",
    "approve_integrator",
]
_PrivateKey: TypeAlias = bytes | bytearray | memoryview | str
"""40 bytes little-endian, or 80 hex digits (``0x`` prefix allowed)."""
_Fields: TypeAlias = Mapping[str, int]
"""Request fields by name (bools count as 0/1). Body fields are required; attribute fields
(integrator_account_index, integrator_taker_fee, integrator_maker_fee, skip_nonce,
cancel_all_market_index, self_trade_behavior, self_trade_equality, order_version) are optional,
at most 4 non-nil ones per tx, and only those the kind carries."""
_TxResult: TypeAlias = tuple[str, str]
"""``(tx_info JSON text, tx hash as 80 lowercase hex digits)``."""

class NativeSignerError(SigningError, ValueError):
    """A request the native signer refuses (a field out of range, a closed signer, bad key)."""

# ---------------------------------------------------------------------------- primitives
def gl_op(op: Literal["add", "sub", "mul", "neg", "inv", "pow"], a: int, b: int = 0) -> int:
    """Goldilocks operation on ints (reduced mod p first); ``b`` is the exponent for "pow"."""

@overload
def fp5_op(op: Literal["eq"], a: bytes, b: bytes) -> bool: ...
@overload
def fp5_op(op: Literal["add", "sub", "mul"], a: bytes, b: bytes) -> bytes: ...
@overload
def fp5_op(op: Literal["neg", "inv"], a: bytes, b: None = None) -> bytes: ...
@overload
def fp5_op(op: Literal["pow"], a: bytes, b: int) -> bytes: ...
def poseidon2_permute(state: bytes) -> bytes:
    """One Poseidon2 permutation of 12 little-endian field elements (96 bytes in and out)."""

def poseidon2_hash(data: bytes, num_outputs: int) -> bytes:
    """The sponge without padding: 8-byte elements in, ``num_outputs`` elements out."""

def hash_to_quintic(data: bytes) -> bytes:
    """Poseidon2 of field elements into one Fp5 element (40 bytes): Lighter's message hash."""

def hash_n_to_one(hashes: list[bytes]) -> bytes:
    """Fold 32-byte (4-element) hashes left to right with two-to-one Poseidon2 (32 bytes)."""

def point_decode(w: bytes) -> tuple[bool, bool, bytes | None]:
    """``(decodes, is_neutral, encoded_back)``; ``(False, False, None)`` for a non-point."""

def point_add(a: bytes, b: bytes) -> bytes:
    """Sum of two encoded points (NativeSignerError if either does not decode)."""

def point_double(a: bytes) -> bytes:
    """Twice an encoded point."""

def point_mul(w: bytes, scalar_le: bytes) -> bytes:
    """``scalar * point`` (scalar: 40 bytes little-endian, reduced mod n)."""

def generator_mul(scalar_le: bytes) -> bytes:
    """``scalar * G`` through the fixed-base table (the signing path)."""

@overload
def scalar_op(op: Literal["is_zero"], a: bytes, b: None = None) -> bool: ...
@overload
def scalar_op(op: Literal["neg"], a: bytes, b: None = None) -> bytes: ...
@overload
def scalar_op(op: Literal["add", "sub", "mul"], a: bytes, b: bytes) -> bytes: ...
def montgomery_n0i() -> int:
    """-n^-1 mod 2^64 as derived at import (0xD78BEF72057B7BDF)."""

# ---------------------------------------------------------------------------- Schnorr
def public_key(sk: _PrivateKey) -> bytes:
    """The 40-byte public key (encoded ``sk * G``)."""

def sign_hashed(sk: _PrivateKey, hashed_msg: bytes, k: bytes) -> bytes:
    """Signature (80 bytes) of a hashed message with a GIVEN nonce ``k``: test vectors only."""

def verify_hashed(pk: bytes, hashed_msg: bytes, sig: bytes) -> bool:
    """True if ``sig`` (80 bytes) signs ``hashed_msg`` (40 bytes) under ``pk`` (40 bytes).

    Anything else (wrong type or length, non-canonical key, s or e not below n) is False.
    """

@final
class Verifier:
    """One public key prepared for many verifications (a fixed-base table of its multiples,
    80 KiB, ~2 ms to build); what the simulator keeps per registered API key.

    NativeSignerError if ``pk`` is not 40 bytes or does not decode to a point.
    """

    @property
    def public_key(self) -> bytes:
        """The 40-byte encoded key."""
    def __init__(self, pk: bytes) -> None: ...
    def verify(self, hashed_msg: bytes, sig: bytes) -> bool:
        """True if ``sig`` (80 bytes) signs ``hashed_msg`` (40 bytes) under this key."""

# ---------------------------------------------------------------------------- transactions
def tx_hash(
    kind: _Kind | str,
    fields: _Fields,
    *,
    chain_id: int,
    account_index: int,
    api_key_index: int,
    nonce: int,
    expired_at: int,
) -> bytes:
    """The 40-byte hash of a transaction (what is signed, and its venue tx hash)."""

def sign_tx(
    kind: _Kind | str,
    fields: _Fields,
    *,
    sk: _PrivateKey,
    chain_id: int,
    account_index: int,
    api_key_index: int,
    nonce: int,
    expired_at: int,
) -> tuple[str, bytes]:
    """Sign one transaction with a fresh random nonce: ``(tx_info JSON text, 40-byte hash)``."""

def tx_info_hash(tx_type: int, info: Mapping[str, Any], chain_id: int) -> bytes:
    """The 40-byte hash of a received, parsed ``tx_info`` of type 14/15/16/17/20/45 or 8
    (ChangePubKey). NativeSignerError if a field is missing or not an int."""

def auth_token(sk: _PrivateKey, *, account_index: int, api_key_index: int, deadline: int) -> str:
    """An auth token ``"deadline:account:key:hex(sig)"`` (deadline in epoch seconds)."""

def verify_auth_token(pk: bytes, token: str) -> bool:
    """True if ``token`` is well formed and signed by ``pk`` (expiry is the caller's to check)."""

# ---------------------------------------------------------------------------- NativeSigner
@final
class NativeSigner:
    """Signs Lighter txs for one (account, API key) of one chain, on the calling thread.

    The key is copied into C memory and wiped by ``close()``, on garbage collection, and in a
    forked child (where every signer is closed: signing raises NativeSignerError). With
    ``pool_size > 0`` a C thread keeps that many nonce commitments ready; a signature takes one
    (``pooled``) or, when the pool is empty, computes one inline (``fresh``). Each ``sign_*``
    method returns ``(tx_info, tx_hash)``. Cannot be pickled or copied (TypeError).
    """

    @property
    def closed_reason(self) -> str | None:
        """None while usable, else why not ("closed", or inherited through fork)."""
    @property
    def pooled(self) -> int:
        """Signatures that used a pooled nonce commitment."""
    @property
    def fresh(self) -> int:
        """Signatures that computed their nonce commitment inline."""
    @property
    def warms(self) -> int:
        """``warm()`` calls that ran."""
    @property
    def public_key(self) -> bytes:
        """The 40-byte public key registered for this API key."""
    @property
    def chain_id(self) -> int: ...
    @property
    def account_index(self) -> int: ...
    @property
    def api_key_index(self) -> int: ...
    @property
    def pool_size(self) -> int:
        """Pool capacity (0 without a pool, or once closed)."""
    @property
    def pool_available(self) -> int:
        """Commitments ready now."""
    @property
    def pool_generated(self) -> int:
        """Commitments made by the pool thread so far."""
    def __init__(
        self,
        key: _PrivateKey,
        *,
        chain_id: int,
        account_index: int,
        api_key_index: int,
        pool_size: int = 0,
    ) -> None: ...
    def close(self) -> None:
        """Wipe the key and the pool, stop the pool thread. Idempotent."""
    def sign_create_order(
        self,
        market_index: int,
        client_order_index: int,
        base_amount: int,
        price: int,
        is_ask: bool | int,
        order_type: int,
        time_in_force: int,
        reduce_only: bool | int,
        trigger_price: int,
        order_expiry: int,
        nonce: int,
        expired_at: int,
    ) -> _TxResult:
        """CreateOrder (type 14), no attributes."""
    def sign_cancel_order(
        self, market_index: int, index: int, nonce: int, expired_at: int
    ) -> _TxResult:
        """CancelOrder (type 15): ``index`` is a client_order_index (< 2^48) or an order_index."""
    def sign_modify_order(
        self,
        market_index: int,
        index: int,
        base_amount: int,
        price: int,
        trigger_price: int,
        nonce: int,
        expired_at: int,
    ) -> _TxResult:
        """ModifyOrder (type 17), no attributes."""
    def sign_cancel_all(
        self, time_in_force: int, time_ms: int, market_index: int, nonce: int, expired_at: int
    ) -> _TxResult:
        """CancelAllOrders (type 16); ``market_index`` 255 = every market."""
    def sign_update_leverage(
        self,
        market_index: int,
        initial_margin_fraction: int,
        margin_mode: int,
        nonce: int,
        expired_at: int,
    ) -> _TxResult:
        """UpdateLeverage (type 20)."""
    def sign_tx(
        self, kind: _Kind | str, fields: _Fields, *, nonce: int, expired_at: int
    ) -> _TxResult:
        """Any kind of ``KINDS`` by name, fields as for the module-level ``sign_tx``."""
    def warm(self) -> bool:
        """The signing code run once on constants (no key, pool or commitment touched), so a
        signature after idle time finds it in cache; False once closed."""
    def auth_token(self, deadline: int) -> str:
        """An auth token valid until ``deadline`` (epoch seconds)."""
