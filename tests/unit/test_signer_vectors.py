"""Native signer vs the shared vectors (tests/fixtures/signing): every case of every file.

Primitives (Goldilocks, Fp5, Poseidon2, ECgFp5, scalars, Schnorr) must match byte for byte; the
tx oracle's random-nonce signatures are matched on tx_hash and tx_info less Sig, and every
signature (ours and the oracle's) must verify.
"""

from __future__ import annotations

import base64
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from mmfast._core import signer as S

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "signing"
GL_P = (1 << 64) - (1 << 32) + 1


def _load(name: str) -> Any:
    return json.loads((FIX / name).read_text())["vectors"]


GL = _load("signing_field_goldilocks_vectors.json")
FP5 = _load("signing_field_quintic_vectors.json")
P2 = _load("signing_hash_poseidon2_vectors.json")
CURVE = _load("signing_curve_ecgfp5_vectors.json")
SCHNORR = _load("signing_schnorr_vectors.json")
ORACLE = _load("signing_tx_oracle.json")

B = bytes.fromhex


def _gl(h: str) -> int:
    return int.from_bytes(B(h), "little")


def _ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:02d}" for i in range(n)]


def test_fixture_counts() -> None:
    # Guards against a truncated copy: every vector below is parametrized from these lists.
    assert len(GL) == 92 and len(FP5) == 92
    assert {k: len(v) for k, v in P2.items()} == {
        "permute": 18,
        "sponge": 45,
        "hash_to_quintic": 13,
        "hash_n_to_one": 7,
    }
    assert {k: len(v) for k, v in CURVE.items()} == {
        "decode": 14,
        "add": 9,
        "scalar_mul": 13,
        "scalar_ops": 25,
    }
    assert {k: len(v) for k, v in SCHNORR.items()} == {"keygen": 20, "sign": 10}
    assert len(ORACLE) == 9


# ------------------------------------------------------------------------------ Goldilocks
GL_OPS = ("add", "sub", "mul", "neg", "inv", "pow", "eq")


@pytest.mark.parametrize("op", GL_OPS)
@pytest.mark.parametrize("v", GL, ids=_ids("gl", len(GL)))
def test_goldilocks(v: dict[str, Any], op: str) -> None:
    a, b = _gl(v["a"]), _gl(v["b"])
    if op in ("add", "sub", "mul"):
        assert S.gl_op(op, a, b) == _gl(v[op])
    elif op == "neg":
        assert S.gl_op("neg", a) == _gl(v["neg_a"])
    elif op == "inv":
        assert S.gl_op("inv", a) == _gl(v["inv_a"])
    elif op == "pow":
        assert S.gl_op("pow", a, int(v["e"])) == _gl(v["pow_a_e"])
    else:
        # gl_op has no "eq": equal elements are the ones whose difference is 0.
        assert (S.gl_op("sub", a, b) == 0) is v["a_eq_b"]
        assert (a % GL_P == b % GL_P) is v["a_eq_b"]


def test_goldilocks_results_canonical() -> None:
    for v in GL:
        a, b = _gl(v["a"]), _gl(v["b"])
        for op in ("add", "sub", "mul"):
            assert 0 <= S.gl_op(op, a, b) < GL_P


# ------------------------------------------------------------------------------ Fp5
@pytest.mark.parametrize("op", GL_OPS)
@pytest.mark.parametrize("v", FP5, ids=_ids("fp5_", len(FP5)))
def test_fp5(v: dict[str, Any], op: str) -> None:
    a, b = B(v["a"]), B(v["b"])
    if op in ("add", "sub", "mul"):
        assert S.fp5_op(op, a, b) == B(v[op])
    elif op == "neg":
        assert S.fp5_op("neg", a) == B(v["neg_a"])
    elif op == "inv":
        assert S.fp5_op("inv", a) == B(v["inv_a"])
    elif op == "pow":
        assert S.fp5_op("pow", a, int(v["e"])) == B(v["pow_a_e"])
    else:
        assert S.fp5_op("eq", a, b) is v["a_eq_b"]
        assert S.fp5_op("eq", a, a) is True


# ------------------------------------------------------------------------------ Poseidon2
@pytest.mark.parametrize("v", P2["permute"], ids=_ids("permute", len(P2["permute"])))
def test_poseidon2_permute(v: dict[str, Any]) -> None:
    assert S.poseidon2_permute(B(v["input"])) == B(v["output"])


@pytest.mark.parametrize(
    "v",
    P2["sponge"],
    ids=[
        f"sponge{i:02d}-in{len(v['input']) // 16}-out{v['num_outputs']}"
        for i, v in enumerate(P2["sponge"])
    ],
)
def test_poseidon2_sponge(v: dict[str, Any]) -> None:
    assert S.poseidon2_hash(B(v["input"]), v["num_outputs"]) == B(v["output"])


