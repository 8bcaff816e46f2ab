"""Write the static site: index (ranking), one page per team, plots, CSV and JSON exports.

Everything a team controls (names, logs, reasons) goes through Jinja2 autoescaping.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sys
from pathlib import Path

import click
from jinja2 import Environment, PackageLoader, select_autoescape

from leaderboard import plots
from competition.config import CompetitionConfig
from evaluator.results import write_file
from evaluator.metrics import describe, label, lower_is_better
from leaderboard.ranking import Row, build_rows, load_runs


def slug(name: str) -> str:
    """A file-name-safe, collision-resistant page name for a team."""
    clean = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40] or "team"
    return f"{clean}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("leaderboard", "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = lambda value, decimals=3: "" if value is None else (
        str(value) if isinstance(value, (int, bool)) else f"{value:.{decimals}f}")
    return env


def export_rows(rows: list[Row], config: CompetitionConfig) -> list[dict]:
    out = []
    for row in rows:
        entry = {"rank": row.rank, "team": row.team, "baseline": row.baseline, "verdict": row.run.verdict,
                 "run_id": row.run.run_id, "created": row.run.created.isoformat(),
                 "flags": ";".join(f["code"] for f in row.run.result.get("flags", [])), "note": row.note}
        entry.update({metric: row.run.metric(metric) for metric in config.metrics})
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


def build_site(results_dirs: Path | list[Path], site_dir: Path, config: CompetitionConfig) -> Path:
    """The whole site from every result.json under one or more results folders."""
    folders = [results_dirs] if isinstance(results_dirs, (str, Path)) else list(results_dirs)
    runs = [run for folder in folders for run in load_runs(folder)]
    rows = build_rows(runs, config)
    site_dir.mkdir(parents=True, exist_ok=True)
    (site_dir / "teams").mkdir(exist_ok=True)
    (site_dir / "assets").mkdir(exist_ok=True)
    env = _environment()
    columns = [{"name": m, "lower": lower_is_better(m), "label": (describe(m).arrow() if describe(m) else ""),
                "title": label(m), "decimals": config.decimals_for(m)} for m in config.metrics]

    ranked = [r for r in rows if r.rank is not None or (r.baseline and r.run.ok)]
    scatter = plots.scatter([(r.team, r.run.metric("mnist.precision") or 0.0,
                              r.run.metric("mnist.recall") or 0.0, r.baseline)
                             for r in ranked if r.run.metric("mnist.precision") is not None],
                            "Precision and recall (MNIST features)", "precision", "recall")
    first = min((run.created for run in runs), default=None)
    series = {}
    for row in rows:
        points = [((run.created - first).total_seconds() / 86400, run.metric(config.rank_by))
                  for run in row.history if run.ok and run.metric(config.rank_by) is not None]
        if points and not row.baseline:
            series[row.team] = points
    over_time = plots.lines(series, f"{config.rank_by} over time", "days since the first run",
                            config.rank_by)

    exported = export_rows(rows, config)
    write_file(site_dir / "leaderboard.json", json.dumps(
        {"title": config.title, "rank_by": config.rank_by, "rows": exported}, indent=2) + "\n")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(exported[0]) if exported else ["team"])
    writer.writeheader()
    writer.writerows({key: csv_cell(value) for key, value in entry.items()} for entry in exported)
    write_file(site_dir / "leaderboard.csv", buffer.getvalue())

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
            log_path = run.directory / "log.txt"
            details = run.result.get("details", {})
            histogram = details.get("class_coverage.histogram")
            runs_out.append({
                "run": run, "grid": grid, "closest": closest,
                "closest_pairs": run.result.get("details", {}).get("memorisation.closest") or [],
                "log": log_path.read_text(errors="replace") if log_path.exists() else "",
                "histogram": plots.bars(histogram, [str(d) for d in range(10)],
                                        details.get("class_coverage.reference_histogram"),
                                        "digits in the samples (dashed: MNIST test)") if histogram else None,
                "metrics": run.result.get("metrics", {}),
                "json": json.dumps({k: run.result.get(k) for k in ("submission", "generation", "timings_s",
                                                                     "environment", "feature_extractors",
                                                                     "reference", "requirements", "rule_check")},
                                   indent=2, default=str),
            })
        write_file(site_dir / row.page, env.get_template("team.html").render(
            config=config, row=row, runs=runs_out, columns=columns))
    index = env.get_template("index.html").render(
        config=config, rows=rows, columns=columns, scatter=scatter, over_time=over_time,
        rank_lower=lower_is_better(config.rank_by),
        generated=max((run.created for run in runs), default=None))
    write_file(site_dir / "index.html", index)
    return site_dir / "index.html"


@click.group()
def main() -> None:
    """Static leaderboard for the MNIST GAN competition."""


@main.command()
@click.argument("results_dirs", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", "site_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("site"), show_default=True)
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Competition TOML (see leaderboard/README.md).")
def build(results_dirs: tuple[Path, ...], site_dir: Path, config_path: Path | None) -> None:
    """Build SITE_DIR from every result.json under the RESULTS_DIRS (works from file://),
    e.g. `leaderboard build results baselines/results`."""
    try:
        config = CompetitionConfig.load(config_path)
    except (ValueError, TypeError) as err:
        raise click.BadParameter(str(err), param_hint="--config") from err
    index = build_site(list(results_dirs), site_dir, config)
    click.echo(f"wrote {index}")


if __name__ == "__main__":
    sys.exit(main())
