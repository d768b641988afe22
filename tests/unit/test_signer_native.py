"""NativeSigner: same txs as the module-level sign_tx, nonce pool, no nonce reuse, secrecy of the
key in text, close(), pickling, and fork() (the child inherits a wiped signer)."""

from __future__ import annotations

import base64
import copy
import json
import os
import pickle
import select
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mmfast._core import signer as S

CHAIN = 304
ACC = 7_777_002
AK = 202
WAIT_S = 10.0


def _canonical_key(seed: bytes) -> bytes:
    # Any 40 bytes reduce mod n; a key already below n is the one whose text we look for.
    return S.scalar_op("add", seed, bytes(40))


SK = _canonical_key(os.urandom(40))
PK = S.public_key(SK)


def _signer(pool_size: int = 0, key: Any = SK) -> S.NativeSigner:
    return S.NativeSigner(
        key, chain_id=CHAIN, account_index=ACC, api_key_index=AK, pool_size=pool_size
    )


@pytest.fixture
def signer() -> Iterator[S.NativeSigner]:
    s = _signer()
    yield s
    s.close()


@pytest.fixture
def pooled_signer() -> Iterator[S.NativeSigner]:
    s = _signer(64)
    yield s
    s.close()


def _wait(cond: Callable[[], bool], timeout: float = WAIT_S) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.002)
    return cond()


def _sig(info: str) -> bytes:
    return base64.b64decode(json.loads(info)["Sig"], validate=True)


def _less_sig(info: str) -> str:
    sig = json.loads(info)["Sig"]
    assert info.count(f'"Sig":"{sig}"') == 1
    return info.replace(f'"Sig":"{sig}"', '"Sig":""')


def _verifies(info: str, hx: str) -> bool:
    return S.verify_hashed(PK, bytes.fromhex(hx), _sig(info))


# (method name, positional args w/o nonce and expiry, module kind, module fields)
CASES: list[tuple[str, tuple[int, ...], str, dict[str, int]]] = [
    (
        "sign_create_order",
        (3, 77, 1_000, 405_000, 1, 0, 1, 0, 0, 1_900_000_000_000),
        "create_order",
        dict(
            market_index=3,
            client_order_index=77,
            base_amount=1_000,
            price=405_000,
            is_ask=1,
            order_type=0,
            time_in_force=1,
            reduce_only=0,
            trigger_price=0,
            order_expiry=1_900_000_000_000,
        ),
    ),
    (
        "sign_create_order",
        (0, 0, 0, 1, 0, 3, 2, 1, 99, 1),
        "create_order",
        dict(
            market_index=0,
            client_order_index=0,
            base_amount=0,
            price=1,
            is_ask=0,
            order_type=3,
            time_in_force=2,
            reduce_only=1,
            trigger_price=99,
            order_expiry=1,
        ),
    ),
    (
        "sign_create_order",
        (4094, (1 << 48) - 1, (1 << 48) - 1, (1 << 32) - 1, 1, 1, 0, 0, 0, 0),
        "create_order",
        dict(
            market_index=4094,
            client_order_index=(1 << 48) - 1,
            base_amount=(1 << 48) - 1,
            price=(1 << 32) - 1,
            is_ask=1,
            order_type=1,
            time_in_force=0,
            reduce_only=0,
            trigger_price=0,
            order_expiry=0,
        ),
    ),
    ("sign_cancel_order", (3, 77), "cancel_order", dict(market_index=3, index=77)),
    (
        "sign_cancel_order",
        (0, (1 << 60) - 1),
        "cancel_order",
        dict(market_index=0, index=(1 << 60) - 1),
    ),
    (
        "sign_modify_order",
        (3, 77, 2_000, 410_000, 0),
        "modify_order",
        dict(market_index=3, index=77, base_amount=2_000, price=410_000, trigger_price=0),
    ),
    (
        "sign_cancel_all",
        (0, 0, 255),
        "cancel_all_orders",
        dict(time_in_force=0, scheduled_time_ms=0, cancel_all_market_index=255),
    ),
    (
        "sign_cancel_all",
        (0, 0, 0),
        "cancel_all_orders",
        dict(time_in_force=0, scheduled_time_ms=0, cancel_all_market_index=0),
    ),
    (
        "sign_cancel_all",
        (0, 0, 17),
        "cancel_all_orders",
        dict(time_in_force=0, scheduled_time_ms=0, cancel_all_market_index=17),
    ),
    (
        "sign_cancel_all",
        (1, 1_900_000_000_000, 255),
        "cancel_all_orders",
        dict(time_in_force=1, scheduled_time_ms=1_900_000_000_000, cancel_all_market_index=255),
    ),
    (
        "sign_update_leverage",
        (3, 500, 1),
        "update_leverage",
        dict(market_index=3, initial_margin_fraction=500, margin_mode=1),
    ),
]
CASE_IDS = [f"{c[0]}-{i}" for i, c in enumerate(CASES)]


