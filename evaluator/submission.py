"""Evaluate a team folder: stage -> sandboxed generate.py -> validate -> rule check -> score -> result files.

Ingestion (running the team's code) is kept apart from scoring: the scoring half is the same
`pipeline.score_images` that `evaluate --samples` uses.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evaluator import results
from evaluator.pipeline import EvaluationOptions, Reporter, Timings, new_result, require_data, score_images
from evaluator.published import host_prefixes, redact, redact_text
from evaluator.samples import validate_samples
from evaluator.sandbox.install import InstallFailed, RequirementInstaller, installed_record
from evaluator.sandbox.limits import Limits
from evaluator.sandbox.requirements import check_requirements
from evaluator.sandbox.rule_check import RuleCheck, check_rule, generator_shapes, read_trace
from evaluator.sandbox.runner import run_sandboxed
from evaluator.sandbox.staging import StagingError
from evaluator.sandbox.verdict import Verdict, classify
from evaluator.sandbox.workspace import workspace

NUM_SAMPLES_ENV = "EVAL_NUM_SAMPLES"  # the kit's generate.py honours it; 10000 in competition runs
DEFAULT_SEED = 0


@dataclass
class SubmissionOptions:
    batch_size: int = 2048
    limits: Limits = field(default_factory=Limits)
    gpu: bool = False
    sandbox: bool = True
    scratch_dir: str | None = None
    rule_check: bool = True
    seed: int = DEFAULT_SEED  # applied to random, numpy and torch before the team's code runs
    installer: RequirementInstaller | None = None  # opt-in: install the packages the environment lacks


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
    generation: dict[str, Any] = {"command": f"python generate.py --batch_size {options.batch_size}",
                                  "gpu": options.gpu, "seed": options.seed}
    result["generation"] = generation

    def finish(verdict: Verdict, reason: str) -> dict:
        result["verdict"] = verdict.value
        result["reason"] = reason
        if verdict is not Verdict.OK:
            result["status"] = "invalid_samples" if verdict is Verdict.INVALID_OUTPUT else "generation_failed"
        timings.seconds["total"] = round(time.perf_counter() - started, 4)
        return result

    with workspace(options.limits, options.sandbox, options.scratch_dir) as space:
        with timings.measure("stage"):
            try:
                staged = space.stage(folder)
            except StagingError as err:
                return finish(Verdict.REFUSED, f"refused: {err}"), "", None
        result["submission"] = {"path": str(folder), "sha256": staged.sha256, "files": staged.files,
                                "bytes": staged.bytes, "removed": staged.removed}
        result["requirements"] = check_requirements(staged.directory / "requirements.txt")
        site_packages = None
        if options.installer is not None:
            with timings.measure("install"):
                reporter.stage("install requirements")
                try:
                    site_packages = options.installer(result["requirements"])
                except InstallFailed as err:
                    return finish(Verdict.INSTALL_FAILED, str(err)), "", None
            reporter.done("install requirements", timings.seconds["install"],
                          "nothing missing" if site_packages is None else site_packages.name)
            result["requirements_installed"] = installed_record(site_packages)

        with timings.measure("generate"):
            reporter.stage("generate (sandbox)")
            env = {NUM_SAMPLES_ENV: str(evaluation.expected_count)}
            if options.gpu:
                env["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES", "0")
            outcome = run_sandboxed(space, ["generate.py", "--batch_size", str(options.batch_size)],
                                    options.limits, gpu=options.gpu, sandbox=options.sandbox, env=env,
                                    seed=options.seed, generator_shapes=generator_shapes(),
                                    trace=options.rule_check, site_packages=site_packages)
        reporter.done("generate (sandbox)", timings.seconds["generate"],
                      "sandbox error" if outcome.setup_error else f"exit {outcome.exit_code}")
        log = outcome.log_tail
        generation.update(exit_code=outcome.exit_code, signal=outcome.signal,
                          wall_time_s=outcome.wall_time_s, log_bytes=outcome.log_bytes,
                          limits=options.limits.to_dict(), limits_in_force=outcome.limits_in_force,
                          leftover_processes=outcome.leftover_processes)
        trace = read_trace(space.trace, options.limits.trace_max_bytes)
        early = classify(outcome, options.gpu, options.limits.timeout_s, trace.outcome)
        if early is not None:
            if early[0] is not Verdict.SANDBOX_ERROR:  # the environment failing is never the team's rule break
                _rule_check(result, None, trace, options, timings, reporter)
            return finish(*early), log, None

        with timings.measure("validate"):
            advance = reporter.stage("validate", evaluation.expected_count)
            images, report = validate_samples(space.samples, evaluation.expected_count, progress=advance,
                                              timeout_s=options.limits.validation_timeout_s)
        report.directory = "samples"
        reporter.done("validate", timings.seconds["validate"], f"{report.found_count} entries")
        result["validation"] = report.to_dict()
        result["samples"].update(count=report.found_count, sha256=report.sha256)
        _rule_check(result, images, trace, options, timings, reporter)
    if images is None:
        # A problem of the folder itself is said in words; problems of files are counted by kind.
        by_code = report.by_code()
        counts = ", ".join(problems[0].message if code == "missing_folder" else f"{len(problems)} {code}"
                           for code, problems in by_code.items())
        return finish(Verdict.INVALID_OUTPUT, f"samples failed validation: {counts}"), log, None
    score_images(images, evaluation, reporter, result, timings)
    return finish(Verdict.OK, "generated and scored"), log, images


def _rule_check(result: dict, images: np.ndarray | None, trace, options: SubmissionOptions,
                timings: Timings, reporter: Reporter) -> None:
    """Check the fixed-generator rule from the run's trace; our own failure is never the team's flag."""
    if not options.rule_check:
        return
    with timings.measure("rule_check"):
        reporter.stage("rule check (replay)")
        try:
            check = check_rule(images, trace)
        except Exception as err:  # noqa: BLE001 - an evaluator bug must not become a team's violation
            check = RuleCheck("not_checked", error=f"the rule check failed: {type(err).__name__}: {err}")
    reporter.done("rule check (replay)", timings.seconds["rule_check"], check.status)
    result["rule_check"] = check.to_dict()
    if check.status == "violation":
        result["flags"].append({"code": "rule_violation",
                                "message": "fixed generator: " + "; ".join(check.violations)})


def write_outputs(result: dict, log: str, images: np.ndarray | None, run_dir: Path,
                  data_root: str | None = None, cache_dir: str | None = None) -> Path:
    """log.txt (the last 64 KB of stdout/stderr), grid.png (first 100 samples), closest.png (the
    samples most similar to an MNIST digit, above the digit each resembles) and result.json, written
    into a hidden folder beside `run_dir` and renamed into place at once: a run folder is either
    complete or absent, whenever the process dies. Host paths in the log and the result are written
    as placeholders (`published.py`): both are published."""
    run_dir = Path(run_dir)
    incoming = run_dir.parent / f".incoming-{run_dir.name}"
    prefixes = host_prefixes(submission=(result.get("submission") or {}).get("path"), data_root=data_root,
                             cache_dir=cache_dir)
    log = redact_text(log, prefixes)
    results.write_file(incoming / "log.txt", log)
    result["log_sha256"] = results.sha256_text(log)
    if images is not None:
        results.write_file(incoming / "grid.png", grid_png(images[:100]))
        result["grid"] = "grid.png"
        pairs = result["details"].get("memorisation.closest")
        if pairs:
            results.write_file(incoming / "closest.png", closest_png(images, pairs, data_root))
            result["closest"] = "closest.png"
    results.write_json(incoming / "result.json", redact(result, prefixes))
    os.chmod(incoming, 0o755)
    os.rename(incoming, run_dir)
    return run_dir / "result.json"


def closest_png(images: np.ndarray, pairs: list[dict], data_root: str | None) -> bytes:
    """The memorisation evidence: each listed sample (top row) above its most similar MNIST digit."""
    from evaluator import mnist

    splits = {split: mnist.load_split(split, data_root).images for split in {p["split"] for p in pairs}}
    samples = [images[p["sample"]] for p in pairs]
    matches = [splits[p["split"]][p["mnist_index"]] for p in pairs]
    return grid_png(np.stack(samples + matches), columns=len(pairs))


def grid_png(images: np.ndarray, columns: int = 10) -> bytes:
    """A PNG of the images in a grid (grey padding), as bytes."""
    import io

    import torch
    from torchvision.utils import make_grid, save_image

    tensor = torch.from_numpy(np.asarray(images, dtype=np.float32) / 255.0).unsqueeze(1)
    buffer = io.BytesIO()
    save_image(make_grid(tensor, nrow=columns, padding=2, pad_value=0.5), buffer, format="png")
    return buffer.getvalue()
