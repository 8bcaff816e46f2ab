"""The `evaluate` command: outputs, documented exit codes, no tracebacks."""

from __future__ import annotations

import json

import jsonschema
import pytest
import torch
from click.testing import CliRunner

from evaluator.cli import main
from evaluator.errors import ExitCode
from evaluator.results import load_schema
from evaluator.samples import write_samples

N = 300


@pytest.fixture
def base_args(mnist_root, cache_dir, tmp_path):
    return ["--count", str(N), "--data-root", str(mnist_root), "--cache-dir", str(cache_dir),
            "-o", str(tmp_path / "results")]


def run(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_writes_result_and_prints_table(test_digits, base_args, tmp_path):
    samples = write_samples(test_digits[:N], tmp_path / "team-a")
    outcome = run(["--samples", str(samples), *base_args])
    assert outcome.exit_code == ExitCode.OK, outcome.output
    assert "mnist.fid" in outcome.output and "result written to" in outcome.output
    [path] = (tmp_path / "results" / "team-a").glob("*/result.json")
    result = json.loads(path.read_text())
    jsonschema.validate(result, load_schema())
    assert result["name"] == "team-a" and result["run_id"] == path.parent.name
    assert oct(path.stat().st_mode & 0o777) == "0o644"  # like every other output


def test_json_path_and_metric_subset(test_digits, base_args, tmp_path):
    samples = write_samples(test_digits[:N], tmp_path / "s")
    target = tmp_path / "out.json"
    outcome = run(["--samples", str(samples), *base_args, "--json", str(target),
                   "--metrics", "fid,class_coverage"])
    assert outcome.exit_code == 0, outcome.output
    names = set(json.loads(target.read_text())["metrics"])
    assert "mnist.fid" in names and "mnist.precision" not in names
    assert not any(name.startswith("memorisation") for name in names)


def test_invalid_samples_exit_3_with_report(base_args, tmp_path):
    (tmp_path / "empty").mkdir()
    outcome = run(["--samples", str(tmp_path / "empty"), *base_args])
    assert outcome.exit_code == ExitCode.INVALID_SAMPLES
    assert "missing (expected file is missing): 300: 0–299.png" in outcome.output
    assert "Traceback" not in outcome.output


def test_missing_mnist_exit_4(test_digits, cache_dir, tmp_path):
    samples = write_samples(test_digits[:N], tmp_path / "s")
    outcome = run(["--samples", str(samples), "--count", str(N), "--data-root", str(tmp_path / "none"),
                   "--cache-dir", str(cache_dir), "-o", str(tmp_path / "r")])
    assert outcome.exit_code == ExitCode.DATA_NOT_FOUND
    assert "MNIST not found" in outcome.output and "Traceback" not in outcome.output


def test_usage_errors_exit_2(base_args, tmp_path):
    (tmp_path / "s").mkdir()
    outcome = run(["--samples", str(tmp_path / "s"), *base_args, "--metrics", "fid,bogus"])
    assert outcome.exit_code == ExitCode.USAGE_ERROR and "bogus" in outcome.output
    outcome = run([*base_args])
    assert outcome.exit_code == ExitCode.USAGE_ERROR


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_gpu_without_cuda_is_a_usage_error(base_args, tmp_path):
    (tmp_path / "s").mkdir()
    outcome = run(["--samples", str(tmp_path / "s"), *base_args, "--gpu"])
    assert outcome.exit_code == ExitCode.USAGE_ERROR and "CUDA is not available" in outcome.output


def test_the_evaluators_own_messages_keep_their_newlines(test_digits, cache_dir, tmp_path):
    samples = write_samples(test_digits[:N], tmp_path / "s")
    outcome = run(["--samples", str(samples), "--count", str(N), "--data-root", str(tmp_path / "none"),
                   "--cache-dir", str(cache_dir), "-o", str(tmp_path / "r")])
    assert "Missing:\n  - " in outcome.output and "\\n" not in outcome.output


def test_a_mistyped_samples_path_is_a_usage_error_and_writes_nothing(base_args, tmp_path):
    outcome = run(["--samples", str(tmp_path / "sampels"), *base_args])
    assert outcome.exit_code == ExitCode.USAGE_ERROR and "sampels is not found" in outcome.output
    assert not (tmp_path / "results").exists()


def test_ctrl_c_exits_130(base_args, tmp_path, monkeypatch):
    import evaluator.pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluator.pipeline, "evaluate_samples", interrupted)
    (tmp_path / "s").mkdir()
    outcome = run(["--samples", str(tmp_path / "s"), *base_args])
    assert outcome.exit_code == ExitCode.INTERRUPTED == 130 and "interrupted" in outcome.output


@pytest.mark.parametrize("command", [["evaluator.cli", "--help"], ["evaluator.cli", "--samples", "/no/such"],
                                     ["leaderboard.cli", "-h"], ["leaderboard.cli", "build", "--help"]])
def test_help_and_usage_errors_import_no_torch(command):
    """What keeps `--help` fast: neither command imports torch before it has work to do."""
    import subprocess
    import sys

    module, *args = command
    probe = (f"import sys\nsys.argv = ['x', *{args!r}]\nfrom {module} import main\n"
             "try:\n    main()\nexcept SystemExit as stop:\n    code = stop.code\n"
             "assert 'torch' not in sys.modules, 'torch was imported'\nprint('exit', code)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] in ("exit 0", "exit 2")
