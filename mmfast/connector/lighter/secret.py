"""The API private key as a secret type, its loading, and redaction of secrets from text.

* ``Secret`` holds a secret string: ``repr``/``str``/``format`` print a fixed placeholder, it
  refuses to be pickled or copied, and equality is constant-time. ``reveal()`` is the one way out,
  and only the signer calls it.
* ``ApiKey`` is the Lighter API private key (40 bytes, 80 hex digits, ``0x`` optional).
* ``load_api_key`` reads it from an environment variable or from a key file that must be a regular
  file owned by the running user with no group/other permission bits (0600 or 0400). Never from
  the command line: a key found in ``sys.argv`` is refused.
* ``Redactor`` / ``redact`` remove secrets from arbitrary text (log lines, exception texts): every
  registered secret in hex (any case), ``0x`` hex and base64 (standard and URL-safe) form, and any
  run of 16 or more characters of those forms; and, with no secret registered, anything shaped
  like a Lighter auth token or a tx signature (``"Sig"``/``"L1Sig"`` fields, ``"auth"`` fields,
  ``authorization`` headers). ``RedactingFilter`` applies it to log records.

Error messages never contain the key: they name the variable or the file and what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import re
import stat
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

from mmfast.core.errors import MmfastError

__all__ = [
    "ENV_GUARD_KEY",
    "ENV_KEY_FILE",
    "ENV_PRIVATE_KEY",
    "MIN_RUN",
    "REDACTED",
    "SECRET_ENV_VARS",
    "ApiKey",
    "RedactingFilter",
    "Redactor",
    "Secret",
    "SecretError",
    "load_api_key",
    "redact",
]

REDACTED = "[REDACTED]"
# Where keys may come from in the environment (here, not in the config loader: the guard
# process reads its key and must not import the config's and simulator's modules to do so).
ENV_PRIVATE_KEY: Final = "MMFAST_API_PRIVATE_KEY"
ENV_GUARD_KEY: Final = "MMFAST_GUARD_API_PRIVATE_KEY"
ENV_KEY_FILE: Final = "MMFAST_API_KEY_FILE"
# The only settings the environment may supply.
SECRET_ENV_VARS: Final = (ENV_PRIVATE_KEY, ENV_KEY_FILE, ENV_GUARD_KEY)
# A run of this many characters of a secret's encoding counts as a leak.
MIN_RUN = 16
_MIN_EXACT = 8  # shortest derived form matched whole
_API_KEY_BYTES = 40
_HEX = frozenset("0123456789abcdefABCDEF")


class SecretError(MmfastError, ValueError):
    """A secret could not be loaded or is malformed. The message never contains the secret."""


def _refuse_copy(self: object, *args: object) -> NoReturn:
    raise TypeError(f"{type(self).__name__} cannot be pickled or copied")


class Secret:
    """A secret string that does not print itself.

    ``repr``, ``str`` and ``format`` give ``Secret('[REDACTED]')`` / ``[REDACTED]``; pickling and
    copying raise TypeError (so it never lands in a journal or a crash dump by accident); ``==``
    is constant-time; it is not hashable (a dict key would leak through its hash timing).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a Secret holds a str")
        if not value:
            raise SecretError("empty secret")
        self._value = value

    def reveal(self) -> str:
        """The secret itself. Call only where it is handed to the signer."""
        return self._value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return format(REDACTED, spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]
    __reduce__ = _refuse_copy
    __reduce_ex__ = _refuse_copy
    __getstate__ = _refuse_copy
    __copy__ = _refuse_copy
    __deepcopy__ = _refuse_copy

    def __len__(self) -> int:
        return len(self._value)

    def __bool__(self) -> bool:
        return True


class ApiKey(Secret):
    """The Lighter API private key: 40 bytes as 80 hex digits (stored without ``0x``, lowercase)."""

    __slots__ = ()

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("an ApiKey is built from a str")
        text = value.strip()
        if text[:2] in ("0x", "0X"):
            text = text[2:]
        if len(text) != 2 * _API_KEY_BYTES or not _HEX.issuperset(text):
            # Say what is wrong without echoing any of it.
            raise SecretError(
                f"API private key must be {2 * _API_KEY_BYTES} hex digits (optionally 0x-prefixed);"
                f" got {len(text)} characters"
                + ("" if _HEX.issuperset(text) else " including non-hex ones")
            )
        super().__init__(text.lower())

    @property
    def raw(self) -> bytes:
        """The key's 40 bytes (for redaction of encoded forms)."""
        return bytes.fromhex(self._value)


