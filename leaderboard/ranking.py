"""Ranking rules: one row per team (best or latest OK run), failed runs shown but not ranked, and
ranks that do not reward noise.

Two neighbouring entries tie when the 95% bootstrap interval of their difference in the ranking
metric contains zero (each result keeps its bootstrap replicates, evaluator/metrics/uncertainty.py;
the two teams' samples are independent, so replicate b of one is paired with replicate b of the
other). Ties chain along the sorted table, and a chain shares a rank range such as "2–4"."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import numpy as np

from competition.config import CompetitionConfig
from competition.standing import Standing, standing, unranking_reason
from evaluator.metrics import sort_key


@dataclass
class Run:
    name: str
    run_id: str
    created: datetime
    result: dict
    directory: Path

    @property
    def ok(self) -> bool:
        return self.result.get("verdict", "OK") == "OK" and self.result.get("status") == "ok"

    @property
    def verdict(self) -> str:
        return self.result.get("verdict") or ("OK" if self.ok else self.result.get("status", "?").upper())

    def metric(self, name: str) -> float | None:
        value = self.result.get("metrics", {}).get(name)
        return None if isinstance(value, bool) else value

    def replicates(self, name: str) -> np.ndarray | None:
        samples = (self.result.get("uncertainty") or {}).get("samples", {}).get(name)
        return np.asarray(samples, dtype=np.float64) if samples else None

    def interval(self, name: str) -> tuple[float, float] | None:
        bounds = (self.result.get("uncertainty") or {}).get("intervals", {}).get(name)
        return tuple(bounds) if bounds else None


@dataclass
class Row:
    team: str
    run: Run
    rank: int | None
    baseline: bool
    history: list[Run] = field(default_factory=list)
    note: str = ""
    rank_range: tuple[int, int] | None = None  # a tie group's first and last positions
    in_table: bool = True  # False: shown apart (no successful run, disqualified, only late runs)

    @property
    def rank_label(self) -> str:
        if self.rank is None:
            return ""
        low, high = self.rank_range or (self.rank, self.rank)
        return str(low) if low == high else f"{low}–{high}"

    @property
    def tied(self) -> bool:
        return self.rank_range is not None and self.rank_range[0] != self.rank_range[1]


def differ(a: Run, b: Run, metric: str, level: float = 0.95) -> bool:
    """Whether two runs' values of `metric` differ beyond their sampling noise (see the module)."""
    first, second = a.replicates(metric), b.replicates(metric)
    if first is None or second is None:
        return True  # no replicates (an older result): taken as exact
    count = min(len(first), len(second))
    noise = (first[:count] - first[:count].mean()) - (second[:count] - second[:count].mean())
    difference = a.metric(metric) - b.metric(metric)
    tail = (1 - level) / 2 * 100
    low, high = difference + np.percentile(noise, tail), difference + np.percentile(noise, 100 - tail)
    return not (low <= 0.0 <= high)


def load_runs(results_dir: str | Path) -> list[Run]:
    """Every RESULTS_DIR/NAME/RUN_ID/result.json (exactly that depth; hidden folders, such as a run
    still being written, are never read)."""
    runs = []
    for path in sorted(Path(results_dir).glob("*/*/result.json")):
        if path.parent.name.startswith(".") or path.parent.parent.name.startswith("."):
            continue
        result = json.loads(path.read_text())
        if result.get("schema_version") != 1:
            continue
        created = datetime.fromisoformat(result["created"])
        runs.append(Run(result.get("name") or path.parent.parent.name,
                        result.get("run_id") or path.parent.name, created, result, path.parent))
    return runs


def is_baseline(run: Run, config: CompetitionConfig) -> bool:
    if run.name in config.baselines:
        return True
    path = run.result.get("submission", {}).get("path", "")
    return "baselines" in Path(path).parts


