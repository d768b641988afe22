"""Secret type, key loading (env var, 0600 key file, owner, argv) and redaction."""

from __future__ import annotations

import base64
import copy
import io
import logging
import os
import pickle

import pytest

from mmfast.connector.lighter.secret import (
    REDACTED,
    ApiKey,
    RedactingFilter,
    Redactor,
    Secret,
    SecretError,
    load_api_key,
    redact,
)

# A canary key: any trace of it in output is a leak.
CANARY = "c0ffee" + "5a" * 37
assert len(CANARY) == 80


def leaks(text: str, key: str = CANARY) -> bool:
    raw = bytes.fromhex(key)
    b64 = [base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()]
    forms = [key, key.upper(), *b64]
    return any(form[i : i + 16] in text for form in forms for i in range(len(form) - 15))


def test_secret_repr_str_format_redacted() -> None:
    k = ApiKey("0x" + CANARY)
    texts = (repr(k), str(k), f"{k}", f"{k!r}", f"{k:>50}", "%s" % (k,), repr([k]), repr({"k": k}))  # noqa: UP031
    for text in texts:
        assert REDACTED in text
        assert not leaks(text)
    assert k.reveal() == CANARY


def test_secret_not_pickled_or_copied_or_hashed() -> None:
    k = ApiKey(CANARY)
    with pytest.raises(TypeError):
        pickle.dumps(k)
    with pytest.raises(TypeError):
        copy.copy(k)
    with pytest.raises(TypeError):
        copy.deepcopy({"k": k})
    with pytest.raises(TypeError):
        hash(k)
    assert k == ApiKey(CANARY.upper())
    assert k != ApiKey("11" * 40)
    assert Secret("abc") == Secret("abc")


@pytest.mark.parametrize(
    "bad", ["", "0x", "12" * 39, "12" * 41, "zz" + CANARY[2:], CANARY + "\x00"]
)
def test_apikey_malformed_error_has_no_key(bad: str) -> None:
    with pytest.raises(SecretError) as ei:
        ApiKey(bad)
    msg = str(ei.value)
    # No 8-char piece of the input is echoed (the fixed text has no hex run that long).
    assert all(bad[i : i + 8] not in msg for i in range(max(len(bad) - 7, 0)))


def test_load_from_env() -> None:
    env = {"MMFAST_TEST_KEY": CANARY}
    k = load_api_key(env_var="MMFAST_TEST_KEY", environ=env, argv=["mmfast"])
    assert k.reveal() == CANARY
    with pytest.raises(SecretError, match="MMFAST_TEST_KEY is not set"):
        load_api_key(env_var="MMFAST_TEST_KEY", environ={}, argv=[])
    with pytest.raises(SecretError) as ei:
        load_api_key(env_var="V", environ={"V": CANARY[:-2] + "zz"}, argv=[])
    assert "V" in str(ei.value) and not leaks(str(ei.value))


def _key_file(tmp_path, mode: int, text: str = CANARY + "\n"):
    p = tmp_path / "key"
    p.write_text(text)
    os.chmod(p, mode)
    return p


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_key_file_owner_only_accepted(tmp_path, mode: int) -> None:
    assert load_api_key(key_file=_key_file(tmp_path, mode), argv=[]).reveal() == CANARY


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o666, 0o610, 0o601])
def test_key_file_wider_than_0600_refused(tmp_path, mode: int) -> None:
    p = _key_file(tmp_path, mode)
    with pytest.raises(SecretError, match=f"mode {mode:04o}") as ei:
        load_api_key(key_file=p, argv=[])
    assert not leaks(str(ei.value))


def test_key_file_wrong_owner_refused(tmp_path) -> None:
    p = _key_file(tmp_path, 0o600)
    other = os.geteuid() + 12345
    try:
        os.chown(p, other, -1)
    except PermissionError:
        pytest.skip("cannot chown without privileges")
    with pytest.raises(SecretError, match="not by the running user") as ei:
        load_api_key(key_file=p, argv=[])
    assert not leaks(str(ei.value))