@pytest.mark.parametrize("pool_size", [0, 8])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_method_matches_module_sign_tx(case: Any, pool_size: int) -> None:
    method, args, kind, fields = case
    s = _signer(pool_size)
    try:
        for nonce, expired_at in ((0, 0), (41, 1_783_955_882_585), ((1 << 63) - 1, (1 << 48) - 1)):
            info, hx = getattr(s, method)(*args, nonce, expired_at)
            assert isinstance(info, str) and isinstance(hx, str) and len(hx) == 80
            ref_info, ref_h = S.sign_tx(
                kind,
                fields,
                sk=SK,
                chain_id=CHAIN,
                account_index=ACC,
                api_key_index=AK,
                nonce=nonce,
                expired_at=expired_at,
            )
            assert hx == ref_h.hex()
            assert _less_sig(info) == _less_sig(ref_info)
            assert _verifies(info, hx)
            assert S.tx_info_hash(S.TX_TYPES[kind], json.loads(info), CHAIN).hex() == hx
            # ... and the generic method gives the same tx.
            g_info, g_hx = s.sign_tx(kind, fields, nonce=nonce, expired_at=expired_at)
            assert g_hx == hx and _less_sig(g_info) == _less_sig(info)
            assert _verifies(g_info, g_hx)
    finally:
        s.close()


def test_sign_tx_with_attributes(signer: S.NativeSigner) -> None:
    fields = dict(
        market_index=1,
        index=5,
        base_amount=3,
        price=7,
        trigger_price=0,
        integrator_account_index=9,
        skip_nonce=1,
        order_version=4,
    )
    info, hx = signer.sign_tx("modify_order", fields, nonce=3, expired_at=4)
    ref, h = S.sign_tx(
        "modify_order",
        fields,
        sk=SK,
        chain_id=CHAIN,
        account_index=ACC,
        api_key_index=AK,
        nonce=3,
        expired_at=4,
    )
    assert hx == h.hex() and _less_sig(info) == _less_sig(ref)
    assert json.loads(info)["L2TxAttributes"] == {"1": 9, "4": 1, "8": 4}
    assert _verifies(info, hx)


def test_properties(signer: S.NativeSigner) -> None:
    assert signer.public_key == PK
    assert (signer.chain_id, signer.account_index, signer.api_key_index) == (CHAIN, ACC, AK)
    assert signer.pool_size == 0 and signer.pool_available == 0 and signer.pool_generated == 0
    assert signer.closed_reason is None
    assert (signer.pooled, signer.fresh) == (0, 0)
    # The hex form of the key is the same signer.
    s2 = _signer(key=SK.hex())
    try:
        assert s2.public_key == PK
    finally:
        s2.close()


def test_auth_token(signer: S.NativeSigner) -> None:
    tok = signer.auth_token(1_783_955_882)
    assert tok.startswith(f"1783955882:{ACC}:{AK}:")
    assert S.verify_auth_token(PK, tok)
    assert not S.verify_auth_token(PK, tok.replace("1783955882", "1783955883", 1))
    with pytest.raises(S.NativeSignerError):
        signer.auth_token(-1)


# ------------------------------------------------------------------------------ nonce pool
def test_pool_serves_signatures(pooled_signer: S.NativeSigner) -> None:
    s = pooled_signer
    assert s.pool_size == 64
    assert _wait(lambda: s.pool_available >= 16), "pool did not fill"
    assert s.pool_generated >= 16
    for i in range(40):
        # Only this thread takes from the pool: once it has entries, the next signature is
        # served from it.
        assert _wait(lambda: s.pool_available > 0), "pool did not refill"
        info, hx = s.sign_cancel_order(1, 1 + i, i, 10)
        assert _verifies(info, hx)
        assert s.fresh == 0
        assert s.pooled == i + 1
    assert s.pool_generated >= 40


