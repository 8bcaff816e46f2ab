"""Benchmark of the evaluator core against the reference implementations, in one run.

    MNIST_ROOT=../shared/data python bench/bench_core.py [--repeats 3] [--out bench/results-core.md]

Measures, on 10K x 64 (real MNIST features) and 10K x 2048 (synthetic) features:
FID (ours vs pytorch-fid's calculate_frechet_distance), precision/recall (our k-d tree and
brute force vs prdc), and the whole quick evaluation of a 10K-PNG folder (`evaluate`).
Prints a markdown table with ratios; the README's performance section is copied from it.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evaluator import mnist  # noqa: E402
from evaluator.features import make_extractor  # noqa: E402
from evaluator.metrics import knn  # noqa: E402
from evaluator.metrics.context import FeatureContext, FeatureReference  # noqa: E402
from evaluator.metrics.fid import frechet_distance, gaussian_fit, psd_sqrt  # noqa: E402


def best_of(repeats: int, function) -> tuple[float, object]:
    """Best time of at least `repeats` runs; fast functions run until 1 s has passed."""
    times, value = [], None
    while len(times) < repeats or (sum(times) < 1.0 and len(times) < 200):
        start = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - start)
    return min(times), value


def feature_sets(root: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    extractor = make_extractor("mnist")
    real = extractor(mnist.load_split("test", root).images).features
    fake = extractor(mnist.load_split("train", root).images[:10_000]).features
    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((2048, 2048)).astype(np.float32) / np.sqrt(2048)
    real_2048 = np.maximum(rng.standard_normal((10_000, 2048)).astype(np.float32) @ mixing, 0)
    fake_2048 = np.maximum((rng.standard_normal((10_000, 2048)).astype(np.float32) * 1.05 + 0.05) @ mixing, 0)
    return {"10K x 64 (MNIST features)": (real, fake), "10K x 2048 (synthetic)": (real_2048, fake_2048)}


def bench_fid(rows: list, name: str, real: np.ndarray, fake: np.ndarray, repeats: int) -> None:
    from pytorch_fid.fid_score import calculate_frechet_distance

    mu1, s1 = gaussian_fit(fake)
    mu2, s2 = gaussian_fit(real)
    root = psd_sqrt(s2)
    t_theirs, theirs = best_of(repeats, lambda: calculate_frechet_distance(mu1, s1, mu2, s2))
    t_ours, ours = best_of(repeats, lambda: frechet_distance(mu1, s1, mu2, s2))
    t_cached, _ = best_of(repeats, lambda: frechet_distance(mu1, s1, mu2, s2, root))
    rel = abs(ours - theirs) / max(abs(theirs), 1e-12)
    rows.append((f"FID {name}", "pytorch-fid calculate_frechet_distance", t_theirs, "1.0x", f"{theirs:.6g}"))
    rows.append((f"FID {name}", "ours (eigh, both sides)", t_ours, f"{t_theirs / t_ours:.1f}x",
                 f"{ours:.6g} (rel. diff {rel:.1e})"))
    rows.append((f"FID {name}", "ours (reference sqrt cached, as in evaluate)", t_cached,
                 f"{t_theirs / t_cached:.1f}x", ""))


def bench_pr(rows: list, name: str, real: np.ndarray, fake: np.ndarray, repeats: int) -> None:
    from prdc import compute_prdc

    t_prdc, theirs = best_of(repeats, lambda: compute_prdc(real, fake, 3))
    rows.append((f"P/R/D/C {name}", "prdc compute_prdc (k=3)", t_prdc, "1.0x",
                 "P {precision:.4f} R {recall:.4f} D {density:.4f} C {coverage:.4f}".format(**theirs)))
    backends = [knn.BruteForceBackend()] + ([knn.KDTreeBackend()] if real.shape[1] <= 64 else [])
    for backend in backends:
        def scratch():
            reference = FeatureReference.from_features(real, (3,), backend)
            return _pr(FeatureContext("b", fake, reference, 3, backend))

        reference = FeatureReference.from_features(real, (3,), backend)
        t_scratch, values = best_of(repeats, scratch)
        t_cached, _ = best_of(repeats, lambda: _pr(FeatureContext("b", fake, reference, 3, backend)))
        same = "same as prdc" if _matches(values, theirs) else f"DIFFERS: {values}"
        rows.append((f"P/R/D/C {name}", f"ours, {backend.name}, from scratch", t_scratch,
                     f"{t_prdc / t_scratch:.1f}x", same))
        rows.append((f"P/R/D/C {name}", f"ours, {backend.name}, reference radii cached", t_cached,
                     f"{t_prdc / t_cached:.1f}x", ""))


def _pr(context: FeatureContext) -> dict:
    from evaluator.metrics.density_coverage import density_coverage
    from evaluator.metrics.precision_recall import precision_recall_metric

    return {**precision_recall_metric(context), **density_coverage(context)}


def _matches(ours: dict, theirs: dict) -> bool:
    # prdc's precision/recall use strict `<`, ours `<=`; they agree unless a tie sits on a radius.
    return all(abs(ours[key] - float(theirs[key])) < 1e-9 for key in ours)


def bench_quick_evaluation(rows: list, root: str, repeats: int) -> None:
    """The kit's generate.py (trained vanilla G) writes 10K PNGs; `evaluate` scores them."""
    with tempfile.TemporaryDirectory() as tmp:
        kit = Path(tmp) / "kit"
        shutil.copytree(REPO / "submission", kit)
        t_generate, _ = best_of(repeats, lambda: subprocess.run(
            [sys.executable, "generate.py", "--batch_size", "2048"], cwd=kit, check=True,
            capture_output=True))
        rows.append(("generate 10K PNGs", "the kit's `generate.py --batch_size 2048` (CPU, process)",
                     t_generate, "", "model load + sampling + PNG writing"))
        samples = kit / "samples"
        env = {**os.environ, "MNIST_ROOT": root, "EVALUATOR_CACHE": str(Path(tmp) / "cache")}
        command = ["evaluate", "--samples", str(samples), "--json", str(Path(tmp) / "r.json")]

        def run():
            subprocess.run(command, env=env, check=True, capture_output=True)

        t_cold, _ = best_of(1, run)
        t_warm, _ = best_of(repeats, run)
    rows.append(("quick evaluation, 10K GAN PNGs", "`evaluate --samples` (process), cold reference cache",
                 t_cold, "", "includes computing the reference statistics"))
    rows.append(("quick evaluation, 10K GAN PNGs", "`evaluate --samples` (process), warm cache", t_warm,
                 "", "validate + features + all metrics"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results-core.md")
    args = parser.parse_args()
    root = str(mnist.resolve_root())
    rows: list = []
    sets = feature_sets(root)
    for name, (real, fake) in sets.items():
        bench_fid(rows, name, real, fake, args.repeats)
    for name, (real, fake) in sets.items():
        bench_pr(rows, name, real, fake, max(1, args.repeats - 1))
    bench_quick_evaluation(rows, root, args.repeats)

    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads); best of {args.repeats} runs.",
        "",
        "| task | implementation | seconds | speed-up | value |",
        "|---|---|---:|---:|---|",
    ]
    lines += [f"| {task} | {impl} | {seconds:.4f} | {ratio} | {note} |"
              for task, impl, seconds, ratio, note in rows]
    table = "\n".join(lines)
    print(table)
    args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
