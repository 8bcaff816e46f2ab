"""The fixed-generator rule: checkpoints/G.pth must hold exactly the kit Generator's tensors."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from evaluator.sandbox.limits import Limits
from evaluator.sandbox.runner import run_sandboxed, unmount

EXPECTED_SHAPES = {
    "fc1.weight": [256, 100], "fc1.bias": [256],
    "fc2.weight": [512, 256], "fc2.bias": [512],
    "fc3.weight": [1024, 512], "fc3.bias": [1024],
    "fc4.weight": [784, 1024], "fc4.bias": [784],
}
SCRIPT = Path(__file__).with_name("inspect_checkpoint.py")


def compare_shapes(shapes: dict[str, list[int]]) -> list[str]:
    """Violations of the fixed architecture (a `module.` prefix is accepted)."""
    shapes = {key.removeprefix("module."): value for key, value in shapes.items()}
    problems = [f"missing tensor {k}" for k in EXPECTED_SHAPES if k not in shapes]
    problems += [f"unexpected tensor {k} {v}" for k, v in shapes.items() if k not in EXPECTED_SHAPES]
    problems += [f"{k} has shape {shapes[k]}, expected {v}" for k, v in EXPECTED_SHAPES.items()
                 if k in shapes and shapes[k] != v]
    return problems


def check_generator(staged: Path, sandbox: bool, timeout_s: float = 120.0) -> dict:
    """Inspect G.pth inside a sandbox of its own; returns {'ok', 'violations', 'error'}."""
    if not (staged / "checkpoints" / "G.pth").is_file():
        return {"ok": False, "violations": ["checkpoints/G.pth is missing"], "error": None}
    # A throwaway copy of the staged folder, with our inspection script added beside it.
    probe = staged.parent / "probe"
    if probe.exists():
        shutil.rmtree(probe)
    shutil.copytree(staged, probe, ignore=shutil.ignore_patterns("samples"))
    shutil.copy(SCRIPT, probe / "_inspect_checkpoint.py")
    outcome = run_sandboxed(probe, [sys.executable, "_inspect_checkpoint.py"],
                            Limits(timeout_s=timeout_s), sandbox=sandbox)
    unmount(probe / "samples")
    shutil.rmtree(probe, ignore_errors=True)
    line = next((l for l in outcome.log_tail.splitlines() if l.startswith("SHAPES ")), None)
    if line is None:
        return {"ok": False, "violations": [], "error": "the checkpoint inspection did not finish"}
    report = json.loads(line[len("SHAPES "):])
    if not report["ok"]:
        return {"ok": False, "violations": [], "error": f"G.pth cannot be loaded as plain tensors: "
                                                          f"{report['error']}"}
    violations = compare_shapes(report["shapes"])
    return {"ok": not violations, "violations": violations, "error": None}
