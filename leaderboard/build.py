"""Write the static site: the daily ranking, the final standings once the deadline has passed, one
page per team, plots, CSV and JSON exports. It works from disk: no server, no JavaScript framework
(a few lines of plain JavaScript sort the tables; they read fine without).

Everything a team controls (names, logs, reasons) goes through Jinja2 autoescaping, and no page
shows an organiser's folder (`public`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from competition.config import CompetitionConfig
from evaluator.metrics import describe, label
from evaluator.results import write_file
from evaluator.sandbox.requirements import summarise
from leaderboard import plots
from leaderboard.ranking import Row, build_rows, final_runs, load_runs, resolved

STANDOUT_FLAGS = ("rule_violation", "data_copying", "memorisation")  # shown loud; everything else stays quiet


def slug(name: str) -> str:
    """A file-name-safe, collision-resistant page name for a team."""
    clean = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40] or "team"
    return f"{clean}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("leaderboard", "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = format_value
    env.filters["when"] = lambda moment: moment.strftime("%Y-%m-%d %H:%M") if moment else ""
    return env


LOG_END_LINES = 40  # shown first: a failed run's exception is at the end of its log


def log_view(log: str) -> dict:
    """The log's last lines (shown open) and, when there is more, the whole kept tail (folded)."""
    lines = log.rstrip("\n").splitlines()
    return {"log_end": "\n".join(lines[-LOG_END_LINES:]), "log": log if len(lines) > LOG_END_LINES else "",
            "log_lines": len(lines)}


def rule_check_line(check: dict | None) -> str:
    """The fixed-generator check in one sentence, with why and how many when it checked a subset."""
    if not check:
        return ""
    status = check.get("status") or ("ok" if check.get("ok") else "violation")
    if status == "not_run":
        return "Fixed-generator check: not run (no samples to check)."
    if status == "not_checked":
        return f"Fixed-generator check: not checked ({check.get('error') or 'an evaluator failure'})."
    counted = f"{check.get('traced', 0):,} of {check.get('checked', 0):,} samples checked are outputs of the " \
              f"fixed generator"
    subset = f"; {check['subset']}" if check.get("subset") else ""
    return f"Fixed-generator check: {'passed' if status == 'ok' else 'violation'} ({counted}{subset})."


def format_value(value, column: "Column | int | None" = None) -> str:
    """A metric value as a table shows it: competition.toml's `decimals` for the metric when set,
    else the catalogue's own format (shares of samples as percentages, so 0.0004 reads 0.04%)."""
    if value is None:
        return ""
    if isinstance(value, (int, bool)) and not isinstance(value, float):
        return str(value)
    decimals = column.decimals if isinstance(column, Column) else column
    if decimals is None and isinstance(column, Column) and describe(column.name) is not None:
        return describe(column.name).formatted(value)
    return f"{value:.{3 if decimals is None else decimals}f}"


@dataclass
class Column:
    """A metric column: its result name and what the catalogue says about it."""

    name: str
    title: str  # "Inception FID"
    arrow: str  # ↓ ↑ ≈ 1
    definition: str
    decimals: int | None  # set in competition.toml; None: the catalogue's format


def columns_for(config: CompetitionConfig) -> list[Column]:
    out = []
    for name in config.metrics:
        entry = describe(name)
        out.append(Column(name, label(name), entry.arrow() if entry else "",
                          entry.definition if entry else name,
                          config.decimals.get(name, None if entry else config.default_decimals)))
    return out


def export_rows(rows: list[Row], config: CompetitionConfig) -> list[dict]:
    out = []
    for row in rows:
        entry = {"rank": row.rank, "rank_range": row.rank_label, "team": row.team, "baseline": row.baseline,
                 "verdict": row.run.verdict, "run_id": row.run.run_id, "created": row.run.created.isoformat(),
                 "entries": len(row.history), "flags": ";".join(f["code"] for f in row.run.result.get("flags", [])),
                 "note": row.note}
        entry.update({metric: row.run.metric(metric) for metric in config.metrics})
        interval = row.run.interval(config.rank_by)
        entry[f"{config.rank_by} 95% interval"] = list(interval) if interval else None
        out.append(entry)
    return out


# A spreadsheet reads a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """Text that a spreadsheet would run as a formula gets a leading apostrophe; numbers stay numbers."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def public(result: dict) -> dict:
    """The result as published: the organiser's folders reduced to their last component."""
    paths = {p for p in (result.get("submission", {}).get("path"), result.get("samples", {}).get("directory"))
             if isinstance(p, str) and "/" in p}

    def scrub(value):
        if isinstance(value, dict):
            return {key: scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [scrub(item) for item in value]
        if isinstance(value, str):
            for path in sorted(paths, key=len, reverse=True):
                value = value.replace(path, Path(path).name)
        return value

    return scrub(result)


def _row_view(row: Row) -> dict:
    """What the index shows of a row beyond its metrics: badges, quiet notes, entries, last run."""
    flags = row.run.result.get("flags", [])
    loud = [flag for flag in flags if flag.get("code") in STANDOUT_FLAGS]
    quiet = [flag for flag in flags if flag.get("code") not in STANDOUT_FLAGS]
    grouped = summarise(row.run.result.get("requirements") or [], row.run.result.get("requirements_installed"))
    notes = [*(f"{flag['code']}: {flag['message']}" for flag in quiet), *([grouped[1]] if grouped else [])]
    return {"loud": loud, "notes": notes, "entries": len(row.history),
            "last": max((run.created for run in row.history), default=None)}


def _write_exports(site_dir: Path, name: str, rows: list[Row], config: CompetitionConfig) -> None:
    exported = export_rows(rows, config)
    write_file(site_dir / f"{name}.json", json.dumps(
        {"title": config.title, "rank_by": config.rank_by, "rows": exported}, indent=2) + "\n")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(exported[0]) if exported else ["team"])
    writer.writeheader()
    writer.writerows({key: csv_cell(value) for key, value in entry.items()} for entry in exported)
    write_file(site_dir / f"{name}.csv", buffer.getvalue())


