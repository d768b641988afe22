"""mmfast's configuration: schema (typed frozen dataclasses), strict loading, shipped examples.

``load_config(path, live=...)`` returns a validated ``Config`` or raises ``ConfigError`` naming
every bad key path, before any network I/O. Examples: ``sim.toml``, ``testnet.toml``,
``mainnet.toml`` in this package (``example_path(mode)``). Reference: docs/config.md.
"""

from mmfast.conf.load import (
    ENV_GUARD_KEY,
    ENV_KEY_FILE,
    ENV_PRIVATE_KEY,
    LIGHTER_ENDPOINTS,
    SECRET_ENV_VARS,
    example_path,
    load_config,
    parse_config,
    read_config_toml,
    read_key_file,
)
from mmfast.conf.schema import (
    AvellanedaStoikovConfig,
    Config,
    ConfigError,
    GuardConfig,
    KillSwitchConfig,
    MarketConfig,
    MarketMakingConfig,
    RiskConfig,
    RunConfig,
    Secret,
    StrategyConfig,
    TrendLadderConfig,
    VenueConfig,
)

__all__ = [
    "ENV_GUARD_KEY",
    "ENV_KEY_FILE",
    "ENV_PRIVATE_KEY",
    "LIGHTER_ENDPOINTS",
    "SECRET_ENV_VARS",
    "AvellanedaStoikovConfig",
    "Config",
    "ConfigError",
    "GuardConfig",
    "KillSwitchConfig",
    "MarketConfig",
    "MarketMakingConfig",
    "RiskConfig",
    "RunConfig",
    "Secret",
    "StrategyConfig",
    "TrendLadderConfig",
    "VenueConfig",
    "example_path",
    "load_config",
    "parse_config",
    "read_config_toml",
    "read_key_file",
]
