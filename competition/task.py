"""One team's evaluation within a round: what `competition task` runs, here or on a Slurm node.

It reads the round's settings and plan, runs the same sandboxed evaluation as `evaluate FOLDER`,
writes the run folder into the shared results folder (all at once: complete or absent), then a
marker `done/<team>.json` that the round reads. It never writes the journal: the round process is
its only writer.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from competition.config import CompetitionConfig
from competition.round import Settings, commitment, result_outcome, round_seed
from evaluator import results as result_files
from evaluator.pipeline import EvaluationOptions
from evaluator.sandbox.install import RequirementInstaller
from evaluator.sandbox.limits import Limits, parse_size
from evaluator.submission import SubmissionOptions, evaluate_submission, write_outputs


class TaskError(Exception):
    """The task cannot run (a missing plan, a seed that does not match the round's)."""


def round_context(round_dir: Path) -> tuple[dict, dict, CompetitionConfig, dict]:
    """The round's settings, plan and configuration, as the round recorded them."""
    try:
        settings = json.loads((round_dir / "settings.json").read_text())
        plan = json.loads((round_dir / "plan.json").read_text())
        context = json.loads((round_dir / "round.json").read_text())
    except (OSError, ValueError) as err:
        raise TaskError(f"{round_dir} is not a planned round: {err}") from err
    return settings, plan, CompetitionConfig.load(context["config"]), context


def process_age() -> float | None:
    """Seconds since this process started (Linux's /proc): a task's fixed cost before it evaluates
    anything (the interpreter, torch and the pipeline's imports). None where it cannot be read."""
    try:
        with open("/proc/self/stat") as stat:  # the start time is field 22, after the "(name)" field
            started_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        return max(time.clock_gettime(time.CLOCK_BOOTTIME) - started_ticks / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def run_task(round_dir: Path, team: str) -> dict:
    """Evaluate `team`; returns the marker it wrote."""
    startup = process_age()
    started = time.monotonic()
    settings, plan, config, context = round_context(round_dir)
    if team not in plan:
        raise TaskError(f"{team} is not in the round's plan")
    entry = plan[team]
    seed = round_seed(config)
    if commitment(seed) != settings["seed_commitment"]:
        raise TaskError("the seed does not match the round's (was the secret seed replaced?)")
    evaluation = EvaluationOptions(expected_count=settings["samples"], feature_spaces=tuple(settings["features"]),
                                   k=settings["k"], device="cuda" if settings["gpu"] else "cpu")
    limits = Limits(timeout_s=settings["timeout"], memory_bytes=parse_size(settings["memory"]))
    options = SubmissionOptions(batch_size=settings["batch_size"], limits=limits, gpu=settings["gpu"], seed=seed)
    if settings.get("install_requirements"):
        options.installer = RequirementInstaller(config.path(config.state_dir) / "site-packages",
                                                 config.requirements.timeout, config.requirements.index_url)
    result, log, images = evaluate_submission(entry["folder"], evaluation, options)
    run_id = result_files.new_run_id()
    result.update(run_id=run_id, name=team)
    # The key is that of what was staged and run: a folder changed since planning is stored under
    # its new code's key, never the old one (which would let the next round skip the old code).
    staged = (result.get("submission") or {}).get("sha256")
    key = Settings(**{**settings, "features": tuple(settings["features"])}).key(staged) if staged else entry["key"]
    result["round"] = {"id": round_dir.name, "key": key, "commit": entry["commit"],
                       "commit_date": entry.get("commit_date"), "observed_at": entry.get("observed_at"),
                       "kind": entry["kind"], "ref": entry.get("ref"), "final": context.get("final", False),
                       "changed_since_planning": bool(staged) and key != entry["key"]}
    results_dir = config.path(config.results_dir)
    path = write_outputs(result, log, images, results_dir / team / run_id, evaluation.data_root,
                         evaluation.cache_dir)
    outcome = result_outcome(result, config.rule_violation)
    marker = {"team": team, "verdict": result["verdict"], "reason": result["reason"], "result": str(path),
              "standing": outcome["standing"], "flags": outcome["flags"],
              "key": key, "fid": result["metrics"].get("mnist.fid"),
              "seconds": {**({"start-up": round(startup, 3)} if startup is not None else {}),
                          "evaluate": round(time.monotonic() - started, 3),
                          **{k: v for k, v in result["timings_s"].items() if "." not in k}}}
    result_files.write_json(round_dir / "done" / f"{team}.json", marker)
    return marker