def _plots(rows: list[Row], config: CompetitionConfig, space: str) -> list[str]:
    shown = [row for row in rows if row.in_table]
    numbered = [(row.rank_label or ("B" if row.baseline else "–"), row.team,
                 row.run.metric(f"{space}.precision"), row.run.metric(f"{space}.recall"), row.baseline)
                for row in shown if row.run.metric(f"{space}.precision") is not None]
    scatter = plots.scatter(numbered, f"Precision and recall ({label(space + '.fid').split()[0]} features)",
                            "precision", "recall")
    runs = [run for row in rows for run in row.history]
    first = min((run.created for run in runs), default=None)
    series = {}
    for row in rows:
        points = [((run.created - first).total_seconds() / 86400, run.metric(config.rank_by))
                  for run in row.history if run.ok and run.metric(config.rank_by) is not None]
        if points and not row.baseline:
            series[row.team] = points
    over_time = plots.lines(series, f"{label(config.rank_by)} over time", "days since the first run",
                            label(config.rank_by), whole_x=True)
    return [scatter, over_time]


def build_site(results_dirs: Path | list[Path], site_dir: Path, config: CompetitionConfig,
               now: datetime | None = None) -> Path:
    """The whole site from every result.json under one or more results folders."""
    folders = [results_dirs] if isinstance(results_dirs, (str, Path)) else list(results_dirs)
    runs = [run for folder in folders for run in load_runs(folder)]
    final, final_round = final_runs(runs)
    daily = [run for run in runs if not (run.result.get("round") or {}).get("final")]
    config, why = resolved(daily or runs, config)
    rows = build_rows(daily, config)
    site_dir.mkdir(parents=True, exist_ok=True)
    for folder in ("teams", "assets"):
        (site_dir / folder).mkdir(exist_ok=True)
    env = _environment()
    columns = columns_for(config)
    ranking_entry = describe(config.rank_by)
    space = config.rank_by.split(".")[0] if config.rank_by.split(".")[0] in ("mnist", "inception", "vgg16") else "mnist"
    thumbnails = {}

    for row in rows:
        page = slug(row.team)
        row.page = f"teams/{page}.html"
        runs_out = []
        for run in reversed(row.history):
            run.result = public(run.result)
            grid = closest = None
            if (run.directory / "grid.png").exists():
                grid = f"{page}-{run.run_id}.png"
                write_file(site_dir / "assets" / grid, (run.directory / "grid.png").read_bytes())
            if (run.directory / "closest.png").exists():
                closest = f"{page}-{run.run_id}-closest.png"
                write_file(site_dir / "assets" / closest, (run.directory / "closest.png").read_bytes())
            if run is row.run and grid:
                thumbnails[row.team] = f"assets/{grid}"
            log_path = run.directory / "log.txt"
            details = run.result.get("details", {})
            histogram = details.get("class_coverage.histogram")
            runs_out.append({
                "run": run, "grid": grid, "closest": closest,
                "closest_pairs": details.get("memorisation.closest") or [],
                **log_view(log_path.read_text(errors="replace") if log_path.exists() else ""),
                "rule_check": rule_check_line(run.result.get("rule_check")),
                "histogram": plots.bars(histogram, [str(d) for d in range(10)],
                                        details.get("class_coverage.reference_histogram"),
                                        "digits of the recognisable samples")
                if histogram else None,
                "metrics": [(label(name), name, describe(name).formatted(value) if describe(name) else value,
                             run.interval(name)) for name, value in run.result.get("metrics", {}).items()],
                "requirements": summarise(run.result.get("requirements") or [],
                                          run.result.get("requirements_installed")),
                "json": json.dumps({k: run.result.get(k) for k in ("submission", "generation", "timings_s",
                                                                     "environment", "feature_extractors",
                                                                     "reference", "requirements", "rule_check",
                                                                     "round")}, indent=2, default=str),
            })
        write_file(site_dir / row.page, env.get_template("team.html").render(
            config=config, row=row, runs=runs_out, columns=columns))

    ranked = [row for row in rows if row.in_table]
    apart = [row for row in rows if not row.in_table]
    views = {row.team: _row_view(row) for row in rows}
    _write_exports(site_dir, "leaderboard", rows, config)
    moment = now or datetime.now(timezone.utc)
    deadline_passed = config.deadline is not None and moment > config.deadline
    final_rows = build_rows(final, replace(config, deadline=None)) if final else []
    for row in final_rows:
        row.page = f"teams/{slug(row.team)}.html"
        views.setdefault(row.team, _row_view(row))
    common = dict(config=config, columns=columns, ranking=ranking_entry, rank_title=label(config.rank_by), why=why,
                  views=views,
                  thumbnails=thumbnails, deadline_passed=deadline_passed, has_final=bool(final_rows),
                  final_round=final_round, generated=max((run.created for run in runs), default=None))
    if final_rows:
        _write_exports(site_dir, "final", final_rows, config)
        write_file(site_dir / "final.html", env.get_template("index.html").render(
            **common, rows=[r for r in final_rows if r.in_table], apart=[r for r in final_rows if not r.in_table],
            plots=_plots(final_rows, config, space), page="final"))
    index = env.get_template("index.html").render(**common, rows=ranked, apart=apart,
                                                   plots=_plots(rows, config, space), page="daily")
    write_file(site_dir / "index.html", index)
    return site_dir / "index.html"