def test_warm_takes_no_commitment_and_changes_no_signature() -> None:
    """warm() runs the signing code on constants: a full pool stays full, nothing counts as
    signed, and the next signature is the module's tx_info less Sig and verifies; a closed
    signer does not warm."""
    s = _signer(4)
    try:
        assert _wait(lambda: s.pool_available == 4), "pool did not fill"
        counts = (s.pooled, s.fresh, s.pool_generated)
        for _ in range(50):
            assert s.warm() is True
        assert (s.pooled, s.fresh, s.pool_generated, s.pool_available) == (*counts, 4)
        assert s.warms == 50
        info, hx = s.sign_modify_order(1, 7, 100, 2000, 0, 5, 1_700_000_000_000)
        ref_info, ref_h = S.sign_tx(
            "modify_order",
            {"market_index": 1, "index": 7, "base_amount": 100, "price": 2000, "trigger_price": 0},
            sk=SK,
            chain_id=CHAIN,
            account_index=ACC,
            api_key_index=AK,
            nonce=5,
            expired_at=1_700_000_000_000,
        )
        assert hx == ref_h.hex() and _less_sig(info) == _less_sig(ref_info)
        assert _verifies(info, hx) and s.pooled == counts[0] + 1
    finally:
        s.close()
    assert s.warm() is False and s.warms == 50


def test_no_pool_signs_fresh(signer: S.NativeSigner) -> None:
    for i in range(25):
        info, hx = signer.sign_cancel_order(1, 1 + i, i, 10)
        assert _verifies(info, hx)
    assert (signer.fresh, signer.pooled) == (25, 0)
    assert signer.pool_available == 0 and signer.pool_generated == 0


def test_drained_pool_falls_back_to_fresh() -> None:
    s = _signer(1)
    try:
        assert _wait(lambda: s.pool_available == 1)
        for i in range(200):
            info, hx = s.sign_cancel_order(1, 1 + i, i, 10)
            assert _verifies(info, hx)
        assert s.pooled + s.fresh == 200
        assert s.pooled >= 1
    finally:
        s.close()


@pytest.mark.parametrize("pool_size", [0, 64])
def test_same_tx_signed_twice_differs(pool_size: int) -> None:
    s = _signer(pool_size)
    try:
        a_info, a_h = s.sign_modify_order(1, 2, 3, 4, 0, 5, 6)
        b_info, b_h = s.sign_modify_order(1, 2, 3, 4, 0, 5, 6)
        assert a_h == b_h
        assert _less_sig(a_info) == _less_sig(b_info)
        sa, sb = _sig(a_info), _sig(b_info)
        assert sa != sb and sa[:40] != sb[:40] and sa[40:] != sb[40:]
        assert _verifies(a_info, a_h) and _verifies(b_info, b_h)
    finally:
        s.close()


def test_verifier_matches_verify_hashed(signer: S.NativeSigner) -> None:
    v = S.Verifier(PK)
    assert v.public_key == PK
    info, hx = signer.sign_cancel_order(1, 2, 3, 4)
    h, sig = bytes.fromhex(hx), _sig(info)
    assert v.verify(h, sig) and S.verify_hashed(PK, h, sig)
    bad = bytearray(sig)
    bad[41] ^= 4
    assert not v.verify(h, bytes(bad)) and not S.verify_hashed(PK, h, bytes(bad))
    assert not v.verify(h[:39], sig) and not v.verify(h, sig[:79])


def test_no_nonce_reuse_2000_pooled(pooled_signer: S.NativeSigner) -> None:
    s = pooled_signer
    assert _wait(lambda: s.pool_available > 0)
    es: set[bytes] = set()
    ss: set[bytes] = set()
    info = hx = ""
    for _ in range(2000):
        info, hx = s.sign_cancel_order(1, 42, 7, 8)  # the same message every time
        sig = _sig(info)
        es.add(sig[40:])  # e = H(R, msg): depends only on the nonce commitment R here
        ss.add(sig[:40])
    assert len(es) == 2000 and len(ss) == 2000
    assert s.pooled + s.fresh == 2000 and s.pooled > 0
    assert _verifies(info, hx)


