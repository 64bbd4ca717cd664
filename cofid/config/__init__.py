"""cofid.toml: typed, validated at load, with an embedded default.

  model — the dataclasses (the embedded default is `Config()`)
  load  — parsing and validation (`load_config`, `parse_config`)
  show  — `effective_config` (secrets masked) and `token_value`
"""

from cofid.config.load import load_config, parse_config, validate
from cofid.config.model import *  # noqa: F403 - the dataclasses are the package's names
from cofid.config.model import Config, ConfigError, TokenConfig
from cofid.config.show import effective_config, mask_url, token_value

__all__ = ["Config", "ConfigError", "TokenConfig", "effective_config", "load_config",
           "mask_url", "parse_config", "token_value", "validate"]