def ranking_metric(runs: list[Run], config: CompetitionConfig) -> tuple[str, str]:
    """(metric, why): the configured one, else inception.fid when every successful run has it."""
    if config.rank_by:
        return config.rank_by, "set in competition.toml"
    scored = [run for run in runs if run.ok]
    if scored and all(run.metric("inception.fid") is not None for run in scored):
        return "inception.fid", "the default: every ranked result has Inception features"
    return "mnist.fid", "the default while some results lack Inception features (--features mnist,inception)"


def resolved(runs: list[Run], config: CompetitionConfig) -> tuple[CompetitionConfig, str]:
    """The config with its ranking metric decided (and shown first among the columns)."""
    metric, why = ranking_metric(runs, config)
    return replace(config, rank_by=metric), why


def final_runs(runs: list[Run]) -> tuple[list[Run], str | None]:
    """The runs of the latest final round (one started after the deadline: each team's last
    submission before it, evaluated with that round's seed), and the round's id."""
    finals = [run for run in runs if (run.result.get("round") or {}).get("final")]
    if not finals:
        return [], None
    latest = max(run.result["round"]["id"] for run in finals)
    return [run for run in finals if run.result["round"]["id"] == latest], latest


def build_rows(runs: list[Run], config: CompetitionConfig) -> list[Row]:
    """Ranked rows first (by rank_by, ties to the earlier run), then unranked ones.

    Baseline rows are placed by their score but get no rank number. A run with a rule violation is
    never ranked: when a team has no other run, it is placed with a badge and no rank (policy
    `unranked`) or listed among the unranked rows as disqualified (policy `disqualify`).
    """
    if config.rank_by is None:
        config, _ = resolved(runs, config)
    teams: dict[str, list[Run]] = {}
    for run in runs:
        teams.setdefault(run.name, []).append(run)
    ranked, unranked = [], []
    for team, team_runs in teams.items():
        team_runs.sort(key=lambda r: (r.created, r.run_id))
        baseline = is_baseline(team_runs[0], config)
        in_time = [r for r in team_runs if config.deadline is None or r.created <= config.deadline]
        scored = [r for r in in_time if r.ok and r.metric(config.rank_by) is not None]
        clean = [r for r in scored if standing(r.result, config.rule_violation) is Standing.RANKED]
        if clean or (scored and config.rule_violation == "unranked"):
            chosen = _choose(clean or scored, config)
            row = Row(team, chosen, None, baseline, team_runs)
            if not clean:
                row.note = f"{unranking_reason(chosen.result)}: not ranked"
            ranked.append(row)
        else:
            if scored:
                note = f"disqualified: {unranking_reason(scored[-1].result)}"
            elif team_runs and not in_time:
                note = "no run before the deadline"
            else:
                note = "no successful run"
            unranked.append(Row(team, team_runs[-1], None, baseline, team_runs, note, in_table=False))
    ranked.sort(key=lambda row: (_sort_value(row.run, config), row.run.created, row.run.run_id))
    position = 0
    for row in ranked:  # baselines and violations sit among the teams, in order, but take no rank
        if not row.baseline and not row.note:
            position += 1
            row.rank = position
    _tie_groups([row for row in ranked if row.rank is not None], config.rank_by)
    unranked.sort(key=lambda row: row.team)
    return ranked + unranked


def _tie_groups(rows: list[Row], metric: str) -> None:
    """Chain neighbours that do not differ; each chain's rows share its first and last positions."""
    start = 0
    for index in range(1, len(rows) + 1):
        if index == len(rows) or differ(rows[index - 1].run, rows[index].run, metric):
            for row in rows[start:index]:
                row.rank_range = (rows[start].rank, rows[index - 1].rank)
            start = index


def _choose(runs: list[Run], config: CompetitionConfig) -> Run:
    if config.selection == "latest":
        return runs[-1]
    return min(runs, key=lambda r: (_sort_value(r, config), r.created, r.run_id))


def _sort_value(run: Run, config: CompetitionConfig) -> float:
    return sort_key(config.rank_by, run.metric(config.rank_by))