# ------------------------------------------------------------------------------------ loading
def _check_not_in_argv(key: ApiKey, argv: Sequence[str]) -> None:
    red = Redactor([key])
    for arg in argv:
        if red.redact(arg) != arg:
            raise SecretError(
                "the API private key appears on the command line; pass it through an"
                " environment variable or a 0600 key file instead"
            )


def _read_key_file(path: Path) -> str:
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise SecretError(f"key file {str(path)!r} does not exist") from None
    except OSError as exc:
        # ELOOP from O_NOFOLLOW: a symlink could point anywhere, refuse it.
        raise SecretError(f"key file {str(path)!r} cannot be opened: {exc.strerror}") from None
    try:
        # fstat on the open descriptor: the checked file is the file read.
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SecretError(f"key file {str(path)!r} is not a regular file")
        if st.st_uid != os.geteuid():
            raise SecretError(
                f"key file {str(path)!r} is owned by uid {st.st_uid}, not by the running user"
                f" (uid {os.geteuid()}); refusing it"
            )
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise SecretError(
                f"key file {str(path)!r} has mode {mode:04o}; it must not be readable or"
                f" writable by group or others (chmod 600)"
            )
        if st.st_size > 4096:
            raise SecretError(f"key file {str(path)!r} is too large to be a key file")
        chunks = []
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("ascii")
    except UnicodeDecodeError:
        raise SecretError(f"key file {str(path)!r} is not ASCII text") from None


def load_api_key(
    *,
    env_var: str | None = None,
    key_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    argv: Sequence[str] | None = None,
) -> ApiKey:
    """Load the API private key from ``env_var`` or ``key_file`` (exactly one source is used).

    If both are given, the environment variable wins when it is set and non-empty; otherwise the
    key file is read. The key file must be a regular file (not a symlink), owned by the running
    user, with no group/other bits (0600 or 0400). A key that also appears in ``argv`` (default
    ``sys.argv``) is refused. Raises SecretError with a message that never contains the key.
    """
    if env_var is None and key_file is None:
        raise SecretError("no source for the API private key: set an env var or a key file")
    env = os.environ if environ is None else environ
    key: ApiKey | None = None
    if env_var is not None:
        value = env.get(env_var)
        if value:
            try:
                key = ApiKey(value)
            except SecretError as exc:
                raise SecretError(f"environment variable {env_var}: {exc}") from None
        elif key_file is None:
            raise SecretError(f"environment variable {env_var} is not set")
    if key is None:
        assert key_file is not None
        path = Path(key_file)
        text = _read_key_file(path)
        try:
            key = ApiKey(text)
        except SecretError as exc:
            raise SecretError(f"key file {str(path)!r}: {exc}") from None
    _check_not_in_argv(key, sys.argv if argv is None else argv)
    return key


# ------------------------------------------------------------------------------------ redaction
# Shapes of secrets that need no registered value: Lighter auth tokens
# ("<deadline>:<account>:<api key>:<hex signature>"), tx signature and auth fields, auth headers.
_GENERIC = (
    re.compile(r"\b(\d{9,11}:\d+:\d+:)[0-9a-fA-F]{32,}"),
    re.compile(r"""((?:\\?["'])(?:L1)?Sig(?:\\?["'])\s*:\s*(?:\\?["']))[^"'\\]+"""),
    re.compile(r"""((?:\\?["'])auth(?:\\?["'])\s*:\s*(?:\\?["']))[^"'\\]+""", re.IGNORECASE),
    re.compile(r"((?:^|\b)authorization\s*[:=]\s*)[^\s,;}\"']+", re.IGNORECASE),
)