@pytest.mark.parametrize("v", P2["hash_to_quintic"], ids=_ids("h2q", len(P2["hash_to_quintic"])))
def test_hash_to_quintic(v: dict[str, Any]) -> None:
    out = S.hash_to_quintic(B(v["input"]))
    assert len(out) == 40
    assert out == B(v["output"])


@pytest.mark.parametrize("v", P2["hash_n_to_one"], ids=_ids("n2one", len(P2["hash_n_to_one"])))
def test_hash_n_to_one(v: dict[str, Any]) -> None:
    assert S.hash_n_to_one([B(x) for x in v["inputs"]]) == B(v["output"])


# ------------------------------------------------------------------------------ ECgFp5
def _decode_id(i: int, v: dict[str, Any]) -> str:
    kind = "neutral" if v["is_neutral"] else "point" if v["decodes"] else "invalid"
    return f"decode{i:02d}-{kind}"


@pytest.mark.parametrize(
    "v", CURVE["decode"], ids=[_decode_id(i, v) for i, v in enumerate(CURVE["decode"])]
)
def test_point_decode(v: dict[str, Any]) -> None:
    ok, neutral, back = S.point_decode(B(v["w"]))
    assert ok is v["decodes"]
    if v["decodes"]:
        assert neutral is v["is_neutral"]
        assert back == B(v["encoded_back"])
    else:
        assert back is None
        with pytest.raises(S.NativeSignerError):
            S.point_double(B(v["w"]))


@pytest.mark.parametrize("v", CURVE["add"], ids=_ids("add", len(CURVE["add"])))
def test_point_add(v: dict[str, Any]) -> None:
    assert S.point_add(B(v["a_w"]), B(v["b_w"])) == B(v["sum_w"])
    assert S.point_add(B(v["b_w"]), B(v["a_w"])) == B(v["sum_w"])


@pytest.mark.parametrize("v", CURVE["add"], ids=_ids("double", len(CURVE["add"])))
def test_point_double(v: dict[str, Any]) -> None:
    assert S.point_double(B(v["a_w"])) == B(v["a_double_w"])
    assert S.point_add(B(v["a_w"]), B(v["a_w"])) == B(v["a_double_w"])


@pytest.mark.parametrize("v", CURVE["scalar_mul"], ids=_ids("smul", len(CURVE["scalar_mul"])))
def test_point_mul(v: dict[str, Any]) -> None:
    assert S.point_mul(B(v["base_w"]), B(v["scalar_le"])) == B(v["out_w"])


SC_OPS = ("add", "sub", "mul", "neg", "is_zero")


@pytest.mark.parametrize("op", SC_OPS)
@pytest.mark.parametrize("v", CURVE["scalar_ops"], ids=_ids("sc", len(CURVE["scalar_ops"])))
def test_scalar_ops(v: dict[str, Any], op: str) -> None:
    a, b = B(v["a"]), B(v["b"])
    if op == "is_zero":
        assert S.scalar_op("is_zero", a) is v["a_is_zero"]
    elif op == "neg":
        assert S.scalar_op("neg", a) == B(v["neg_a"])
    else:
        assert S.scalar_op(op, a, b) == B(v[op])


def test_montgomery_n0i() -> None:
    assert S.montgomery_n0i() == 0xD78BEF72057B7BDF


GEN = S.public_key((1).to_bytes(40, "little"))


@pytest.mark.parametrize("seed", range(16))
def test_generator_mul_matches_point_mul(seed: int) -> None:
    rng = random.Random(seed)
    k = rng.getrandbits(320).to_bytes(40, "little")
    assert S.generator_mul(k) == S.point_mul(GEN, k)


def test_generator_mul_edges() -> None:
    zero = bytes(40)
    assert S.generator_mul(zero) == bytes(40)  # the neutral element encodes as 0
    assert S.generator_mul((1).to_bytes(40, "little")) == GEN
    assert S.generator_mul((2).to_bytes(40, "little")) == S.point_double(GEN)


# ------------------------------------------------------------------------------ Schnorr
@pytest.mark.parametrize("v", SCHNORR["keygen"], ids=_ids("keygen", len(SCHNORR["keygen"])))
def test_keygen(v: dict[str, Any]) -> None:
    assert S.public_key(B(v["sk"])) == B(v["pk"])
    assert S.public_key(v["sk"]) == B(v["pk"])  # hex form
    assert S.public_key(B(v["sk"])) == S.generator_mul(B(v["sk"]))


@pytest.mark.parametrize("v", SCHNORR["sign"], ids=_ids("sign", len(SCHNORR["sign"])))
def test_sign_fixed_nonce(v: dict[str, Any]) -> None:
    sig = S.sign_hashed(B(v["sk"]), B(v["hashed_msg"]), B(v["k"]))
    assert sig == B(v["sig"])


