"""Where settings that are folders come from: an explicit value, else an environment variable."""

from __future__ import annotations

import os
from pathlib import Path


def resolve_path(value: str | os.PathLike | None, env_var: str, default: Path) -> Path:
    """`value` if given, else `$env_var` if set and non-empty, else `default` (user-expanded)."""
    if value is not None:
        return Path(value).expanduser()
    if os.environ.get(env_var):
        return Path(os.environ[env_var]).expanduser()
    return default
