"""Ranks that do not reward noise, on real evaluations: one folder evaluated with five seeds lands in
one tie group; WGAN (clipping) and WGAN-GP, which really differ, do not tie."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from baselines.recipes import assemble
from competition.config import CompetitionConfig
from evaluator import results
from evaluator.pipeline import EvaluationOptions
from evaluator.sandbox.limits import Limits
from evaluator.sandbox.runner import bubblewrap
from evaluator.submission import SubmissionOptions, evaluate_submission, write_outputs
from leaderboard.ranking import build_rows, differ, load_runs

REPO = Path(__file__).resolve().parents[2]
N = 2000
pytestmark = pytest.mark.skipif(bubblewrap() is None, reason="bubblewrap is not installed")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, mnist_root, cache_dir):
    root = tmp_path_factory.mktemp("ties")
    options = EvaluationOptions(expected_count=N, data_root=str(mnist_root), cache_dir=str(cache_dir),
                                metrics=("fid", "precision_recall", "density_coverage"))
    runs = [("kit-seed", REPO / "submission", seed) for seed in (1, 2, 3, 4, 5)]
    wgan, wgan_gp = assemble(["wgan", "wgan-gp"], root / "baselines")
    runs += [("wgan", wgan, 1), ("wgan-gp", wgan_gp, 1)]
    for name, folder, seed in runs:
        team = f"{name}{seed}" if name == "kit-seed" else name
        copy = root / "teams" / team
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("samples"))
        result, log, images = evaluate_submission(copy, options, SubmissionOptions(
            limits=Limits(timeout_s=120), seed=seed, rule_check=False))
        assert result["verdict"] == "OK", result["reason"]
        run_id = results.new_run_id()
        result.update(run_id=run_id, name=team)
        write_outputs(result, log, images, root / "results" / team / run_id)
    return load_runs(root / "results")


def test_one_folder_with_five_seeds_is_one_tie_group(evaluated):
    kit_runs = [run for run in evaluated if run.name.startswith("kit-seed")]
    fids = sorted(run.metric("mnist.fid") for run in kit_runs)
    assert fids[-1] > fids[0]  # the seeds really give different samples, and scores
    rows = build_rows(kit_runs, CompetitionConfig())
    assert {row.rank_range for row in rows} == {(1, 5)} and all(row.rank_label == "1–5" for row in rows)
    assert all(row.run.interval("mnist.fid") for row in rows)


def test_generators_that_really_differ_do_not_tie(evaluated):
    by_name = {run.name: run for run in evaluated}
    assert differ(by_name["wgan"], by_name["wgan-gp"], "mnist.fid")
    rows = {row.team: row for row in build_rows(evaluated, CompetitionConfig())}
    assert rows["wgan"].rank_range != rows["wgan-gp"].rank_range
    assert not rows["wgan"].tied or rows["wgan"].rank_range[0] > rows["kit-seed1"].rank_range[1]