@pytest.mark.parametrize("v", SCHNORR["sign"], ids=_ids("verify", len(SCHNORR["sign"])))
def test_verify_vector(v: dict[str, Any]) -> None:
    pk = S.public_key(B(v["sk"]))
    msg, sig = B(v["hashed_msg"]), B(v["sig"])
    assert S.verify_hashed(pk, msg, sig)
    bad = bytearray(sig)
    bad[0] ^= 1
    assert not S.verify_hashed(pk, msg, bytes(bad))
    other = bytearray(msg)
    other[3] ^= 0x10
    assert not S.verify_hashed(pk, bytes(other), sig)


# ------------------------------------------------------------------------------ tx oracle
def _oracle_id(i: int, v: dict[str, Any]) -> str:
    return f"{i}-{v['kind']}-nonce{v['nonce']}"


def _less_sig(info: str) -> str:
    sig = json.loads(info)["Sig"]
    assert info.count(f'"Sig":"{sig}"') == 1
    return info.replace(f'"Sig":"{sig}"', '"Sig":""')


def _sign(v: dict[str, Any]) -> tuple[str, bytes]:
    return S.sign_tx(
        v["kind"],
        dict(v["fields"]),
        sk=B(v["sk"]),
        chain_id=v["chain_id"],
        account_index=v["account_index"],
        api_key_index=v["api_key_index"],
        nonce=v["nonce"],
        expired_at=v["expired_at"],
    )


ORACLE_IDS = [_oracle_id(i, v) for i, v in enumerate(ORACLE)]


@pytest.mark.parametrize("v", ORACLE, ids=ORACLE_IDS)
def test_oracle_tx_hash(v: dict[str, Any]) -> None:
    _, h = _sign(v)
    assert h.hex() == v["tx_hash"]
    assert S.TX_TYPES[v["kind"]] == v["tx_type"]
    assert (
        S.tx_hash(
            v["kind"],
            dict(v["fields"]),
            chain_id=v["chain_id"],
            account_index=v["account_index"],
            api_key_index=v["api_key_index"],
            nonce=v["nonce"],
            expired_at=v["expired_at"],
        )
        == h
    )


@pytest.mark.parametrize("v", ORACLE, ids=ORACLE_IDS)
def test_oracle_tx_info_text(v: dict[str, Any]) -> None:
    info, _ = _sign(v)
    assert _less_sig(info) == _less_sig(v["tx_info"])
    assert re.fullmatch(r"[\x20-\x7e]+", info)


@pytest.mark.parametrize("v", ORACLE, ids=ORACLE_IDS)
def test_oracle_our_sig_verifies(v: dict[str, Any]) -> None:
    info, h = _sign(v)
    sig = base64.b64decode(json.loads(info)["Sig"], validate=True)
    assert len(sig) == 80
    assert S.verify_hashed(S.public_key(B(v["sk"])), h, sig)


@pytest.mark.parametrize("v", ORACLE, ids=ORACLE_IDS)
def test_oracle_sig_verifies(v: dict[str, Any]) -> None:
    pk = S.public_key(B(v["sk"]))
    sig = base64.b64decode(json.loads(v["tx_info"])["Sig"], validate=True)
    assert sig == B(v["sig"])
    assert S.verify_hashed(pk, B(v["tx_hash"]), sig)


@pytest.mark.parametrize("v", ORACLE, ids=ORACLE_IDS)
def test_oracle_tx_info_hash(v: dict[str, Any]) -> None:
    info = json.loads(v["tx_info"])
    assert S.tx_info_hash(v["tx_type"], info, v["chain_id"]).hex() == v["tx_hash"]
    # ... and of our own tx_info for the same request.
    ours, h = _sign(v)
    assert S.tx_info_hash(v["tx_type"], json.loads(ours), v["chain_id"]) == h


# ------------------------------------------------------------------------------ robustness
@pytest.mark.parametrize("num_outputs", [-1, -3])
def test_poseidon2_hash_negative_outputs_refused(num_outputs: int) -> None:
    # Run in a child interpreter: a crash here must not take the test run down with it.
    import subprocess
    import sys

    code = (
        "from mmfast._core import signer as S\n"
        "try:\n"
        f"    S.poseidon2_hash(bytes(8), {num_outputs})\n"
        "except ValueError:\n"
        "    raise SystemExit(3)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert r.returncode == 3, (r.returncode, r.stderr[-300:])


def test_tx_info_hash_refuses_five_attributes() -> None:
    # The venue allows at most 4 attributes: a 5th must not be ignored (the tx would hash the
    # same as the one without it).
    body = {
        "AccountIndex": 5,
        "ApiKeyIndex": 1,
        "Nonce": 1,
        "ExpiredAt": 1,
        "MarketIndex": 0,
        "Index": 1,
        "BaseAmount": 1,
        "Price": 1,
        "TriggerPrice": 0,
        "L2TxAttributes": {"1": 5, "2": 1, "3": 1, "4": 1, "8": 9},
    }
    with pytest.raises(S.NativeSignerError):
        S.tx_info_hash(17, body, 304)
