"""Verdict classification, the requirements comparison and the fixed-generator rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evaluator.sandbox.requirements import check_requirements
from evaluator.sandbox.rule_check import EXPECTED_SHAPES, check_generator, compare_shapes
from evaluator.sandbox.runner import RunOutcome, bubblewrap
from evaluator.sandbox.verdict import Verdict, classify

REPO = Path(__file__).resolve().parents[2]


def outcome(**kwargs) -> RunOutcome:
    defaults = dict(exit_code=0, signal=None, timed_out=False, oom_killed=False, wall_time_s=1.0,
                    log_tail="", log_bytes=0)
    return RunOutcome(**{**defaults, **kwargs})


@pytest.mark.parametrize("run,gpu,verdict", [
    (outcome(), False, None),
    (outcome(timed_out=True, signal=9, exit_code=None), False, Verdict.TIMEOUT),
    (outcome(oom_killed=True, exit_code=None, signal=9), False, Verdict.OUT_OF_MEMORY),
    (outcome(exit_code=1, log_tail="MemoryError"), False, Verdict.OUT_OF_MEMORY),
    (outcome(exit_code=1, log_tail="AssertionError: Torch not compiled with CUDA enabled"), False,
     Verdict.NEEDS_GPU),
    (outcome(exit_code=1, log_tail="RuntimeError: Found no NVIDIA driver on your system."), False,
     Verdict.NEEDS_GPU),
    (outcome(exit_code=1, log_tail="RuntimeError: Found no NVIDIA driver on your system."), True,
     Verdict.CRASH),
    (outcome(exit_code=None, signal=11), False, Verdict.CRASH),
    (outcome(exit_code=2, log_tail="usage: generate.py [-h]\nerror: unrecognized arguments"), False,
     Verdict.CRASH),
    (outcome(exit_code=1, sandbox_error="bwrap: Can't mount proc"), False, Verdict.SANDBOX_ERROR),
])
def test_classify(run, gpu, verdict):
    decided = classify(run, gpu, timeout_s=60)
    assert (decided[0] if decided else None) == verdict


def test_crash_reason_names_the_signal_and_the_last_line():
    assert classify(outcome(exit_code=None, signal=11), False, 60)[1] == "killed by SIGSEGV"
    reason = classify(outcome(exit_code=3, log_tail="Traceback\nValueError: bad\n"), False, 60)[1]
    assert reason == "exit code 3: ValueError: bad"


def test_requirements_missing_conflicting_and_unparsed(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("numpy\ntorch==1.0.0\ndatetime==4.3.0\n--extra-index-url https://x\nnot a req!!\n"
                    "pywin32; sys_platform == 'win32'\n# comment\n")
    warnings = [(w["package"], w["problem"]) for w in check_requirements(path)]
    assert ("torch", "conflict") in warnings and ("datetime", "missing") in warnings
    assert ("numpy", "conflict") not in warnings and ("numpy", "missing") not in warnings
    assert sum(1 for _, problem in warnings if problem == "unparsed") == 2
    assert not any(package == "pywin32" for package, _ in warnings)
    assert check_requirements(tmp_path / "absent.txt")[0]["problem"] == "missing_file"


def test_compare_shapes():
    assert compare_shapes(EXPECTED_SHAPES) == []
    assert compare_shapes({f"module.{k}": v for k, v in EXPECTED_SHAPES.items()}) == []
    latent_150 = {**EXPECTED_SHAPES, "fc1.weight": [256, 150]}
    assert compare_shapes(latent_150) == ["fc1.weight has shape [256, 150], expected [256, 100]"]
    with_bn = {**EXPECTED_SHAPES, "bn1.weight": [256]}
    assert compare_shapes(with_bn) == ["unexpected tensor bn1.weight [256]"]


@pytest.mark.skipif(bubblewrap() is None, reason="bubblewrap is not installed")
def test_rule_check_runs_in_the_sandbox(tmp_path):
    from evaluator.sandbox.staging import stage_submission

    staged = stage_submission(REPO / "submission", tmp_path / "ok")
    assert check_generator(staged.directory, sandbox=True) == {"ok": True, "violations": [], "error": None}
    team = tmp_path / "team"
    (team / "checkpoints").mkdir(parents=True)
    (team / "generate.py").write_text("")
    state = {k: torch.zeros(v) for k, v in EXPECTED_SHAPES.items()}
    state["fc1.weight"] = torch.zeros(256, 150)
    torch.save(state, team / "checkpoints" / "G.pth")
    report = check_generator(stage_submission(team, tmp_path / "bad").directory, sandbox=True)
    assert not report["ok"] and "fc1.weight" in report["violations"][0]
    torch.save({"model": torch.nn.Linear(2, 2)}, team / "checkpoints" / "G.pth")  # a pickled module
    report = check_generator(stage_submission(team, tmp_path / "pickled").directory, sandbox=True)
    assert not report["ok"] and "cannot be loaded as plain tensors" in report["error"]
