"""`evaluate SUBMISSION_DIR...`: the kit end to end, carrying on after failures, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from evaluator.cli import main
from evaluator.errors import ExitCode
from evaluator.results import load_schema
from evaluator.sandbox import runner

REPO = Path(__file__).resolve().parents[2]
N = 20


@pytest.fixture
def args(mnist_root, cache_dir, tmp_path):
    return ["--count", str(N), "--data-root", str(mnist_root), "--cache-dir", str(cache_dir),
            "-o", str(tmp_path / "results"), "--metrics", "fid,class_coverage", "--timeout", "120"]


@pytest.mark.skipif(runner.bubblewrap() is None, reason="bubblewrap is not installed")
def test_kit_and_a_broken_team_in_one_run(args, tmp_path):
    broken = tmp_path / "broken-team"
    shutil.copytree(REPO / "submission", broken, ignore=shutil.ignore_patterns("samples"))
    (broken / "generate.py").write_text("raise SystemExit('no samples today')")
    outcome = CliRunner().invoke(main, [str(broken), str(REPO / "submission"), *args],
                                 catch_exceptions=False)
    assert outcome.exit_code == ExitCode.SUBMISSION_FAILED, outcome.output
    assert "summary" in outcome.output and "CRASH" in outcome.output and "OK" in outcome.output
    [kit_dir] = (tmp_path / "results" / "submission").iterdir()
    result = json.loads((kit_dir / "result.json").read_text())
    jsonschema.validate(result, load_schema())
    assert result["verdict"] == "OK" and result["rule_check"]["ok"]
    assert (kit_dir / "grid.png").stat().st_size > 0 and "wrote 20 PNGs" in (kit_dir / "log.txt").read_text()
    assert len(result["submission"]["sha256"]) == 64 and result["generation"]["wall_time_s"] > 0
    [broken_dir] = (tmp_path / "results" / "broken-team").iterdir()
    failed = json.loads((broken_dir / "result.json").read_text())
    jsonschema.validate(failed, load_schema())
    assert failed["verdict"] == "CRASH" and failed["status"] == "generation_failed"
    assert "no samples today" in (broken_dir / "log.txt").read_text()


def test_without_bubblewrap_refuses_with_a_hint(args, monkeypatch):
    monkeypatch.setattr(runner, "bubblewrap", lambda: None)
    outcome = CliRunner().invoke(main, [str(REPO / "submission"), *args])
    assert outcome.exit_code == ExitCode.SANDBOX_UNAVAILABLE
    assert "apt-get install bubblewrap" in outcome.output and "--no-sandbox" in outcome.output


def test_no_sandbox_runs_the_kit_directly(args, tmp_path):
    outcome = CliRunner().invoke(main, [str(REPO / "submission"), *args, "--no-sandbox", "--name", "kit"],
                                 catch_exceptions=False)
    assert outcome.exit_code == ExitCode.OK, outcome.output
    assert "UNSAFE" in outcome.output or "--no-sandbox" in outcome.output
    [run_dir] = (tmp_path / "results" / "kit").iterdir()
    result = json.loads((run_dir / "result.json").read_text())
    assert result["generation"]["limits_in_force"]["sandbox"] == "none"


def test_samples_and_submissions_are_exclusive(args, tmp_path):
    outcome = CliRunner().invoke(main, [str(REPO / "submission"), "--samples", str(tmp_path), *args])
    assert outcome.exit_code == ExitCode.USAGE_ERROR and "either" in outcome.output
    outcome = CliRunner().invoke(main, [*args])
    assert outcome.exit_code == ExitCode.USAGE_ERROR


def test_bad_memory_value(args):
    outcome = CliRunner().invoke(main, [str(REPO / "submission"), *args, "--memory", "lots"])
    assert outcome.exit_code == ExitCode.USAGE_ERROR and "not a size" in outcome.output


def test_a_mistyped_folder_is_a_usage_error_and_writes_nothing(args, tmp_path):
    outcome = CliRunner().invoke(main, [str(REPO / "submission"), str(tmp_path / "tema-a"), *args])
    assert outcome.exit_code == ExitCode.USAGE_ERROR and "tema-a (not found)" in outcome.output
    assert not (tmp_path / "results").exists()


@pytest.mark.skipif(runner.bubblewrap() is None, reason="bubblewrap is not installed")
@pytest.mark.parametrize("policy,shown", [("unranked", "unranked (rule violation)"),
                                          ("disqualify", "disqualified (rule violation)")])
def test_the_summary_shows_the_rule_violation_policy(args, tmp_path, policy, shown):
    flipped = tmp_path / "flipped"
    shutil.copytree(REPO / "submission", flipped, ignore=shutil.ignore_patterns("samples"))
    script = (flipped / "generate.py").read_text().replace(
        "pixels = to_uint8(images, config.get(\"pixels\"))",
        "pixels = to_uint8(images, config.get(\"pixels\"))[:, :, ::-1].copy()  # mirrored: not G's output")
    assert "[:, :, ::-1]" in script
    (flipped / "generate.py").write_text(script)
    config = tmp_path / "competition.toml"
    config.write_text(f'rule_violation = "{policy}"\n')
    outcome = CliRunner().invoke(main, [str(flipped), *args, "--config", str(config)], catch_exceptions=False,
                                 env={"COLUMNS": "200"})
    assert outcome.exit_code == ExitCode.OK, outcome.output
    assert shown in outcome.output and "flag rule_violation" in outcome.output


def test_a_bad_config_is_a_usage_error_naming_the_line(args, tmp_path):
    config = tmp_path / "competition.toml"
    config.write_text('title = "x"\nrule_violation = "ban"\n')
    outcome = CliRunner().invoke(main, [str(REPO / "submission"), *args, "--config", str(config)])
    assert outcome.exit_code == ExitCode.USAGE_ERROR and "line 2" in outcome.output
