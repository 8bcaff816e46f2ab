"""Synthetic result folders in the real schema."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_result(results: Path, name: str, created: str, fid: float | None = None, precision=0.5,
                 recall=0.5, verdict: str = "OK", flags=(), baseline: bool = False, log: str = "ok",
                 noise: float | None = None, final_round: str | None = None, requirements=()) -> Path:
    """One result; `noise`: bootstrap replicates of mnist.fid spread by that standard deviation."""
    run_id = created.replace("-", "").replace(":", "")[:15] + "Z-" + f"{abs(hash((name, created))) % 16**6:06x}"
    run_dir = results / name.replace("/", "_") / run_id  # the name inside may hold any text
    run_dir.mkdir(parents=True)
    ok = verdict == "OK"
    result = {
        "schema_version": 1, "run_id": run_id, "name": name, "created": created + "+00:00",
        "status": "ok" if ok else "generation_failed", "verdict": verdict,
        "reason": "generated and scored" if ok else "exit code 1",
        "metrics": {"mnist.fid": fid, "mnist.precision": precision, "mnist.recall": recall,
                    "class_coverage.digits_present": 10} if ok else {},
        "details": {"class_coverage.histogram": [0.1] * 10, "class_coverage.reference_histogram": [0.1] * 10}
        if ok else {},
        "flags": [{"code": code, "message": f"{code} detected"} for code in flags],
        "submission": {"path": f"/x/{'baselines/' if baseline else 'teams/'}{name}"},
        "requirements": list(requirements),
    }
    if noise is not None and ok:
        replicates = (fid + np.random.default_rng(abs(hash(name)) % 2**32).normal(0, noise, 200)).round(6).tolist()
        result["uncertainty"] = {"method": "bootstrap", "level": 0.95, "replicates": {"mnist": 200},
                                 "intervals": {"mnist.fid": [fid - 2 * noise, fid + 2 * noise]},
                                 "samples": {"mnist.fid": replicates}}
    if final_round is not None:
        result["round"] = {"id": final_round, "key": "0" * 64, "final": True}
    (run_dir / "result.json").write_text(json.dumps(result))
    (run_dir / "log.txt").write_text(log)
    if ok:
        Image.fromarray(np.full((62, 62), 128, np.uint8)).save(run_dir / "grid.png")
    return run_dir


@pytest.fixture
def results(tmp_path) -> Path:
    root = tmp_path / "results"
    write_result(root, "alpha", "2026-11-01T10:00:00", fid=5.0, precision=0.6, recall=0.4)
    write_result(root, "alpha", "2026-11-02T10:00:00", fid=3.0, precision=0.7, recall=0.5)
    write_result(root, "alpha", "2026-11-03T10:00:00", fid=4.0, precision=0.65, recall=0.55)
    write_result(root, "beta", "2026-11-01T12:00:00", fid=2.0, precision=0.8, recall=0.3,
                 flags=("memorisation",))
    write_result(root, "gamma", "2026-11-02T09:00:00", verdict="TIMEOUT")
    write_result(root, "vanilla", "2026-10-30T09:00:00", fid=2.5, precision=0.7, recall=0.6, baseline=True)
    return root
