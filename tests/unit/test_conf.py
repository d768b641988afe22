"""mmfast.conf: the shipped examples load; a table of bad configs each fails naming its key."""

from __future__ import annotations

import copy
import dataclasses
import os
import pickle
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mmfast.conf import (
    ENV_GUARD_KEY,
    ENV_KEY_FILE,
    ENV_PRIVATE_KEY,
    Config,
    ConfigError,
    example_path,
    load_config,
    parse_config,
    read_key_file,
)
from mmfast.conf.schema import MAX_LOTS
from mmfast.sim.config import DEFAULT_CHAIN_ID

# A canary key: any trace of it in a message or repr is a leak.
CANARY = "c0ffee" + "5a" * 37
assert len(CANARY) == 80
GUARD_CANARY = "beef00" + "6b" * 37
KEY_ENV = {ENV_PRIVATE_KEY: CANARY, ENV_GUARD_KEY: GUARD_CANARY}


def example(mode: str) -> dict[str, Any]:
    with example_path(mode).open("rb") as fh:
        return tomllib.load(fh)


def sim() -> dict[str, Any]:
    return example("sim")


def tn() -> dict[str, Any]:
    return example("testnet")


def mainnet() -> dict[str, Any]:
    d = example("mainnet")
    del d["venue"]["key_file"]  # the tests give the key through the environment
    return d


