"""Competition configuration, read from a TOML file (documented in leaderboard/README.md)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

# Metrics where a smaller value is better; every other metric is "higher is better".
LOWER_IS_BETTER_SUFFIXES = ("fid", "tv_distance", "near_copy_fraction")
DEFAULT_METRICS = ["mnist.fid", "mnist.precision", "mnist.recall", "mnist.density", "mnist.coverage",
                   "class_coverage.digits_present", "class_coverage.tv_distance",
                   "memorisation.near_copy_fraction"]


# Metrics with a target rather than a direction (shown as such; sorted ascending).
TARGETS = {"density": "≈ 1", "digits_present": "= 10"}


def lower_is_better(metric: str) -> bool:
    return metric.rsplit(".", 1)[-1] in LOWER_IS_BETTER_SUFFIXES


def direction_label(metric: str) -> str:
    """The header hint: ↓ (lower is better), ↑ (higher is better) or the target value."""
    suffix = metric.rsplit(".", 1)[-1]
    return TARGETS.get(suffix, "↓" if lower_is_better(metric) else "↑")


@dataclass
class CompetitionConfig:
    title: str = "MNIST GAN competition"
    rank_by: str = "mnist.fid"
    selection: str = "best"  # best | latest run of each team
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS))
    decimals: dict[str, int] = field(default_factory=dict)
    default_decimals: int = 3
    deadline: datetime | None = None  # runs created after it are shown but not ranked
    baselines: list[str] = field(default_factory=list)  # names labelled as reference rows

    def __post_init__(self) -> None:
        if self.selection not in ("best", "latest"):
            raise ValueError(f"selection must be 'best' or 'latest', not {self.selection!r}")
        if self.rank_by not in self.metrics:
            self.metrics.insert(0, self.rank_by)
        if isinstance(self.deadline, str):
            self.deadline = datetime.fromisoformat(self.deadline)

    def decimals_for(self, metric: str) -> int:
        return self.decimals.get(metric, self.default_decimals)

    @classmethod
    def load(cls, path: str | Path | None) -> "CompetitionConfig":
        if path is None:
            return cls()
        data = tomllib.loads(Path(path).read_text())
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown setting(s) {unknown}; known: {sorted(known)}")
        return cls(**data)
