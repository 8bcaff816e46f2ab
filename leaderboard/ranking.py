"""Ranking rules: one row per team (best or latest OK run), failed runs shown but not ranked."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from competition.config import CompetitionConfig
from competition.standing import Standing, standing
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


@dataclass
class Row:
    team: str
    run: Run
    rank: int | None
    baseline: bool
    history: list[Run] = field(default_factory=list)
    note: str = ""


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


def build_rows(runs: list[Run], config: CompetitionConfig) -> list[Row]:
    """Ranked rows first (by rank_by, ties to the earlier run), then unranked ones.

    Baseline rows are placed by their score but get no rank number. A run with a rule violation is
    never ranked: when a team has no other run, it is placed with a badge and no rank (policy
    `unranked`) or listed among the unranked rows as disqualified (policy `disqualify`).
    """
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
                row.note = "rule violation: not ranked"
            ranked.append(row)
        else:
            if scored:
                note = "disqualified: rule violation"
            elif team_runs and not in_time:
                note = "no run before the deadline"
            else:
                note = "no successful run"
            unranked.append(Row(team, team_runs[-1], None, baseline, team_runs, note))
    ranked.sort(key=lambda row: (_sort_value(row.run, config), row.run.created, row.run.run_id))
    position = 0
    for row in ranked:  # baselines and violations sit among the teams, in order, but take no rank
        if not row.baseline and not row.note:
            position += 1
            row.rank = position
    unranked.sort(key=lambda row: row.team)
    return ranked + unranked


def _choose(runs: list[Run], config: CompetitionConfig) -> Run:
    if config.selection == "latest":
        return runs[-1]
    return min(runs, key=lambda r: (_sort_value(r, config), r.created, r.run_id))


def _sort_value(run: Run, config: CompetitionConfig) -> float:
    return sort_key(config.rank_by, run.metric(config.rank_by))
