"""Ties on real evaluations at full size: the kit evaluated with five seeds, WGAN (clipping) and WGAN-GP,
10,000 samples each, MNIST features; prints each run's FID with its 95% bootstrap interval and the
rank label the leaderboard gives it.

    MNIST_ROOT=../shared/data python bench/ties.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from baselines.recipes import assemble  # noqa: E402
from competition.config import CompetitionConfig  # noqa: E402
from evaluator import results  # noqa: E402
from evaluator.pipeline import EvaluationOptions  # noqa: E402
from evaluator.submission import SubmissionOptions, evaluate_submission, write_outputs  # noqa: E402
from leaderboard.ranking import build_rows, load_runs  # noqa: E402


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="ties-"))
    options = EvaluationOptions(metrics=("fid", "precision_recall", "density_coverage"))
    runs = [(f"kit-seed{seed}", REPO / "submission", seed) for seed in range(1, 6)]
    wgan, wgan_gp = assemble(["wgan", "wgan-gp"], root / "baselines")
    runs += [("wgan", wgan, 1), ("wgan-gp", wgan_gp, 1)]
    for team, folder, seed in runs:
        copy = root / "teams" / team
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("samples"))
        result, log, images = evaluate_submission(copy, options, SubmissionOptions(seed=seed, rule_check=False))
        run_id = results.new_run_id()
        result.update(run_id=run_id, name=team)
        write_outputs(result, log, images, root / "results" / team / run_id)
    loaded = load_runs(root / "results")
    print("| entry | mnist.fid | 95% interval | rank |\n|---|---:|---:|---:|")
    for row in build_rows(loaded, CompetitionConfig()):
        low, high = row.run.interval("mnist.fid")
        print(f"| {row.team} | {row.run.metric('mnist.fid'):.3f} | {low:.3f}–{high:.3f} | {row.rank_label} |")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
