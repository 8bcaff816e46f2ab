"""Evaluate a team folder: stage -> sandboxed generate.py -> validate -> score -> result files.

Ingestion (running the team's code) is kept apart from scoring: the scoring half is the same
`pipeline.score_images` that `evaluate --samples` uses.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evaluator import results
from evaluator.pipeline import EvaluationOptions, Reporter, Timings, new_result, require_data, score_images
from evaluator.samples import validate_samples
from evaluator.sandbox.limits import Limits
from evaluator.sandbox.requirements import check_requirements
from evaluator.sandbox.rule_check import check_generator
from evaluator.sandbox.runner import run_sandboxed, unmount
from evaluator.sandbox.staging import StagingError, remove_tree, stage_submission
from evaluator.sandbox.verdict import Verdict, classify

NUM_SAMPLES_ENV = "EVAL_NUM_SAMPLES"  # the kit's generate.py honours it; 10000 in competition runs


@dataclass
class SubmissionOptions:
    batch_size: int = 2048
    limits: Limits = None  # type: ignore[assignment]
    gpu: bool = False
    sandbox: bool = True
    scratch_dir: str | None = None
    rule_check: bool = True

    def __post_init__(self) -> None:
        self.limits = self.limits or Limits()


def evaluate_submission(folder: str | Path, evaluation: EvaluationOptions,
                        options: SubmissionOptions, reporter: Reporter | None = None
                        ) -> tuple[dict[str, Any], str, np.ndarray | None]:
    """Returns (result, full log tail, validated images or None)."""
    reporter = reporter or Reporter()
    folder = Path(folder)
    timings = Timings()
    started = time.perf_counter()
    result = new_result(str(folder), evaluation, timings)
    result["samples"]["directory"] = "samples"
    require_data(evaluation)
    scratch = Path(tempfile.mkdtemp(prefix="mnist-eval-", dir=options.scratch_dir))
    os.chmod(scratch, 0o755)
    log = ""
    images = None
    try:
        generation: dict[str, Any] = {"command": f"python generate.py --batch_size {options.batch_size}",
                                      "gpu": options.gpu}
        result["generation"] = generation
        with timings.measure("stage"):
            try:
                staged = stage_submission(folder, scratch, options.limits)
            except StagingError as err:
                return _finish(result, Verdict.SANDBOX_ERROR, f"refused: {err}", timings, started), log, None
        result["submission"] = {"path": str(folder.resolve()), "sha256": staged.sha256,
                                "files": staged.files, "bytes": staged.bytes, "removed": staged.removed}
        result["requirements"] = check_requirements(staged.directory / "requirements.txt")
        for warning in result["requirements"]:
            if warning["problem"] in ("missing", "conflict"):
                result["flags"].append({"code": "requirements", "message": warning["detail"]})
        if options.rule_check:
            with timings.measure("rule_check"):
                reporter.stage("rule check (G.pth shapes)")
                rule = check_generator(staged.directory, options.sandbox)
            reporter.done("rule check (G.pth shapes)", timings.seconds["rule_check"],
                          "ok" if rule["ok"] else "violation")
            result["rule_check"] = rule
            if not rule["ok"]:
                detail = "; ".join(rule["violations"]) or rule["error"]
                result["flags"].append({"code": "rule_violation", "message": f"fixed generator: {detail}"})

        with timings.measure("generate"):
            reporter.stage("generate (sandbox)")
            env = {NUM_SAMPLES_ENV: str(evaluation.expected_count)}
            if options.gpu:
                env["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES", "0")
            outcome = run_sandboxed(staged.directory,
                                    [sys.executable, "generate.py", "--batch_size", str(options.batch_size)],
                                    options.limits, gpu=options.gpu, sandbox=options.sandbox, env=env)
        reporter.done("generate (sandbox)", timings.seconds["generate"], f"exit {outcome.exit_code}")
        log = outcome.log_tail
        generation.update(exit_code=outcome.exit_code, signal=outcome.signal,
                          wall_time_s=outcome.wall_time_s, log_bytes=outcome.log_bytes,
                          limits=options.limits.to_dict(), limits_in_force=outcome.limits_in_force,
                          leftover_processes=outcome.leftover_processes)
        early = classify(outcome, options.gpu, options.limits.timeout_s)
        if early is not None:
            return _finish(result, *early, timings, started), log, None

        with timings.measure("validate"):
            advance = reporter.stage("validate", evaluation.expected_count)
            images, report = validate_samples(staged.directory / "samples", evaluation.expected_count,
                                              progress=advance)
        reporter.done("validate", timings.seconds["validate"], f"{report.found_count} entries")
        result["validation"] = report.to_dict()
        result["samples"].update(count=report.found_count, sha256=report.sha256)
        if images is None:
            counts = ", ".join(f"{n} {code}" for code, n in report.to_dict()["problem_counts"].items())
            return _finish(result, Verdict.INVALID_OUTPUT, f"samples failed validation: {counts}",
                           timings, started), log, None
        score_images(images, evaluation, reporter, result, timings)
        return _finish(result, Verdict.OK, "generated and scored", timings, started), log, images
    finally:
        samples = scratch / "submission" / "samples"
        if samples.exists():
            unmount(samples)
        remove_tree(scratch)


def _finish(result: dict, verdict: Verdict, reason: str, timings: Timings, started: float) -> dict:
    result["verdict"] = verdict.value
    result["reason"] = reason
    if verdict is not Verdict.OK:
        result["status"] = "invalid_samples" if verdict is Verdict.INVALID_OUTPUT else "generation_failed"
    timings.seconds["total"] = round(time.perf_counter() - started, 4)
    return result


def write_outputs(result: dict, log: str, images: np.ndarray | None, run_dir: Path) -> Path:
    """result.json, log.txt (the last 64 KB of stdout/stderr) and grid.png (first 100 samples)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "log.txt").write_text(log)
    result["log_sha256"] = hashlib.sha256(log.encode()).hexdigest()
    if images is not None:
        save_grid(images[:100], run_dir / "grid.png")
        result["grid"] = "grid.png"
    return results.write_json(run_dir / "result.json", result)


def save_grid(images: np.ndarray, path: Path, columns: int = 10) -> None:
    import torch
    from torchvision.utils import make_grid, save_image

    tensor = torch.from_numpy(np.asarray(images, dtype=np.float32) / 255.0).unsqueeze(1)
    save_image(make_grid(tensor, nrow=columns, padding=2, pad_value=0.5), path)
