"""The metric registry and catalogue: what each metric computes, and what each of its values means.

Two scopes:
- "features": computed in every feature space (mnist, inception, vgg16) from a FeatureContext;
  result names are prefixed with the space, e.g. `mnist.fid`.
- "samples": computed once from the images themselves (SampleContext), e.g. `memorisation.*`.

Every value a metric returns is described once here (label, direction, format, unit, a one-line
definition, the paper): the CLI tables, the leaderboard, the baselines report and
docs/metrics.md all read this catalogue. Registrations live in one block, in
evaluator/metrics/__init__.py, through the checked `register_metric`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Scope = Literal["features", "samples"]
Direction = Literal["lower", "higher", "target", "none"]
MetricValues = dict[str, Any]
NAME = re.compile(r"[a-z][a-z0-9_]*")
# Feature spaces as pages name them (the extractors themselves live in evaluator.features).
SPACE_LABELS = {"mnist": "MNIST", "inception": "Inception", "vgg16": "VGG-16"}


@dataclass(frozen=True)
class Value:
    """One number a metric reports."""

    key: str  # the name within its metric: `fid`, `near_copy_fraction`
    label: str  # for people: "FID", "Near-copies"
    direction: Direction
    format: str  # e.g. "{:.3f}"
    definition: str  # one line
    reference: str = ""  # a link to the paper or to this project's definition
    unit: str = ""  # e.g. "share of samples"
    target: float | None = None  # for direction "target": the ideal value
    ranked: bool = False  # fit to rank teams by (gets bootstrap intervals)

    def arrow(self) -> str:
        """↓, ↑, ≈ target, or nothing: the header hint."""
        if self.direction == "target":
            return f"≈ {self.target:g}"
        return {"lower": "↓", "higher": "↑"}.get(self.direction, "")

    def formatted(self, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "yes" if value else "no"
        return self.format.format(value)


@dataclass(frozen=True)
class Metric:
    name: str
    scope: Scope
    compute: Callable[[Any], MetricValues]
    description: str
    values: tuple[Value, ...]


METRICS: dict[str, Metric] = {}


def register_metric(name: str, scope: Scope, compute: Callable[[Any], MetricValues], description: str,
                    values: tuple[Value, ...]) -> Metric:
    """Add a metric; every name is checked and none may be registered twice."""
    if not NAME.fullmatch(name):
        raise ValueError(f"metric name {name!r} must be lower-case letters, digits and underscores")
    if name in METRICS:
        raise ValueError(f"metric {name!r} registered twice")
    if scope not in ("features", "samples"):
        raise ValueError(f"metric {name!r}: scope must be 'features' or 'samples', not {scope!r}")
    keys = [value.key for value in values]
    if not values or len(set(keys)) != len(keys) or not all(NAME.fullmatch(key) for key in keys):
        raise ValueError(f"metric {name!r} needs distinct, well-formed value keys, not {keys}")
    for value in values:
        if value.direction == "target" and value.target is None:
            raise ValueError(f"{name}.{value.key}: a target direction needs a target")
        if scope == "features" and any(v.key == value.key for m in METRICS.values() if m.scope == "features"
                                       for v in m.values):
            raise ValueError(f"value {value.key!r} is reported by two feature metrics")
    metric = Metric(name, scope, compute, description, tuple(values))
    METRICS[name] = metric
    return metric


def select(names: list[str] | None = None) -> list[Metric]:
    """Metrics by name in registry order (all when `names` is None); unknown names raise."""
    if names is None:
        return list(METRICS.values())
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise KeyError(f"unknown metric(s) {unknown}; available: {sorted(METRICS)}")
    return [metric for metric in METRICS.values() if metric.name in names]


def describe(name: str) -> Value | None:
    """The catalogue entry of a result's metric name (`mnist.fid`, `memorisation.flagged`), if any."""
    prefix, _, key = name.rpartition(".")
    for metric in METRICS.values():
        if metric.scope == "samples" and metric.name != prefix:
            continue
        for value in metric.values:
            if value.key == key:
                return value
    return None


def label(name: str) -> str:
    """What pages call a metric: "Inception FID", "Class TV distance"."""
    value = describe(name)
    if value is None:
        return name
    prefix = name.rpartition(".")[0]
    return f"{SPACE_LABELS.get(prefix, prefix)} {value.label}" if prefix in SPACE_LABELS else value.label


def lower_is_better(name: str) -> bool:
    value = describe(name)
    return value is not None and value.direction == "lower"


def sort_key(name: str, value: float) -> float:
    """Smaller is better: a value as a ranking sorts it (a target metric by its distance to the target)."""
    entry = describe(name)
    if entry is None or entry.direction == "higher":
        return -value
    if entry.direction == "target":
        return abs(value - entry.target)
    return value


def markdown_table() -> str:
    """The catalogue as docs/metrics.md's table (a test keeps the committed file equal to it)."""
    lines = ["| name | label | better | unit | definition | reference |", "|---|---|---|---|---|---|"]
    for metric in METRICS.values():
        for value in metric.values:
            name = f"<space>.{value.key}" if metric.scope == "features" else f"{metric.name}.{value.key}"
            better = value.arrow().replace("↓", "lower").replace("↑", "higher") or "—"
            link = f"[paper]({value.reference})" if value.reference.startswith("http") else value.reference
            lines.append(f"| `{name}` | {value.label} | {better} | {value.unit} | {value.definition} | {link} |")
    return "\n".join(lines)
