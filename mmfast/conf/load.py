"""Load and validate a config: TOML -> typed frozen ``Config``, strictly, before any network I/O.

Order of work: parse the TOML (``tomllib``); check every key against the schema (unknown keys,
types, ranges, NaN/inf); apply the per-mode defaults and the cross-field rules; read the secret
from the environment (``MMFAST_API_PRIVATE_KEY``) or from the key file (mode 0600, owned by the
running user). Every problem found is reported at once in one ``ConfigError`` naming each key
path. The environment overrides secrets only: no other setting can come from it.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import tomllib
import types
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Final, get_type_hints
from urllib.parse import urlsplit

from mmfast.conf.schema import MODES, Config, ConfigError, GuardConfig, VenueConfig
from mmfast.connector.lighter.secret import (
    ENV_GUARD_KEY,
    ENV_KEY_FILE,
    ENV_PRIVATE_KEY,
    SECRET_ENV_VARS,
    ApiKey,
    SecretError,
    load_api_key,
)
from mmfast.sim.config import (
    DEFAULT_ACCOUNT_INDEX as SIM_ACCOUNT_INDEX,
)
from mmfast.sim.config import (
    DEFAULT_CHAIN_ID as SIM_CHAIN_ID,
)
from mmfast.sim.config import (
    LIGHTER_CHAIN_IDS,
    LOOPBACK_HOSTS,
)

SIM_WS_ORDER_FRAMES: Final = 4  # [venue] ws_order_frames in sim mode when not set

__all__ = [
    "ENV_GUARD_KEY",
    "ENV_KEY_FILE",
    "ENV_PRIVATE_KEY",
    "LIGHTER_ENDPOINTS",
    "SECRET_ENV_VARS",
    "example_path",
    "load_config",
    "parse_config",
    "read_config_toml",
    "read_key_file",
]

SIM_API_KEY_INDEX: Final = 4
# (rest_url, ws_url, chain ids accepted, default chain id) per real environment.
LIGHTER_ENDPOINTS: Final[Mapping[str, tuple[str, str, frozenset[int], int]]] = {
    "testnet": (
        "https://testnet.zklighter.elliot.ai",
        "wss://testnet.zklighter.elliot.ai/stream",
        frozenset({300}),
        300,
    ),
    # 466324: the venue's second mainnet profile (api.rh.lighter.xyz).
    "mainnet": (
        "https://mainnet.zklighter.elliot.ai",
        "wss://mainnet.zklighter.elliot.ai/stream",
        frozenset({304, 466324}),
        304,
    ),
}
_CHAIN_NAMES: Final = {300: "testnet's", 304: "mainnet's", 466324: "a Lighter mainnet's"}
_SYMBOL_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,31}")
# A string value that may be (part of) a key is never echoed in an error.
_HEXRUN_RE: Final = re.compile(r"[0-9a-fA-F]{16,}")
_SECRETISH: Final = ("key", "secret", "token", "password", "private")
_NIL_MARKET: Final = 255
_BAD: Final = object()


def example_path(mode: str) -> Path:
    """Path of the shipped example config for ``mode`` (sim, testnet or mainnet)."""
    if mode not in MODES:
        raise ValueError(f"no example config for mode {mode!r}")
    return Path(str(resources.files("mmfast.conf").joinpath(f"{mode}.toml")))


def read_config_toml(path: str | None) -> tuple[Path, dict[str, Any]]:
    """A command's ``--config`` file (None: the shipped sim example) as a TOML table, for
    commands that override keys before ``parse_config``; ConfigError naming ``--config`` or
    the file."""
    p = Path(path) if path else example_path("sim")
    try:
        data = tomllib.loads(p.read_text())
    except OSError as exc:
        raise ConfigError([("--config", f"cannot read {p}: {exc.strerror}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([("", f"invalid TOML: {exc}")], source=str(p)) from None
    return p, data


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    live: bool = False,
    env: Mapping[str, str] | None = None,
    read_key: bool = True,
) -> Config:
    """Read and validate a TOML config file (None: the shipped sim example).

    ``live`` is the ``--live`` flag (mainnet needs it and ``venue.allow_mainnet = true``);
    ``env`` defaults to ``os.environ`` and is read for secrets only. ``read_key`` False skips
    reading the key file (its path is still validated). Raises ConfigError.
    """
    p = example_path("sim") if path is None else Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(
            [("", f"cannot read config file: {exc.strerror or exc}")], source=str(p)
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([("", "config file is not UTF-8")], source=str(p)) from None
    return parse_config(text, live=live, env=env, source=str(p), read_key=read_key)


def parse_config(
    data: str | Mapping[str, Any],
    *,
    live: bool = False,
    env: Mapping[str, str] | None = None,
    source: str | None = None,
    read_key: bool = True,
) -> Config:
    """Validate a config given as TOML text or as an already-parsed mapping. See load_config."""
    if isinstance(data, str):
        try:
            data = tomllib.loads(data)
        except tomllib.TOMLDecodeError as exc:
            # The decoder's message names a line and column, never a value.
            raise ConfigError([("", f"invalid TOML: {exc}")], source=source) from None
    env = os.environ if env is None else env
    errors: list[tuple[str, str]] = []
    if not isinstance(live, bool):
        raise TypeError("live must be a bool")
    cfg = _build(Config, data, "", errors)
    if cfg is None or errors:
        raise ConfigError(errors, source=source)
    cfg = _resolve(cfg, live, env, errors)
    if errors:
        raise ConfigError(errors, source=source)
    assert cfg is not None
    if read_key and cfg.venue.private_key is None and cfg.venue.key_file is not None:
        key_var = ENV_KEY_FILE if env.get(ENV_KEY_FILE) else "venue.key_file"
        secret = read_key_file(cfg.venue.key_file, key_name=key_var)
        cfg = dataclasses.replace(cfg, venue=dataclasses.replace(cfg.venue, private_key=secret))
    g = cfg.guard
    if read_key and g.enabled and g.private_key is None and g.key_file is not None:
        secret = read_key_file(g.key_file, key_name="guard.key_file")
        cfg = dataclasses.replace(cfg, guard=dataclasses.replace(g, private_key=secret))
    return cfg


def read_key_file(path: str | os.PathLike[str], *, key_name: str = "venue.key_file") -> ApiKey:
    """Read the API private key from a key file (``load_api_key`` rules: a regular file, not a
    symlink, owned by the running user, no group/other bits; a key also found on the command
    line is refused). Raises ConfigError naming ``key_name``; the key never appears in it."""
    try:
        return load_api_key(key_file=path, environ={})
    except SecretError as exc:
        raise ConfigError([(key_name, str(exc))]) from None


# --- schema walk ----------------------------------------------------------------------------


def _show(value: Any) -> str:
    """A value for an error message; long or hex-looking strings are not echoed (may be keys)."""
    if isinstance(value, str):
        if len(value) > 80 or _HEXRUN_RE.search(value):
            return f"a string of {len(value)} characters (not shown)"
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return f"a {_toml_type(value)}"


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "table"
    if isinstance(value, list):
        return "array"
    return type(value).__name__  # datetime, date, time


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _unknown_key(cls: type, path: str, key: str, fields: dict[str, dataclasses.Field[Any]]) -> str:
    f = fields.get(key)
    if (f is not None and f.metadata["source"] == "env") or (
        f is None
        and any(word in key.lower() for word in _SECRETISH)
        and key not in ("key_file", "api_key_index")
    ):
        return f"secrets are not read from the config file: set {ENV_PRIVATE_KEY} or venue.key_file"
    if f is not None and f.metadata["source"] == "cli":
        return "set by the --live command-line flag, not by the config file"
    names = [n for n, fl in fields.items() if fl.metadata["source"] == "toml"]
    close = difflib.get_close_matches(key, names, n=1)
    hint = f" (did you mean {_join(path, close[0])!r}?)" if close else ""
    table = f"[{path}]" if path else "the top level"
    return f"unknown key in {table}{hint}; known: {', '.join(names)}"


def _build(cls: type, data: Any, path: str, errors: list[tuple[str, str]]) -> Any:
    """Build dataclass ``cls`` from a TOML table, appending (key, message) for each problem."""
    if not isinstance(data, Mapping):
        errors.append((path, f"must be a table, got {_show(data)}"))
        return None
    n_before = len(errors)
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        f = fields.get(key)
        if f is None or f.metadata["source"] != "toml":
            errors.append((_join(path, str(key)), _unknown_key(cls, path, str(key), fields)))
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if f.metadata["source"] != "toml":
            continue
        key = _join(path, name)
        typ = hints[name]
        if dataclasses.is_dataclass(typ):
            sub = data.get(name, {})
            built = _build(typ, sub, key, errors)  # type: ignore[arg-type]
            if built is not None:
                kwargs[name] = built
            continue
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                errors.append((key, f"required ({f.metadata['doc']})"))
            continue
        value = _check_value(data[name], typ, f.metadata, key, errors)
        if value is not _BAD:
            kwargs[name] = value
    if len(errors) != n_before:
        return None
    return cls(**kwargs)


def _base_type(typ: Any) -> Any:
    if isinstance(typ, types.UnionType):
        args = [a for a in typ.__args__ if a is not type(None)]
        return args[0]
    return typ


def _check_value(
    value: Any, typ: Any, meta: Mapping[str, Any], key: str, errors: list[tuple[str, str]]
) -> Any:
    base = _base_type(typ)
    if base is bool:
        if not isinstance(value, bool):
            errors.append((key, f"expected true or false, got {_show(value)}"))
            return _BAD
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append((key, f"expected an integer, got {_show(value)}"))
            return _BAD
        return value if _in_range(value, meta, key, errors) else _BAD
    if base is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append((key, f"expected a number, got {_show(value)}"))
            return _BAD
        if isinstance(value, float) and not math.isfinite(value):
            errors.append((key, f"must be a finite number, got {value!r}"))
            return _BAD
        value = float(value)
        if not math.isfinite(value):  # an integer too big for a double
            errors.append((key, "number out of range"))
            return _BAD
        return value if _in_range(value, meta, key, errors) else _BAD
    if base is str or base is Path:
        if not isinstance(value, str):
            errors.append((key, f"expected a string, got {_show(value)}"))
            return _BAD
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            errors.append(
                (key, f"must be one of {', '.join(map(repr, choices))}, got {_show(value)}")
            )
            return _BAD
        if not value.strip():
            errors.append((key, "must not be empty"))
            return _BAD
        if "\x00" in value:
            errors.append((key, "must not contain NUL"))
            return _BAD
        if base is Path:
            return Path(value)  # "~" is expanded with the loader's environment
        return value
    raise TypeError(f"schema type {typ!r} of {key} not supported")  # a schema bug


def _in_range(
    value: float, meta: Mapping[str, Any], key: str, errors: list[tuple[str, str]]
) -> bool:
    lo, hi, unit = meta.get("lo"), meta.get("hi"), meta.get("unit") or ""
    unit = f" {unit}" if unit else ""
    if lo is not None and (value <= lo if meta.get("lo_open") else value < lo):
        op = ">" if meta.get("lo_open") else ">="
        errors.append((key, f"must be {op} {_num(lo)}{unit}, got {value!r}"))
        return False
    if hi is not None and value > hi:
        errors.append((key, f"must be <= {_num(hi)}{unit}, got {value!r}"))
        return False
    return True


def _num(x: float) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    if isinstance(x, int) and x >= 1 << 32 and x & (x - 1) == 0:
        return f"2**{x.bit_length() - 1}"
    return repr(x)


# --- per-mode defaults and cross-field rules ------------------------------------------------


def _resolve(
    cfg: Config, live: bool, env: Mapping[str, str], errors: list[tuple[str, str]]
) -> Config | None:
    venue = _resolve_venue(cfg.venue, live, env, errors)
    _check_market(cfg, errors)
    _check_strategy(cfg, errors)
    guard = None if venue is None else _resolve_guard(cfg.guard, venue, env, errors)
    if venue is None or guard is None or errors:
        return None
    _check_maker_only(venue, guard, errors)
    if errors:
        return None
    journal = cfg.run.journal_path
    assert venue.state_dir is not None
    journal = venue.state_dir / "journal.jsonl" if journal is None else venue.state_dir / journal
    return dataclasses.replace(
        cfg, venue=venue, guard=guard, run=dataclasses.replace(cfg.run, journal_path=journal)
    )


def _check_maker_only(v: VenueConfig, g: GuardConfig, errors: list[tuple[str, str]]) -> None:
    """The venue marks only API key indexes 4 and up maker-only (lighter-python's
    set_maker_only_api_keys example, checked 2026-12-06); the simulator takes any."""
    if v.mode == "sim":
        return
    for key, on, index in (
        ("venue", v.maker_only, v.api_key_index),
        ("guard", g.enabled and g.maker_only, g.api_key_index),
    ):
        if on and index is not None and index < 4:
            errors.append(
                (
                    f"{key}.maker_only",
                    f"the venue marks only API key indexes >= 4 "
                    f"maker-only; {key}.api_key_index is {index}",
                )
            )


def _resolve_guard(
    g: GuardConfig, v: VenueConfig, env: Mapping[str, str], errors: list[tuple[str, str]]
) -> GuardConfig | None:
    """The guard's key index (sim default: the bot's + 1) and key (environment first, then
    guard.key_file; sim mode makes a throwaway one at start)."""
    n_before = len(errors)
    key = None
    if env.get(ENV_GUARD_KEY):
        try:
            key = load_api_key(env_var=ENV_GUARD_KEY, environ=env)
        except SecretError as exc:
            errors.append(
                (ENV_GUARD_KEY, str(exc).removeprefix(f"environment variable {ENV_GUARD_KEY}: "))
            )
    key_file = None if g.key_file is None else _expand(g.key_file, env)
    if g.heartbeat_interval_ms * 3 > g.max_silence_ms:
        errors.append(
            (
                "guard.heartbeat_interval_ms",
                "must be at most a third of guard.max_silence_ms (a late beat is not a dead bot)",
            )
        )
    index = g.api_key_index
    if not g.enabled:
        return (
            dataclasses.replace(g, private_key=key, key_file=key_file)
            if len(errors) == n_before
            else None
        )
    if v.mode == "sim":
        if key is not None or key_file is not None:
            errors.append(
                ("guard", f"sim mode makes its own guard key: no {ENV_GUARD_KEY} or guard.key_file")
            )
        if index is None:
            assert v.api_key_index is not None
            index = v.api_key_index + 1 if v.api_key_index < 254 else v.api_key_index - 1
    else:
        if index is None:
            errors.append(
                ("guard.api_key_index", f"required in {v.mode} mode (or set guard.enabled = false)")
            )
        if key is None and key_file is None:
            errors.append(
                ("guard", f"{v.mode} mode needs the guard's key: {ENV_GUARD_KEY} or guard.key_file")
            )
    if index is not None and index == v.api_key_index:
        errors.append(
            (
                "guard.api_key_index",
                "must differ from venue.api_key_index (nonces "
                "are per key: the guard must never race the bot's)",
            )
        )
    if len(errors) != n_before:
        return None
    return dataclasses.replace(g, api_key_index=index, private_key=key, key_file=key_file)


def _default_state_dir(env: Mapping[str, str]) -> Path:
    xdg = env.get("XDG_STATE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "mmfast"
    return _expand(Path("~/.local/state/mmfast"), env)


def _expand(path: Path, env: Mapping[str, str]) -> Path:
    """Expand a leading ``~`` with HOME from ``env`` (the process's home when it has none)."""
    text = str(path)
    if text == "~" or text.startswith("~/"):
        home = env.get("HOME") or os.path.expanduser("~")
        return Path(home + text[1:])
    return Path(os.path.expanduser(text))  # ~user, or no tilde at all


def _check_url(
    key: str, url: str, schemes: tuple[str, ...], errors: list[tuple[str, str]]
) -> str | None:
    """Return the URL's host, or None after appending an error."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        errors.append((key, f"not a valid URL: {_show(url)}"))
        return None
    if parts.scheme not in schemes or not host:
        want = " or ".join(f"{s}://" for s in schemes)
        errors.append((key, f"must be a {want} URL with a host, got {_show(url)}"))
        return None
    if parts.username or parts.password:
        errors.append((key, "credentials in the URL are refused"))
        return None
    return host.lower()


def _private_key_from_env(env: Mapping[str, str], errors: list[tuple[str, str]]) -> ApiKey | None:
    if not env.get(ENV_PRIVATE_KEY):
        return None
    try:
        return load_api_key(env_var=ENV_PRIVATE_KEY, environ=env)
    except SecretError as exc:
        # The message names the variable and what is wrong, never the value.
        errors.append(
            (ENV_PRIVATE_KEY, str(exc).removeprefix(f"environment variable {ENV_PRIVATE_KEY}: "))
        )
        return None


def _resolve_venue(
    v: VenueConfig, live: bool, env: Mapping[str, str], errors: list[tuple[str, str]]
) -> VenueConfig | None:
    n_before = len(errors)
    mode = v.mode
    key = _private_key_from_env(env, errors)
    key_file = None if v.key_file is None else _expand(v.key_file, env)
    env_key_file = env.get(ENV_KEY_FILE, "")
    key_file_name = "venue.key_file"
    if env_key_file:
        key_file = _expand(Path(env_key_file), env)
        key_file_name = ENV_KEY_FILE
    if key_file is not None and not key_file.is_absolute():
        errors.append((key_file_name, "must be an absolute path (or start with ~)"))
    state_dir = None if v.state_dir is None else _expand(v.state_dir, env)
    if state_dir is None:
        state_dir = _default_state_dir(env)
    elif not state_dir.is_absolute():
        errors.append(
            (
                "venue.state_dir",
                "must be an absolute path (or start with ~), never "
                "relative to the working directory",
            )
        )
    rest_url, ws_url, chain_id = v.rest_url, v.ws_url, v.chain_id
    account_index, api_key_index = v.account_index, v.api_key_index
    # Order frames awaiting acks: the simulator answers a connection in order; Lighter's answer
    # order is unconfirmed, so one at a time there.
    ws_order_frames = v.ws_order_frames
    if ws_order_frames is None:
        ws_order_frames = SIM_WS_ORDER_FRAMES if mode == "sim" else 1
    # The tier: sim keeps the premium budget it always had (its simulator is started on the
    # same tier); a real account is taken as standard, the least favourable, unless told.
    tier = v.tier if v.tier is not None else ("premium" if mode == "sim" else "standard")

    if mode == "sim":
        if chain_id is None:
            chain_id = SIM_CHAIN_ID
        elif chain_id in LIGHTER_CHAIN_IDS:
            errors.append(
                (
                    "venue.chain_id",
                    f"sim mode refuses {_CHAIN_NAMES[chain_id]} chain "
                    f"id {chain_id}: use the simulator's own (default "
                    f"{SIM_CHAIN_ID})",
                )
            )
        if (rest_url is None) != (ws_url is None):
            missing = "venue.ws_url" if ws_url is None else "venue.rest_url"
            errors.append(
                (
                    missing,
                    "sim mode takes both URLs (a running simulator) or neither "
                    "(start the built-in one)",
                )
            )
        for name, url, schemes in (
            ("venue.rest_url", rest_url, ("http", "https")),
            ("venue.ws_url", ws_url, ("ws", "wss")),
        ):
            if url is None:
                continue
            host = _check_url(name, url, schemes, errors)
            if host is not None and host.strip("[]") not in LOOPBACK_HOSTS:
                errors.append(
                    (name, f"sim mode connects to a loopback simulator only, got host {host!r}")
                )
        account_index = SIM_ACCOUNT_INDEX if account_index is None else account_index
        api_key_index = SIM_API_KEY_INDEX if api_key_index is None else api_key_index
        if env.get(ENV_PRIVATE_KEY):
            errors.append(
                (
                    ENV_PRIVATE_KEY,
                    "sim mode refuses a real key (it signs with a throwaway key): unset it",
                )
            )
        if key_file is not None:
            errors.append(
                (
                    key_file_name,
                    "sim mode refuses a real key (it signs with a throwaway key): remove it",
                )
            )
        if v.allow_mainnet:
            errors.append(("venue.allow_mainnet", "only meaningful with venue.mode = 'mainnet'"))
        if live:
            errors.append(("--live", "only for venue.mode = 'mainnet' (this config is 'sim')"))
    else:
        default_rest, default_ws, chains, default_chain = LIGHTER_ENDPOINTS[mode]
        other = "mainnet" if mode == "testnet" else "testnet"
        rest_url = default_rest if rest_url is None else rest_url
        ws_url = default_ws if ws_url is None else ws_url
        for name, url, secure in (
            ("venue.rest_url", rest_url, ("https",)),
            ("venue.ws_url", ws_url, ("wss",)),
        ):
            host = _check_url(name, url, secure, errors)
            if host is None:
                continue
            if host.strip("[]") in LOOPBACK_HOSTS:
                errors.append(
                    (
                        name,
                        f"a loopback URL is the simulator's: use venue.mode = 'sim', not {mode!r}",
                    )
                )
            elif other in host:
                errors.append((name, f"a {other} URL with venue.mode = {mode!r}"))
        if chain_id is None:
            chain_id = default_chain
        elif chain_id not in chains:
            what = _CHAIN_NAMES.get(chain_id, "an unknown")
            want = " or ".join(str(c) for c in sorted(chains))
            errors.append(
                ("venue.chain_id", f"{mode} signs with chain id {want}, got {chain_id} ({what})")
            )
        if account_index is None:
            errors.append(("venue.account_index", f"required in {mode} mode"))
        if api_key_index is None:
            errors.append(("venue.api_key_index", f"required in {mode} mode"))
        if not env.get(ENV_PRIVATE_KEY) and key_file is None:
            errors.append(
                (
                    "venue.key_file",
                    f"{mode} needs an API private key: set {ENV_PRIVATE_KEY} or venue.key_file",
                )
            )
        if mode == "mainnet":
            if not v.allow_mainnet:
                errors.append(
                    (
                        "venue.allow_mainnet",
                        "mainnet needs allow_mainnet = true in the config and the --live flag",
                    )
                )
            if not live:
                errors.append(
                    (
                        "--live",
                        "mainnet needs the --live flag as well as venue.allow_mainnet = true",
                    )
                )
        else:
            if v.allow_mainnet:
                errors.append(
                    ("venue.allow_mainnet", "only meaningful with venue.mode = 'mainnet'")
                )
            if live:
                errors.append(
                    ("--live", f"only for venue.mode = 'mainnet' (this config is {mode!r})")
                )
    if len(errors) != n_before:
        return None
    return dataclasses.replace(
        v,
        rest_url=rest_url,
        ws_url=ws_url,
        chain_id=chain_id,
        account_index=account_index,
        api_key_index=api_key_index,
        state_dir=state_dir,
        key_file=key_file,
        private_key=key,
        live=live,
        ws_order_frames=ws_order_frames,
        tier=tier,
    )


def _check_market(cfg: Config, errors: list[tuple[str, str]]) -> None:
    m = cfg.market
    if m.symbol is None and m.market_id is None:
        errors.append(("market", "set market.symbol or market.market_id (or both)"))
    if m.symbol is not None and not _SYMBOL_RE.fullmatch(m.symbol):
        errors.append(("market.symbol", f"not a market symbol: {_show(m.symbol)}"))
    if m.market_id == _NIL_MARKET:
        errors.append(("market.market_id", "255 means 'all markets' to the venue; name one market"))


def _check_strategy(cfg: Config, errors: list[tuple[str, str]]) -> None:
    risk = cfg.risk
    mm = cfg.strategy.market_making
    p = "strategy.market_making"
    if (
        mm.price_floor_ticks
        and mm.price_ceiling_ticks
        and (mm.price_floor_ticks >= mm.price_ceiling_ticks)
    ):
        errors.append(
            (
                f"{p}.price_floor_ticks",
                f"must be below price_ceiling_ticks ({mm.price_ceiling_ticks})",
            )
        )
    if mm.max_order_age_s >= mm.order_expiry_s:
        errors.append(
            (
                f"{p}.max_order_age_s",
                f"must be below order_expiry_s ({mm.order_expiry_s}) so quotes are "
                "refreshed before they expire",
            )
        )
    last = mm.order_amount_lots + (mm.levels - 1) * mm.amount_step_lots
    if last < 1:
        errors.append(
            (
                f"{p}.amount_step_lots",
                f"level {mm.levels - 1} would have size {last} lots (must be >= 1)",
            )
        )
    tl = cfg.strategy.trend_ladder
    t = "strategy.trend_ladder"
    if tl.ema_fast_periods >= tl.ema_slow_periods:
        errors.append(
            (f"{t}.ema_fast_periods", f"must be below ema_slow_periods ({tl.ema_slow_periods})")
        )
    # Rules tying the selected strategy to the risk limits.
    if cfg.strategy.name == "market_making":
        if mm.order_amount_lots > risk.max_position_lots:
            errors.append(
                (
                    f"{p}.order_amount_lots",
                    f"above risk.max_position_lots ({risk.max_position_lots})",
                )
            )
        if abs(mm.inventory_target_lots) > risk.max_position_lots:
            errors.append(
                (
                    f"{p}.inventory_target_lots",
                    f"|target| above risk.max_position_lots ({risk.max_position_lots})",
                )
            )
        if risk.max_open_orders < 2 * mm.levels:
            errors.append(
                (
                    "risk.max_open_orders",
                    f"below 2 x {p}.levels ({2 * mm.levels}): the ladder would be denied",
                )
            )
    else:
        if tl.size_lots > risk.max_position_lots:
            errors.append(
                (f"{t}.size_lots", f"above risk.max_position_lots ({risk.max_position_lots})")
            )
        if risk.max_open_orders < 2 * tl.levels:
            errors.append(
                (
                    "risk.max_open_orders",
                    f"below 2 x {t}.levels ({2 * tl.levels}): entries plus "
                    "take-profits would be denied",
                )
            )