def setp(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Mutation: set ``path`` (dotted) to ``value``, creating tables on the way."""

    def apply(d: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        for p in parents:
            d = d.setdefault(p, {})
        d[leaf] = value

    return apply


def delp(path: str) -> Callable[[dict[str, Any]], None]:
    def apply(d: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        for p in parents:
            d = d[p]
        del d[leaf]

    return apply


def both(*fs: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def apply(d: dict[str, Any]) -> None:
        for f in fs:
            f(d)

    return apply


MM = "strategy.market_making"
TL = "strategy.trend_ladder"
AS = f"{MM}.avellaneda_stoikov"
KS = "risk.kill_switch"
NAN, INF = float("nan"), float("inf")

# (id, base, mutation, env, live, expected key path)
BAD: list[
    tuple[
        str,
        Callable[[], dict[str, Any]],
        Callable[[dict[str, Any]], None],
        dict[str, str],
        bool,
        str,
    ]
] = [
    # unknown keys, at every level
    ("unknown-top", sim, setp("extra", 1), {}, False, "extra"),
    ("unknown-venue", sim, setp("venue.modee", "sim"), {}, False, "venue.modee"),
    ("bad-tier", sim, setp("venue.tier", "gold"), {}, False, "venue.tier"),
    ("tier-not-str", tn, setp("venue.tier", 2), KEY_ENV, False, "venue.tier"),
    (
        "quota-span-zero",
        sim,
        setp("venue.volume_quota_span", 0),
        {},
        False,
        "venue.volume_quota_span",
    ),
    (
        "quota-low-negative",
        sim,
        setp("venue.volume_quota_low", -1),
        {},
        False,
        "venue.volume_quota_low",
    ),
    ("unknown-mm", sim, setp(f"{MM}.level", 3), {}, False, f"{MM}.level"),
    ("unknown-as", sim, setp(f"{AS}.gama", 0.1), {}, False, f"{AS}.gama"),
    ("unknown-ks", sim, setp(f"{KS}.max_loss", 1.0), {}, False, f"{KS}.max_loss"),
    ("unknown-table", sim, setp("strategy.grid.levels", 1), {}, False, "strategy.grid"),
    ("key-in-file", tn, setp("venue.private_key", CANARY), {}, False, "venue.private_key"),
    ("secret-in-file", sim, setp("venue.api_secret", CANARY), {}, False, "venue.api_secret"),
    ("live-in-file", mainnet, setp("venue.live", True), KEY_ENV, True, "venue.live"),
    # wrong types
    ("levels-str", sim, setp(f"{MM}.levels", "3"), {}, False, f"{MM}.levels"),
    ("levels-float", sim, setp(f"{MM}.levels", 3.0), {}, False, f"{MM}.levels"),
    ("levels-bool", sim, setp(f"{MM}.levels", True), {}, False, f"{MM}.levels"),
    ("gamma-str", sim, setp(f"{AS}.gamma", "0.1"), {}, False, f"{AS}.gamma"),
    ("gamma-bool", sim, setp(f"{AS}.gamma", False), {}, False, f"{AS}.gamma"),
    ("log-json-int", sim, setp("run.log_json", 1), {}, False, "run.log_json"),
    ("mode-int", sim, setp("venue.mode", 1), {}, False, "venue.mode"),
    ("venue-not-table", sim, setp("venue", "sim"), {}, False, "venue"),
    ("url-array", sim, setp("venue.rest_url", ["http://127.0.0.1:1"]), {}, False, "venue.rest_url"),
    ("symbol-int", sim, setp("market.symbol", 1), {}, False, "market.symbol"),
    # NaN and inf
    ("gamma-nan", sim, setp(f"{AS}.gamma", NAN), {}, False, f"{AS}.gamma"),
    ("gamma-inf", sim, setp(f"{AS}.gamma", INF), {}, False, f"{AS}.gamma"),
    ("age-nan", sim, setp(f"{MM}.max_order_age_s", NAN), {}, False, f"{MM}.max_order_age_s"),
    (
        "drawdown-inf",
        sim,
        setp(f"{KS}.max_drawdown_usdc", INF),
        {},
        False,
        f"{KS}.max_drawdown_usdc",
    ),
    (
        "drawdown-neg-inf",
        sim,
        setp(f"{KS}.max_drawdown_usdc", -INF),
        {},
        False,
        f"{KS}.max_drawdown_usdc",
    ),
    ("headroom-nan", sim, setp("risk.margin_headroom", NAN), {}, False, "risk.margin_headroom"),
    # out of range
    ("spread-neg", sim, setp(f"{MM}.bid_spread_ticks", -1), {}, False, f"{MM}.bid_spread_ticks"),
    (
        "ask-spread-neg",
        sim,
        setp(f"{MM}.ask_spread_ticks", -5),
        {},
        False,
        f"{MM}.ask_spread_ticks",
    ),
    ("levels-0", sim, setp(f"{MM}.levels", 0), {}, False, f"{MM}.levels"),
    ("levels-33", sim, setp(f"{MM}.levels", 33), {}, False, f"{MM}.levels"),
    ("amount-0", sim, setp(f"{MM}.order_amount_lots", 0), {}, False, f"{MM}.order_amount_lots"),
    (
        "level-spread-0",
        sim,
        setp(f"{MM}.level_spread_ticks", 0),
        {},
        False,
        f"{MM}.level_spread_ticks",
    ),
    ("min-spread-0", sim, setp(f"{MM}.min_spread_ticks", 0), {}, False, f"{MM}.min_spread_ticks"),
    ("age-0", sim, setp(f"{MM}.max_order_age_s", 0.0), {}, False, f"{MM}.max_order_age_s"),
    ("expiry-short", sim, setp(f"{MM}.order_expiry_s", 299), {}, False, f"{MM}.order_expiry_s"),
    (
        "expiry-long",
        sim,
        setp(f"{MM}.order_expiry_s", 31 * 86400),
        {},
        False,
        f"{MM}.order_expiry_s",
    ),
    ("gamma-0", sim, setp(f"{AS}.gamma", 0.0), {}, False, f"{AS}.gamma"),
    ("sigma-neg", sim, setp(f"{AS}.sigma", -0.5), {}, False, f"{AS}.sigma"),
    ("kappa-0", sim, setp(f"{AS}.kappa", 0), {}, False, f"{AS}.kappa"),
    ("max-position-0", sim, setp("risk.max_position_lots", 0), {}, False, "risk.max_position_lots"),
    (
        "max-position-huge",
        sim,
        setp("risk.max_position_lots", MAX_LOTS + 1),
        {},
        False,
        "risk.max_position_lots",
    ),
    (
        "max-position-neg",
        sim,
        setp("risk.max_position_lots", -100),
        {},
        False,
        "risk.max_position_lots",
    ),
    (
        "notional-0",
        sim,
        setp("risk.max_order_notional_usdc", 0),
        {},
        False,
        "risk.max_order_notional_usdc",
    ),
    ("band-0", sim, setp("risk.price_band_bps", 0), {}, False, "risk.price_band_bps"),
    ("band-wide", sim, setp("risk.price_band_bps", 5001), {}, False, "risk.price_band_bps"),
    ("open-orders-0", sim, setp("risk.max_open_orders", 0), {}, False, "risk.max_open_orders"),
    ("rate-cap-0", sim, setp("risk.order_rate_cap", 0), {}, False, "risk.order_rate_cap"),
    ("headroom-1", sim, setp("risk.margin_headroom", 1.0), {}, False, "risk.margin_headroom"),
    ("reject-rate-0", sim, setp(f"{KS}.max_reject_rate", 0.0), {}, False, f"{KS}.max_reject_rate"),
    ("reject-rate-2", sim, setp(f"{KS}.max_reject_rate", 2), {}, False, f"{KS}.max_reject_rate"),
    (
        "drawdown-neg",
        sim,
        setp(f"{KS}.max_drawdown_usdc", -10.0),
        {},
        False,
        f"{KS}.max_drawdown_usdc",
    ),
    ("fills-0", sim, setp(f"{KS}.max_fills_per_min", 0), {}, False, f"{KS}.max_fills_per_min"),
    ("action-bad", sim, setp(f"{KS}.action", "panic"), {}, False, f"{KS}.action"),
    ("tick-0", sim, setp("run.tick_interval_ms", 0), {}, False, "run.tick_interval_ms"),
    ("log-level-bad", sim, setp("run.log_level", "verbose"), {}, False, "run.log_level"),
    ("mode-bad", sim, setp("venue.mode", "prod"), {}, False, "venue.mode"),
    (
        "refprice-bad",
        sim,
        setp(f"{MM}.reference_price", "vwap"),
        {},
        False,
        f"{MM}.reference_price",
    ),
    (
        "api-key-index-255",
        tn,
        setp("venue.api_key_index", 255),
        KEY_ENV,
        False,
        "venue.api_key_index",
    ),
    (
        "account-index-system",
        tn,
        setp("venue.account_index", 2),
        KEY_ENV,
        False,
        "venue.account_index",
    ),
    ("tl-levels-0", sim, setp(f"{TL}.levels", 0), {}, False, f"{TL}.levels"),
    ("tl-tp-0", sim, setp(f"{TL}.take_profit_ticks", 0), {}, False, f"{TL}.take_profit_ticks"),
    ("market-id-neg", sim, setp("market.market_id", -1), {}, False, "market.market_id"),
    ("empty-symbol", sim, setp("market.symbol", ""), {}, False, "market.symbol"),
    # required keys (an unbounded position is not a default)
    ("no-max-position", sim, delp("risk.max_position_lots"), {}, False, "risk.max_position_lots"),
    (
        "no-notional",
        sim,
        delp("risk.max_order_notional_usdc"),
        {},
        False,
        "risk.max_order_notional_usdc",
    ),
    ("no-drawdown", sim, delp(f"{KS}.max_drawdown_usdc"), {}, False, f"{KS}.max_drawdown_usdc"),
    ("no-risk", sim, delp("risk"), {}, False, "risk.max_position_lots"),
    ("no-market", sim, delp("market"), {}, False, "market"),
    # cross-field rules
    ("testnet-mainnet-chain", tn, setp("venue.chain_id", 304), KEY_ENV, False, "venue.chain_id"),
    (
        "mainnet-testnet-chain",
        mainnet,
        setp("venue.chain_id", 300),
        KEY_ENV,
        True,
        "venue.chain_id",
    ),
    (
        "testnet-mainnet-url",
        tn,
        setp("venue.rest_url", "https://mainnet.zklighter.elliot.ai"),
        KEY_ENV,
        False,
        "venue.rest_url",
    ),
    (
        "mainnet-testnet-ws",
        mainnet,
        setp("venue.ws_url", "wss://testnet.zklighter.elliot.ai/stream"),
        KEY_ENV,
        True,
        "venue.ws_url",
    ),
    (
        "testnet-plain-http",
        tn,
        setp("venue.rest_url", "http://testnet.zklighter.elliot.ai"),
        KEY_ENV,
        False,
        "venue.rest_url",
    ),
    (
        "testnet-loopback",
        tn,
        setp("venue.rest_url", "https://127.0.0.1:8080"),
        KEY_ENV,
        False,
        "venue.rest_url",
    ),
    (
        "testnet-url-creds",
        tn,
        setp("venue.rest_url", "https://u:p@testnet.zklighter.elliot.ai"),
        KEY_ENV,
        False,
        "venue.rest_url",
    ),
    ("sim-mainnet-chain", sim, setp("venue.chain_id", 304), {}, False, "venue.chain_id"),
    ("sim-testnet-chain", sim, setp("venue.chain_id", 300), {}, False, "venue.chain_id"),
    ("sim-real-key", sim, lambda d: None, KEY_ENV, False, ENV_PRIVATE_KEY),
    ("sim-key-file", sim, setp("venue.key_file", "/etc/mmfast.key"), {}, False, "venue.key_file"),
    ("sim-env-key-file", sim, lambda d: None, {ENV_KEY_FILE: "/etc/k"}, False, ENV_KEY_FILE),
    (
        "sim-remote-url",
        sim,
        both(
            setp("venue.rest_url", "http://10.0.0.1:8000"),
            setp("venue.ws_url", "ws://127.0.0.1:8000/stream"),
        ),
        {},
        False,
        "venue.rest_url",
    ),
    (
        "sim-one-url",
        sim,
        setp("venue.rest_url", "http://127.0.0.1:8000"),
        {},
        False,
        "venue.ws_url",
    ),
    (
        "sim-ws-scheme",
        sim,
        both(
            setp("venue.rest_url", "http://127.0.0.1:8000"),
            setp("venue.ws_url", "http://127.0.0.1:8000/stream"),
        ),
        {},
        False,
        "venue.ws_url",
    ),
    ("sim-allow-mainnet", sim, setp("venue.allow_mainnet", True), {}, False, "venue.allow_mainnet"),
    ("sim-live", sim, lambda d: None, {}, True, "--live"),
    ("testnet-live", tn, lambda d: None, KEY_ENV, True, "--live"),
    ("mainnet-no-flag", mainnet, lambda d: None, KEY_ENV, False, "--live"),
    (
        "mainnet-no-opt-in",
        mainnet,
        setp("venue.allow_mainnet", False),
        KEY_ENV,
        True,
        "venue.allow_mainnet",
    ),
    (
        "mainnet-no-opt-in-key",
        mainnet,
        delp("venue.allow_mainnet"),
        KEY_ENV,
        True,
        "venue.allow_mainnet",
    ),
    ("testnet-no-key", tn, lambda d: None, {}, False, "venue.key_file"),
    ("testnet-bad-key", tn, lambda d: None, {ENV_PRIVATE_KEY: "0x1234"}, False, ENV_PRIVATE_KEY),
    ("testnet-no-account", tn, delp("venue.account_index"), KEY_ENV, False, "venue.account_index"),
    ("testnet-no-api-key", tn, delp("venue.api_key_index"), KEY_ENV, False, "venue.api_key_index"),
    ("relative-state-dir", sim, setp("venue.state_dir", "state"), {}, False, "venue.state_dir"),
    ("relative-key-file", tn, setp("venue.key_file", "key.txt"), {}, False, "venue.key_file"),
    ("market-nil", sim, setp("market.market_id", 255), {}, False, "market.market_id"),
    ("bad-symbol", sim, setp("market.symbol", "ETH USD"), {}, False, "market.symbol"),
    (
        "floor-above-ceiling",
        sim,
        both(setp(f"{MM}.price_floor_ticks", 500), setp(f"{MM}.price_ceiling_ticks", 400)),
        {},
        False,
        f"{MM}.price_floor_ticks",
    ),
    (
        "age-above-expiry",
        sim,
        setp(f"{MM}.max_order_age_s", 900.0),
        {},
        False,
        f"{MM}.max_order_age_s",
    ),
    (
        "step-shrinks-to-0",
        sim,
        setp(f"{MM}.amount_step_lots", -50),
        {},
        False,
        f"{MM}.amount_step_lots",
    ),
    (
        "amount-above-position",
        sim,
        setp(f"{MM}.order_amount_lots", 2001),
        {},
        False,
        f"{MM}.order_amount_lots",
    ),
    (
        "target-above-position",
        sim,
        setp(f"{MM}.inventory_target_lots", -2001),
        {},
        False,
        f"{MM}.inventory_target_lots",
    ),
    (
        "open-orders-below-ladder",
        sim,
        setp("risk.max_open_orders", 5),
        {},
        False,
        "risk.max_open_orders",
    ),
    (
        "ema-fast-not-below-slow",
        sim,
        setp(f"{TL}.ema_fast_periods", 48),
        {},
        False,
        f"{TL}.ema_fast_periods",
    ),
    (
        "tl-size-above-position",
        sim,
        both(setp("strategy.name", "trend_ladder"), setp(f"{TL}.size_lots", 5000)),
        {},
        False,
        f"{TL}.size_lots",
    ),
    (
        "maker-only-low-index",
        tn,
        both(setp("venue.maker_only", True), setp("venue.api_key_index", 3)),
        KEY_ENV,
        False,
        "venue.maker_only",
    ),
    (
        "guard-maker-only-low-index",
        tn,
        both(setp("guard.maker_only", True), setp("guard.api_key_index", 2)),
        KEY_ENV,
        False,
        "guard.maker_only",
    ),
    ("maker-only-not-bool", sim, setp("venue.maker_only", 1), {}, False, "venue.maker_only"),
    (
        "skip-nonce-not-bool",
        sim,
        setp("venue.skip_nonce_recovery", "yes"),
        {},
        False,
        "venue.skip_nonce_recovery",
    ),
]


def test_maker_only_and_skip_nonce_default_off_and_load(tmp_path: Path) -> None:
    env = {**KEY_ENV, "HOME": str(tmp_path)}
    cfg = parse_config(tn(), env=env, read_key=False)
    assert not cfg.venue.maker_only and not cfg.venue.skip_nonce_recovery
    assert not cfg.guard.maker_only
    d = tn()
    setp("venue.maker_only", True)(d)
    setp("guard.maker_only", True)(d)
    setp("venue.skip_nonce_recovery", True)(d)
    cfg = parse_config(d, env=env, read_key=False)
    assert cfg.venue.maker_only and cfg.guard.maker_only and cfg.venue.skip_nonce_recovery
    d = sim()
    setp("venue.maker_only", True)(d)
    setp("venue.api_key_index", 3)(d)  # the simulator takes any index
    assert parse_config(d, env={"HOME": str(tmp_path)}).venue.maker_only


def test_bad_table_is_large_and_ids_unique() -> None:
    ids = [row[0] for row in BAD]
    assert len(ids) >= 50
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("base", "mutate", "env", "live", "key"), [row[1:] for row in BAD], ids=[row[0] for row in BAD]
)
def test_bad_config_fails_naming_key(
    base: Callable[[], dict[str, Any]],
    mutate: Callable[[dict[str, Any]], None],
    env: dict[str, str],
    live: bool,
    key: str,
    tmp_path: Path,
) -> None:
    data = base()
    mutate(data)
    env = {"HOME": str(tmp_path), **env}
    with pytest.raises(ConfigError) as info:
        parse_config(data, live=live, env=env, read_key=False)
    err = info.value
    assert key in [k for k, _ in err.errors], err.errors
    assert key in str(err)
    assert CANARY not in str(err) and CANARY[:16] not in str(err)
    # The same config as TOML text on disk fails the same way through load_config.
    if not any(isinstance(v, float) and v != v for v in _leaves(data)):
        path = tmp_path / "bad.toml"
        path.write_text(_to_toml(data))
        with pytest.raises(ConfigError) as info2:
            load_config(path, live=live, env=env, read_key=False)
        assert key in [k for k, _ in info2.value.errors]
        assert str(path) in str(info2.value)


def _leaves(d: Any) -> list[Any]:
    if isinstance(d, dict):
        return [x for v in d.values() for x in _leaves(v)]
    return [d]


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v == float("inf"):
            return "inf"
        if v == float("-inf"):
            return "-inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(v)


def _to_toml(d: dict[str, Any], prefix: str = "") -> str:
    """A small TOML writer for the tests (tables and scalars)."""
    scalars = [f"{k} = {_toml_value(v)}" for k, v in d.items() if not isinstance(v, dict)]
    out = ""
    if scalars:
        out += (f"[{prefix}]\n" if prefix else "") + "\n".join(scalars) + "\n\n"
    for k, v in d.items():
        if isinstance(v, dict):
            out += _to_toml(v, f"{prefix}.{k}" if prefix else k)
    return out


def test_writer_round_trips_examples() -> None:
    for mode in ("sim", "testnet", "mainnet"):
        d = example(mode)
        assert tomllib.loads(_to_toml(d)) == d


# --- the examples -------------------------------------------------------------------------


def test_sim_example_is_the_default(tmp_path: Path) -> None:
    cfg = load_config(env={"HOME": str(tmp_path)})
    assert cfg == load_config(example_path("sim"), env={"HOME": str(tmp_path)})
    v = cfg.venue
    assert (v.mode, v.chain_id, v.rest_url, v.ws_url, v.private_key, v.live) == (
        "sim",
        DEFAULT_CHAIN_ID,
        None,
        None,
        None,
        False,
    )
    assert v.account_index is not None and v.api_key_index is not None
    assert v.state_dir == tmp_path / ".local" / "state" / "mmfast"
    assert cfg.run.journal_path == v.state_dir / "journal.jsonl"
    assert cfg.strategy.name == "market_making"
    assert cfg.strategy.market_making.levels == 3
    assert cfg.risk.kill_switch.action == "pause"


def test_testnet_example_with_env_key(tmp_path: Path) -> None:
    cfg = load_config(example_path("testnet"), env={**KEY_ENV, "HOME": str(tmp_path)})
    v = cfg.venue
    assert v.mode == "testnet" and v.chain_id == 300
    assert v.rest_url == "https://testnet.zklighter.elliot.ai"
    assert v.ws_url == "wss://testnet.zklighter.elliot.ai/stream"
    assert v.private_key is not None and v.private_key.reveal() == CANARY
    assert CANARY not in repr(cfg) and CANARY not in str(cfg)
    assert "[REDACTED]" in repr(cfg)


def test_ws_order_frames_default_per_mode(tmp_path: Path) -> None:
    """Sim keeps several order frames awaiting acks; testnet/mainnet one unless configured."""
    home = {"HOME": str(tmp_path)}
    assert load_config(example_path("sim"), env=home).venue.ws_order_frames == 4
    testnet = load_config(example_path("testnet"), env={**KEY_ENV, **home})
    assert testnet.venue.ws_order_frames == 1
    doc = sim()
    doc["venue"]["ws_order_frames"] = 2
    assert parse_config(doc, env=home).venue.ws_order_frames == 2
    doc["venue"]["ws_order_frames"] = 0
    with pytest.raises(ConfigError):
        parse_config(doc, env=home)


def test_tier_default_per_mode(tmp_path: Path) -> None:
    """Sim keeps the premium tier it always had; a real account is standard unless told."""
    home = {"HOME": str(tmp_path)}
    assert load_config(example_path("sim"), env=home).venue.tier == "premium"
    testnet = load_config(example_path("testnet"), env={**KEY_ENV, **home})
    assert testnet.venue.tier == "standard"
    for tier in ("standard", "premium", "plus", "builder"):
        doc = sim()
        doc["venue"]["tier"] = tier
        assert parse_config(doc, env=home).venue.tier == tier


def test_mainnet_example_needs_live_and_opt_in(tmp_path: Path) -> None:
    env = {**KEY_ENV, "HOME": str(tmp_path)}
    path = example_path("mainnet")
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env, read_key=False)
    assert info.value.key == "--live"
    cfg = load_config(path, live=True, env=env, read_key=False)
    assert cfg.venue.mode == "mainnet" and cfg.venue.chain_id == 304 and cfg.venue.live
    assert cfg.venue.allow_mainnet
    # The example names a key file under ~: expanded against HOME.
    assert cfg.venue.key_file == tmp_path / ".config" / "mmfast" / "mainnet.key"


def test_mainnet_key_file_read_and_checked(tmp_path: Path) -> None:
    key = tmp_path / "mainnet.key"
    key.write_text("0x" + CANARY + "\n")
    key.chmod(0o600)
    gkey = tmp_path / "guard.key"
    gkey.write_text(GUARD_CANARY)
    gkey.chmod(0o600)
    data = example("mainnet")
    data["venue"]["key_file"] = str(key)
    data["guard"]["key_file"] = str(gkey)
    cfg = parse_config(data, live=True, env={})
    assert cfg.venue.private_key is not None and cfg.venue.private_key.reveal() == CANARY
    assert cfg.guard.private_key is not None and cfg.guard.private_key.reveal() == GUARD_CANARY
    gkey.chmod(0o644)
    with pytest.raises(ConfigError) as ginfo:
        parse_config(data, live=True, env={})
    assert ginfo.value.key == "guard.key_file" and GUARD_CANARY not in str(ginfo.value)
    gkey.chmod(0o600)
    key.chmod(0o644)
    with pytest.raises(ConfigError) as info:
        parse_config(data, live=True, env={})
    assert info.value.key == "venue.key_file" and "0644" in str(info.value)
    assert CANARY not in str(info.value)


def test_env_key_file_overrides_config(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_text(CANARY)
    key.chmod(0o600)
    data = tn()
    data["venue"]["key_file"] = "/nonexistent/key"
    cfg = parse_config(data, env={ENV_KEY_FILE: str(key), ENV_GUARD_KEY: GUARD_CANARY})
    assert cfg.venue.key_file == key
    assert cfg.venue.private_key is not None and cfg.venue.private_key.reveal() == CANARY
    # The environment key wins over any key file.
    other = "ab" * 40
    cfg2 = parse_config(
        data, env={ENV_PRIVATE_KEY: other, ENV_KEY_FILE: str(key), ENV_GUARD_KEY: GUARD_CANARY}
    )
    assert cfg2.venue.private_key is not None and cfg2.venue.private_key.reveal() == other


def test_key_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        read_key_file(tmp_path / "missing")
    assert info.value.key == "venue.key_file"
    bad = tmp_path / "bad"
    bad.write_text("not a key at all")
    bad.chmod(0o600)
    with pytest.raises(ConfigError) as info:
        read_key_file(bad, key_name=ENV_KEY_FILE)
    assert info.value.key == ENV_KEY_FILE
    link = tmp_path / "link"
    good = tmp_path / "good"
    good.write_text(CANARY)
    good.chmod(0o600)
    link.symlink_to(good)
    with pytest.raises(ConfigError):
        read_key_file(link)  # a symlink could point anywhere: refused
    assert read_key_file(good).reveal() == CANARY


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_key_file_owned_by_another_user(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_text(CANARY)
    key.chmod(0o600)
    os.chown(key, 65534, 65534)
    with pytest.raises(ConfigError) as info:
        read_key_file(key)
    assert "owned" in str(info.value)


def test_env_overrides_secrets_only(tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),
        "MMFAST_VENUE_MODE": "mainnet",
        "MMFAST_CHAIN_ID": "304",
        "MMFAST_RISK_MAX_POSITION_LOTS": "999999",
    }
    cfg = parse_config(sim(), env=env)
    assert cfg.venue.mode == "sim" and cfg.venue.chain_id == DEFAULT_CHAIN_ID
    assert cfg.risk.max_position_lots == 2000


def test_xdg_state_home(tmp_path: Path) -> None:
    cfg = parse_config(sim(), env={"XDG_STATE_HOME": str(tmp_path)})
    assert cfg.venue.state_dir == tmp_path / "mmfast"
    d = sim()
    d["run"]["journal_path"] = "runs/j.jsonl"
    d["venue"]["state_dir"] = str(tmp_path / "st")
    cfg = parse_config(d, env={})
    assert cfg.run.journal_path == tmp_path / "st" / "runs" / "j.jsonl"


def test_all_errors_reported_at_once() -> None:
    d = sim()
    d["strategy"]["market_making"]["levels"] = 0
    d["risk"]["price_band_bps"] = -1
    d["run"]["bogus"] = True
    with pytest.raises(ConfigError) as info:
        parse_config(d, env={})
    keys = {k for k, _ in info.value.errors}
    assert {f"{MM}.levels", "risk.price_band_bps", "run.bogus"} <= keys
    assert "3 config errors" in str(info.value)


def test_unknown_key_suggests_the_right_one() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_mut(f"{MM}.bid_spread", 5), env={})
    assert "did you mean 'strategy.market_making.bid_spread_ticks'" in str(info.value)


def _mut(path: str, value: Any) -> dict[str, Any]:
    d = sim()
    setp(path, value)(d)
    return d


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text("[venue\nmode = 'sim'\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(p, env={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml", env={})


def test_minimal_config_defaults(tmp_path: Path) -> None:
    text = """
        [market]
        market_id = 1
        [risk]
        max_position_lots = 100
        max_order_notional_usdc = 100
        [risk.kill_switch]
        max_drawdown_usdc = 10
    """
    cfg = parse_config(text, env={"HOME": str(tmp_path)})
    assert cfg.venue.mode == "sim" and cfg.market.symbol is None and cfg.market.market_id == 1
    assert cfg.risk.kill_switch.max_drawdown_usdc == 10.0  # an integer is a fine float
    assert isinstance(cfg.risk.kill_switch.max_drawdown_usdc, float)
    assert cfg.strategy.market_making == type(cfg.strategy.market_making)()


def test_config_is_frozen_and_secret_safe(tmp_path: Path) -> None:
    cfg = parse_config(tn(), env={**KEY_ENV, "HOME": str(tmp_path)})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.venue.mode = "mainnet"  # type: ignore[misc]
    with pytest.raises(TypeError):
        pickle.dumps(cfg)
    with pytest.raises(TypeError):
        copy.deepcopy(cfg)
    assert CANARY not in f"{cfg}" and CANARY not in repr(cfg.venue)
    assert isinstance(cfg, Config)


def test_error_never_echoes_hex_values() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_mut("market.symbol", CANARY), env={})
    assert info.value.key == "market.symbol"
    assert CANARY[:16] not in str(info.value)


def test_signer_choice(tmp_path: Path) -> None:
    """The native signer by default; the official one on request; nothing else."""
    home = {"HOME": str(tmp_path)}
    doc = sim()
    assert parse_config(doc, env=home).venue.signer == "native"
    doc["venue"]["signer"] = "official"
    assert parse_config(doc, env=home).venue.signer == "official"
    doc["venue"]["signer"] = "go"
    with pytest.raises(ConfigError, match="signer"):
        parse_config(doc, env=home)


# ------------------------------------------------------------------ [guard]
def test_guard_defaults_per_mode(tmp_path: Path) -> None:
    home = {"HOME": str(tmp_path)}
    g = load_config(example_path("sim"), env=home).guard
    assert g.enabled and g.api_key_index is not None and g.private_key is None
    assert g.max_silence_ms == 1500 and g.scheduled_cancel_all
    cfg = load_config(example_path("testnet"), env={**KEY_ENV, **home})
    assert cfg.guard.api_key_index == 5 and cfg.guard.api_key_index != cfg.venue.api_key_index
    assert cfg.guard.private_key is not None and cfg.guard.private_key.reveal() == GUARD_CANARY
    assert GUARD_CANARY not in repr(cfg)


@pytest.mark.parametrize(
    ("change", "env", "names"),
    [
        (lambda d: None, {ENV_PRIVATE_KEY: CANARY}, "MMFAST_GUARD_API_PRIVATE_KEY"),
        (lambda d: d["guard"].pop("api_key_index"), None, "guard.api_key_index"),
        (lambda d: d["guard"].update(api_key_index=4), None, "must differ"),
        (lambda d: d["guard"].update(heartbeat_interval_ms=600), None, "a third of"),
        (lambda d: d["guard"].update(max_silence_ms=50), None, "guard.max_silence_ms"),
        (lambda d: d["guard"].update(private_key="00"), None, "secrets are not read"),
    ],
)
def test_guard_config_errors(tmp_path: Path, change: Any, env: Any, names: str) -> None:
    data = tomllib.loads(example_path("testnet").read_text())
    change(data)
    with pytest.raises(ConfigError) as e:
        parse_config(data, env={**(env if env is not None else KEY_ENV), "HOME": str(tmp_path)})
    assert names in str(e.value)
    assert CANARY not in str(e.value) and GUARD_CANARY not in str(e.value)


def test_guard_off_needs_no_key(tmp_path: Path) -> None:
    data = tomllib.loads(example_path("testnet").read_text())
    data["guard"] = {"enabled": False}
    cfg = parse_config(data, env={ENV_PRIVATE_KEY: CANARY, "HOME": str(tmp_path)})
    assert not cfg.guard.enabled


def test_sim_guard_key_is_made_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sim mode makes its own guard key"):
        load_config(example_path("sim"), env={ENV_GUARD_KEY: GUARD_CANARY, "HOME": str(tmp_path)})


def test_quotes_expire_at_the_venue_minimum_and_are_renewed_before(tmp_path: Path) -> None:
    """market_making's quotes: the venue's 5-minute minimum expiry (+5 s that order entry keeps
    clear of the window's edge) by default and in every shipped example, replaced by the
    planner (max_order_age_s) well before; below the minimum is refused."""
    from mmfast.connector.lighter.orders import MIN_EXPIRY_MS

    home = {"HOME": str(tmp_path)}
    for mode in ("sim", "testnet", "mainnet"):
        env = home if mode == "sim" else {**KEY_ENV, **home}
        cfg = load_config(example_path(mode), env=env, live=mode == "mainnet", read_key=False)
        mm = cfg.strategy.market_making
        assert mm.order_expiry_s * 1000 == MIN_EXPIRY_MS + 5_000, mode
        assert mm.max_order_age_s <= mm.order_expiry_s - 60, mode
    data = tomllib.loads(example_path("sim").read_text())
    data["strategy"]["market_making"]["order_expiry_s"] = 300
    with pytest.raises(ConfigError, match="order_expiry_s"):
        parse_config(data, env=home)