class Redactor:
    """Removes registered secrets (all their encodings, and 16+ char runs of them) from text."""

    __slots__ = ("_exact", "_hex_runs", "_runs")

    def __init__(self, secrets: Iterable[Secret | str | bytes] = ()) -> None:
        self._hex_runs: set[str] = set()  # MIN_RUN-char windows of hex forms, lowercase
        self._runs: set[str] = set()  # MIN_RUN-char windows of case-sensitive forms (base64)
        self._exact: list[str] = []  # whole short forms (< MIN_RUN chars), replaced as is
        for s in secrets:
            self.add(s)

    def add(self, secret: Secret | str | bytes) -> None:
        """Register a secret: a Secret, its text, or raw bytes."""
        if isinstance(secret, ApiKey):
            raw: bytes | None = secret.raw
            text = secret.reveal()
        elif isinstance(secret, Secret):
            text = secret.reveal()
            raw = _maybe_hex(text)
        elif isinstance(secret, bytes):
            raw, text = secret, secret.hex()
        else:
            text = secret
            raw = _maybe_hex(text)
        if len(text) < MIN_RUN:
            # Replacing a short string everywhere blanks ordinary text ("a" in every word)
            # and still does not hide a guessable secret: refused, not half-redacted.
            raise ValueError(
                f"a secret shorter than {MIN_RUN} characters cannot be redacted "
                "safely; use a longer one"
            )
        forms_ci = [text.lower()]
        forms_cs = [text]
        if raw is not None:
            forms_ci.append(raw.hex())
            for enc in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
                s = enc.decode()
                forms_cs.append(s)
                forms_cs.append(s.rstrip("="))
        for form in forms_ci:
            self._add_windows(form, self._hex_runs)
        for form in forms_cs:
            self._add_windows(form, self._runs)

    def _add_windows(self, form: str, into: set[str]) -> None:
        if len(form) < MIN_RUN:
            # A short encoding of a long secret (base64 of a 16-hex-digit key): matched whole,
            # never below _MIN_EXACT characters.
            if len(form) >= _MIN_EXACT and form not in self._exact:
                self._exact.append(form)
            return
        for i in range(len(form) - MIN_RUN + 1):
            into.add(form[i : i + MIN_RUN])

    def redact(self, text: str) -> str:
        """``text`` with every registered secret run and every generic secret shape replaced."""
        if self._hex_runs or self._runs:
            text = self._redact_runs(text)
        for form in self._exact:
            text = text.replace(form, REDACTED)
        for pattern in _GENERIC:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        return text

    def _redact_runs(self, text: str) -> str:
        n = len(text)
        if n < MIN_RUN:
            return text
        lower = text.lower()
        hex_runs, runs = self._hex_runs, self._runs
        spans: list[list[int]] = []
        for i in range(n - MIN_RUN + 1):
            if lower[i : i + MIN_RUN] in hex_runs or text[i : i + MIN_RUN] in runs:
                end = i + MIN_RUN
                if spans and spans[-1][1] >= i:
                    spans[-1][1] = end
                else:
                    spans.append([i, end])
        if not spans:
            return text
        out: list[str] = []
        pos = 0
        for start, end in spans:
            # Swallow a "0x" prefix of a hex form too.
            if start >= 2 and lower[start - 2 : start] == "0x":
                start -= 2
            out.append(text[pos:start])
            out.append(REDACTED)
            pos = end
        out.append(text[pos:])
        return "".join(out)


def _maybe_hex(text: str) -> bytes | None:
    t = text[2:] if text[:2] in ("0x", "0X") else text
    if len(t) >= 2 and len(t) % 2 == 0 and _HEX.issuperset(t):
        try:
            return bytes.fromhex(t)
        except ValueError:  # pragma: no cover - guarded by the hex check
            return None
    try:
        return base64.b64decode(t, validate=True) if len(t) >= MIN_RUN else None
    except (binascii.Error, ValueError):
        return None


_GENERIC_ONLY = Redactor()


def redact(text: str, secrets: Iterable[Secret | str | bytes] = ()) -> str:
    """Redact ``secrets`` (any encoding, any 16+ char run) and generic secret shapes from text."""
    red = Redactor(secrets) if secrets else _GENERIC_ONLY
    return red.redact(text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message, exception and stack text of records.

    Attach it to a handler. It renders ``msg % args`` itself, so the record leaves with plain
    text; the exception text replaces ``exc_info`` (which is cleared, so no formatter can render
    the raw traceback again).
    """

    def __init__(self, secrets: Iterable[Secret | str | bytes] = (), name: str = "") -> None:
        super().__init__(name)
        self.redactor = Redactor(secrets)
        self._fmt = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        red = self.redactor.redact
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the template, drop the args
            message = str(record.msg)
        record.msg = red(message)
        record.args = None
        if record.exc_info:
            record.exc_text = red(self._fmt.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = red(record.exc_text)
        if record.stack_info:
            record.stack_info = red(record.stack_info)
        return True

    def add(self, secret: Any) -> None:
        self.redactor.add(secret)
