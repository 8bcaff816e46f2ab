"""Competition rounds: the configuration (`competition.toml`), the roster, and the standing rules."""

from competition.config import CompetitionConfig, ConfigError, Team

__all__ = ["CompetitionConfig", "ConfigError", "Team"]