# ------------------------------------------------------------------------------ key secrecy
def _forms(key: bytes) -> list[str]:
    h = key.hex()
    return [
        h,
        h.upper(),
        "0x" + h,
        "0X" + h.upper(),
        base64.b64encode(key).decode(),
        base64.urlsafe_b64encode(key).decode(),
        base64.b64encode(key).decode().rstrip("="),
    ]


def _assert_no_key(text: str, key: bytes = SK) -> None:
    for form in _forms(key):
        assert form not in text
    # No long fragment of the hex either.
    h = key.hex()
    for i in range(0, 80 - 24, 8):
        assert h[i : i + 24] not in text.lower()


def test_repr_str_do_not_show_key(signer: S.NativeSigner) -> None:
    for s in (signer, _signer(4)):
        for text in (repr(s), str(s), f"{s!r}", f"{s}"):
            _assert_no_key(text)
        s.close()
        _assert_no_key(repr(s))
        _assert_no_key(str(vars(type(s))))


def test_errors_do_not_show_key(signer: S.NativeSigner) -> None:
    texts: list[str] = []

    def grab(fn: Callable[[], Any]) -> None:
        with pytest.raises(S.NativeSignerError) as ei:
            fn()
        texts.append(str(ei.value))
        texts.append(repr(ei.value))

    grab(lambda: signer.sign_create_order(0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 1, 1))
    grab(lambda: signer.sign_cancel_order(-1, 1, 1, 1))
    grab(lambda: signer.sign_tx("nope", {}, nonce=1, expired_at=1))
    grab(
        lambda: S.sign_tx(
            "cancel_order",
            {"market_index": 0, "index": 0},
            sk=SK,
            chain_id=CHAIN,
            account_index=ACC,
            api_key_index=AK,
            nonce=1,
            expired_at=1,
        )
    )
    grab(lambda: S.public_key(SK[:39]))
    grab(lambda: S.public_key(SK + b"\0"))
    grab(lambda: S.public_key(SK.hex()[:79]))
    grab(lambda: S.public_key(SK.hex() + "zz"))
    grab(lambda: S.public_key("0x" + SK.hex() + "00"))
    grab(lambda: S.NativeSigner(SK[:39], chain_id=CHAIN, account_index=ACC, api_key_index=AK))
    grab(
        lambda: S.NativeSigner(SK.hex() + "0", chain_id=CHAIN, account_index=ACC, api_key_index=AK)
    )
    grab(lambda: S.NativeSigner(SK, chain_id=CHAIN, account_index=0, api_key_index=AK))
    grab(lambda: S.auth_token(SK[:20], account_index=ACC, api_key_index=AK, deadline=1))
    signer.close()
    grab(lambda: signer.sign_cancel_order(0, 1, 1, 1))
    grab(lambda: signer.auth_token(5))
    for t in texts:
        _assert_no_key(t)


def test_error_does_not_echo_misplaced_key(signer: S.NativeSigner) -> None:
    # A caller that puts the key in the wrong argument must not get it back in the error text
    # (and so in any log of that error).
    with pytest.raises(S.NativeSignerError) as ei:
        signer.sign_tx(
            "cancel_order", {"market_index": 0, "index": SK.hex()}, nonce=1, expired_at=1
        )
    _assert_no_key(str(ei.value))


def test_bad_construction() -> None:
    for kw in (
        dict(account_index=0),
        dict(api_key_index=255),
        dict(pool_size=-1),
        dict(chain_id=-1),
        dict(account_index=1 << 48),
    ):
        args: dict[str, Any] = dict(chain_id=CHAIN, account_index=ACC, api_key_index=AK) | kw
        with pytest.raises((S.NativeSignerError, OverflowError)):
            S.NativeSigner(SK, **args)
    with pytest.raises(S.NativeSignerError):
        S.NativeSigner(bytes(40), chain_id=CHAIN, account_index=ACC, api_key_index=AK)
    with pytest.raises(S.NativeSignerError):
        S.NativeSigner(12345, chain_id=CHAIN, account_index=ACC, api_key_index=AK)