def test_key_file_symlink_missing_dir_and_garbage_refused(tmp_path) -> None:
    real = _key_file(tmp_path, 0o600)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(SecretError, match="cannot be opened"):
        load_api_key(key_file=link, argv=[])
    with pytest.raises(SecretError, match="does not exist"):
        load_api_key(key_file=tmp_path / "nope", argv=[])
    with pytest.raises(SecretError, match="not a regular file"):
        d = tmp_path / "d"
        d.mkdir(mode=0o700)
        load_api_key(key_file=d, argv=[])
    bad = tmp_path / "bad"
    bad.write_text(CANARY[:40] + "g" * 40)
    os.chmod(bad, 0o600)
    with pytest.raises(SecretError) as ei:
        load_api_key(key_file=bad, argv=[])
    assert not leaks(str(ei.value)) and CANARY[:16] not in str(ei.value)


def test_env_wins_over_file_and_file_used_when_env_unset(tmp_path) -> None:
    other = "ab" * 40
    p = _key_file(tmp_path, 0o600, other)
    assert load_api_key(env_var="K", key_file=p, environ={"K": CANARY}, argv=[]).reveal() == CANARY
    assert load_api_key(env_var="K", key_file=p, environ={}, argv=[]).reveal() == other


def test_key_on_argv_refused() -> None:
    env = {"K": CANARY}
    argvs = (["mmfast", "--key", CANARY], ["mmfast", "--key=0x" + CANARY], ["x", CANARY[10:30]])
    for argv in argvs:
        with pytest.raises(SecretError, match="command line") as ei:
            load_api_key(env_var="K", environ=env, argv=argv)
        assert not leaks(str(ei.value))
    with pytest.raises(SecretError, match="no source"):
        load_api_key()


def test_redactor_all_encodings_and_runs() -> None:
    raw = bytes.fromhex(CANARY)
    red = Redactor([ApiKey(CANARY)])
    samples = [
        f"key={CANARY}",
        f"key=0x{CANARY.upper()}",
        f"b64 {base64.b64encode(raw).decode()} end",
        f"url {base64.urlsafe_b64encode(raw).decode().rstrip('=')}",
        f"partial ...{CANARY[7:30]}...",
        f"two {CANARY[:20]} and {CANARY[50:70]}",
    ]
    for s in samples:
        out = red.redact(s)
        assert REDACTED in out, s
        assert not leaks(out), out
    assert red.redact("nothing secret here 0123456789") == "nothing secret here 0123456789"
    # A 15-char piece is below the run threshold and is kept (it cannot identify the key).
    assert red.redact("x" + CANARY[:15] + "y") == "x" + CANARY[:15] + "y"


def test_generic_shapes_redacted() -> None:
    token = "1795629450:1001:5:" + "ab" * 40
    tx_info = '{"Nonce":7,"Sig":"6vj2upqEP9V5IhRj7U7+CyKP1GBJcZwKLcrq4aAye95z","L1Sig":"0xdead"}'
    out = redact(f"token {token} tx {tx_info}")
    assert "ab" * 20 not in out and "6vj2upqEP9V5" not in out and "0xdead" not in out
    assert "1795629450:1001:5:" + REDACTED in out and '"Nonce":7' in out
    assert "tok" not in redact('{"type":"subscribe","auth":"tok"}')
    assert "secret-token" not in redact("authorization: secret-token")
    escaped = '"{\\"Sig\\":\\"AAAABBBBCCCC\\"}"'
    assert "AAAABBBBCCCC" not in redact(escaped)


def test_redacting_filter_on_logger() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter([ApiKey(CANARY)]))
    log = logging.getLogger("mmfast.test.redact")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        log.debug("key %s and %r", CANARY, {"k": CANARY})
        try:
            raise RuntimeError(f"boom with {CANARY}")
        except RuntimeError:
            log.exception("failed: %s", base64.b64encode(bytes.fromhex(CANARY)).decode())
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert "failed" in text and "RuntimeError" in text and REDACTED in text
    assert not leaks(text)
