"""How the leaderboard shows metrics: direction hints. (The settings live in competition.config.)"""

from __future__ import annotations


# Metrics where a smaller value is better; every other metric is "higher is better".
LOWER_IS_BETTER_SUFFIXES = ("fid", "tv_distance", "near_copy_fraction")


# Metrics with a target rather than a direction (shown as such; sorted ascending).
TARGETS = {"density": "≈ 1", "digits_present": "= 10"}


def lower_is_better(metric: str) -> bool:
    return metric.rsplit(".", 1)[-1] in LOWER_IS_BETTER_SUFFIXES


def direction_label(metric: str) -> str:
    """The header hint: ↓ (lower is better), ↑ (higher is better) or the target value."""
    suffix = metric.rsplit(".", 1)[-1]
    return TARGETS.get(suffix, "↓" if lower_is_better(metric) else "↑")
