"""Configuration loading as a user or a tool calls it (``mmfast.conf``): ``load_config`` /
``parse_config`` return a typed, frozen ``Config``; its tables are frozen, keyword-only
dataclasses; ``ConfigError`` carries the key paths; secrets are ``Secret``/``ApiKey``.

Checked by mypy only (``make typecheck``), never run; see tests/typing in CONTRIBUTING.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, assert_type

from mmfast.conf import (
    ENV_PRIVATE_KEY,
    LIGHTER_ENDPOINTS,
    Config,
    ConfigError,
    GuardConfig,
    MarketMakingConfig,
    RiskConfig,
    Secret,
    StrategyConfig,
    VenueConfig,
    example_path,
    load_config,
    parse_config,
    read_config_toml,
    read_key_file,
)
from mmfast.conf.schema import ApiKey, KillSwitchConfig


def loading(env: Mapping[str, str]) -> Config:
    assert_type(example_path("sim"), Path)
    assert_type(load_config(), Config)
    assert_type(load_config("bot.toml", live=True, env=env, read_key=False), Config)
    assert_type(load_config(Path("bot.toml")), Config)
    assert_type(parse_config('[venue]\nmode = "sim"\n', source="inline"), Config)
    path, table = read_config_toml(None)
    assert_type(path, Path)
    assert_type(table, dict[str, Any])
    assert_type(parse_config(table, env={}), Config)
    assert_type(read_key_file("key.txt", key_name="venue.key_file"), ApiKey)
    assert_type(ENV_PRIVATE_KEY, Literal["MMFAST_API_PRIVATE_KEY"])
    assert_type(LIGHTER_ENDPOINTS, Mapping[str, tuple[str, str, frozenset[int], int]])
    try:
        cfg = load_config("bot.toml")
    except ConfigError as exc:
        assert_type(exc.errors, tuple[tuple[str, str], ...])
        assert_type(exc.key, str)
        assert_type(exc.source, str | None)
        err: ValueError = exc
        del err
        raise

    load_config("bot.toml", True)  # type: ignore[call-arg]
    load_config(live="yes")  # type: ignore[arg-type]
    load_config(123)  # type: ignore[arg-type]
    parse_config(b"[venue]")  # type: ignore[arg-type]
    example_path(None)  # type: ignore[arg-type]
    return cfg


def reading(cfg: Config) -> None:
    assert_type(cfg.venue, VenueConfig)
    assert_type(cfg.venue.mode, str)
    assert_type(cfg.venue.rest_url, str | None)
    assert_type(cfg.venue.chain_id, int | None)
    assert_type(cfg.venue.state_dir, Path | None)
    assert_type(cfg.venue.private_key, ApiKey | None)
    assert_type(cfg.market.market_id, int | None)
    assert_type(cfg.strategy, StrategyConfig)
    mm = cfg.strategy.market_making
    assert_type(mm, MarketMakingConfig)
    assert_type(mm.levels, int)
    assert_type(mm.max_order_age_s, float)
    assert_type(mm.avellaneda_stoikov.gamma, float)
    assert_type(cfg.risk, RiskConfig)
    assert_type(cfg.risk.kill_switch, KillSwitchConfig)
    assert_type(cfg.risk.kill_switch.max_drawdown_usdc, float)
    assert_type(cfg.guard, GuardConfig)
    assert_type(cfg.guard.enabled, bool)
    assert_type(cfg.run.journal_path, Path | None)
    key = cfg.venue.private_key
    if key is not None:
        assert_type(key.reveal(), str)
        assert_type(key.raw, bytes)
        as_secret: Secret = key
        del as_secret

    # Frozen tables: a loaded config is never changed in place (dataclasses.replace makes one).
    cfg.venue.mode = "mainnet"  # type: ignore[misc]
    cfg.strategy.market_making.levels = 3  # type: ignore[misc]
    cfg.risk = cfg.risk  # type: ignore[misc]
    # Optional fields are None until narrowed.
    cfg.venue.private_key.reveal()  # type: ignore[union-attr]
    next_id: int = cfg.market.market_id + 1  # type: ignore[operator]
    del next_id


def building() -> None:
    assert_type(VenueConfig(mode="testnet", allow_mainnet=False), VenueConfig)
    assert_type(MarketMakingConfig(levels=2, order_amount_lots=50), MarketMakingConfig)
    assert_type(Secret("token").reveal(), str)

    VenueConfig("testnet")  # type: ignore[call-arg]
    MarketMakingConfig(levels="2")  # type: ignore[arg-type]
    Secret(b"token")  # type: ignore[arg-type]
    KillSwitchConfig(max_drawdown_usdc=None)  # type: ignore[arg-type]
