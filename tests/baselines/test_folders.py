"""Every reference folder is a complete submission whose code is the kit's."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from baselines.folders import DERIVED, KIT_FILES

REPO = Path(__file__).resolve().parents[2]
FOLDERS = sorted(p.parent.parent for p in (REPO / "baselines").glob("*/checkpoints/manifest.json"))


def test_there_are_reference_folders():
    assert len(FOLDERS) >= 8


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_folder_is_a_complete_submission_with_the_kit_code(folder):
    for name in KIT_FILES:
        assert (folder / name).read_bytes() == (REPO / "submission" / name).read_bytes(), name
    manifest = json.loads((folder / "checkpoints" / "manifest.json").read_text())
    for name, digest in manifest["files"].items():
        if (folder / "checkpoints" / name).exists():
            assert hashlib.sha256((folder / "checkpoints" / name).read_bytes()).hexdigest() == digest
    state = torch.load(folder / "checkpoints" / "G.pth", weights_only=True)
    assert state["fc1.weight"].shape == (256, 100) and state["fc4.weight"].shape == (784, 1024)
    if folder.name in DERIVED:
        sampling = json.loads((folder / "checkpoints" / "sampling.json").read_text())
        assert sampling == DERIVED[folder.name]["sampling"]


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_generate_py_gives_valid_output_in_the_sandbox(folder, mnist_root, cache_dir):
    from evaluator.pipeline import EvaluationOptions
    from evaluator.sandbox.limits import Limits
    from evaluator.sandbox.runner import bubblewrap
    from evaluator.submission import SubmissionOptions, evaluate_submission

    options = EvaluationOptions(expected_count=24, data_root=str(mnist_root), cache_dir=str(cache_dir),
                                metrics=("class_coverage",))
    result, log, _ = evaluate_submission(folder, options, SubmissionOptions(
        batch_size=16, limits=Limits(timeout_s=300), rule_check=False, sandbox=bubblewrap() is not None))
    assert result["verdict"] == "OK", (result["reason"], log)
    assert "wrote 24 PNGs" in log