# ------------------------------------------------------------------------------ close, pickle
@pytest.mark.parametrize("pool_size", [0, 16])
def test_close(pool_size: int) -> None:
    s = _signer(pool_size)
    s.sign_cancel_order(1, 2, 3, 4)
    s.close()
    assert s.closed_reason == "closed"
    assert s.pool_available == 0 and s.pool_size == 0
    for call in (
        lambda: s.sign_cancel_order(1, 2, 3, 4),
        lambda: s.sign_create_order(0, 1, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1),
        lambda: s.sign_modify_order(0, 1, 1, 1, 0, 1, 1),
        lambda: s.sign_cancel_all(0, 0, 255, 1, 1),
        lambda: s.sign_update_leverage(0, 100, 0, 1, 1),
        lambda: s.sign_tx("cancel_order", {"market_index": 0, "index": 1}, nonce=1, expired_at=1),
        lambda: s.auth_token(1),
    ):
        with pytest.raises(S.NativeSignerError, match="closed"):
            call()
    s.close()  # idempotent
    s.close()
    assert s.closed_reason == "closed"
    assert s.public_key == PK  # the public key stays readable


def test_not_picklable(signer: S.NativeSigner) -> None:
    with pytest.raises(TypeError):
        pickle.dumps(signer)
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError):
            pickle.dumps(signer, protocol=proto)
    with pytest.raises(TypeError):
        copy.copy(signer)
    with pytest.raises(TypeError):
        copy.deepcopy(signer)


# ------------------------------------------------------------------------------ fork
def _child(s: S.NativeSigner, w: int) -> None:
    """Runs in the forked child: report what the inherited signer does, then _exit."""
    out: dict[str, Any] = {}
    try:
        pooled_before = s.pooled
        out["closed_reason"] = s.closed_reason
        out["pool_available"] = s.pool_available
        try:
            s.sign_cancel_order(1, 2, 3, 4)
            out["sign"] = "signed"
        except S.NativeSignerError as exc:
            out["sign"] = "refused: " + str(exc)
        try:
            s.sign_tx("cancel_order", {"market_index": 1, "index": 2}, nonce=3, expired_at=4)
            out["sign_tx"] = "signed"
        except S.NativeSignerError as exc:
            out["sign_tx"] = "refused: " + str(exc)
        try:
            s.auth_token(5)
            out["auth"] = "signed"
        except S.NativeSignerError as exc:
            out["auth"] = "refused: " + str(exc)
        out["pool_available_after"] = s.pool_available
        out["pooled_delta"] = s.pooled - pooled_before
        out["fresh_delta"] = s.fresh
        # A new signer made in the child works.
        fresh = _signer(0)
        info, hx = fresh.sign_cancel_order(1, 2, 3, 4)
        out["new_signer_verifies"] = _verifies(info, hx)
        fresh.close()
        s.close()
        out["close_ok"] = True
    except BaseException as exc:  # report anything to the parent
        out["error"] = repr(exc)
    finally:
        try:
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)


def _read_all(fd: int, timeout: float) -> bytes:
    data = b""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise TimeoutError("child did not report in time")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return data
        data += chunk


def _reap(pid: int, timeout: float) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise TimeoutError("child did not exit in time")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_gets_wiped_signer() -> None:
    s = _signer(64)
    try:
        assert _wait(lambda: s.pool_available >= 8), "pool did not fill"
        info, hx = s.sign_cancel_order(1, 2, 3, 4)
        assert _verifies(info, hx)
        pooled_parent = s.pooled
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            _child(s, w)  # never returns
        os.close(w)
        try:
            raw = _read_all(r, WAIT_S)
        finally:
            os.close(r)
            status = _reap(pid, WAIT_S)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        child = json.loads(raw)
        assert "error" not in child, child
        assert "fork" in child["closed_reason"]
        for what in ("sign", "sign_tx", "auth"):
            assert child[what].startswith("refused: "), child
            assert "fork" in child[what], child
        assert child["pool_available"] == 0
        assert child["pool_available_after"] == 0
        assert child["pooled_delta"] == 0
        assert child["new_signer_verifies"] is True
        assert child["close_ok"] is True
        # The parent is untouched: still usable, still pooled, signatures verify.
        assert s.closed_reason is None
        assert _wait(lambda: s.pool_available > 0), "parent pool stopped after fork"
        # Take enough to drop the pool below half (the filler refills from there to full).
        for i in range(40):
            info, hx = s.sign_cancel_order(1, 10 + i, 5 + i, 6)
            assert _verifies(info, hx)
        assert s.pooled > pooled_parent
        assert s.closed_reason is None
    finally:
        s.close()
