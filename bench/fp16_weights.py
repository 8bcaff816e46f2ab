"""Does storing the reference generators in float16 move their scores? The float32 originals are in
git history (before the weights store, commit 379729a); each is sampled with the same latents as
its float16 copy, and the difference is set beside the run-to-run noise (the float32 generator
under five latent seeds). MNIST feature space, 10,000 samples, the kit's pixel mapping.

    MNIST_ROOT=../shared/data python bench/fp16_weights.py [--recipe wgan-gp ...]
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from baselines.kit import Generator  # noqa: E402
from baselines.recipes import find_weights, recipes  # noqa: E402
from evaluator.pipeline import EvaluationOptions, score_images  # noqa: E402
from pixel_mapping import linear, sample  # noqa: E402  (bench/, the script's own folder)

FLOAT32_COMMIT = "379729a"  # the last commit with each folder's own float32 checkpoints


def float32_state(recipe: str) -> dict[str, torch.Tensor]:
    blob = subprocess.run(["git", "show", f"{FLOAT32_COMMIT}:baselines/{recipe}/checkpoints/G.pth"],
                          cwd=REPO, capture_output=True, check=True).stdout
    return torch.load(io.BytesIO(blob), weights_only=True)


def fid(state: dict[str, torch.Tensor], seed: int, count: int = 10_000) -> float:
    generator = Generator()
    generator.load_state_dict(state)
    images = linear(sample(generator.eval(), count, seed)).to(torch.uint8).numpy()
    return score_images(images, EvaluationOptions(metrics=("fid",), bootstrap=0))["metrics"]["mnist.fid"]


@click.command()
@click.option("--recipe", "names", multiple=True, default=("vanilla", "wgan-gp", "fgan-js"), show_default=True)
def main(names: tuple[str, ...]) -> None:
    print("| recipe | float32 | float16, same latents | difference | float32 over seeds 0-4 (spread) |")
    print("|---|---:|---:|---:|---|")
    for name in names:
        full = float32_state(name)
        half = torch.load(find_weights(recipes()[name].files["G.pth"]), weights_only=True)
        largest = max(float((full[k] - half[k].float()).abs().max()) for k in full)
        seeds = [fid(full, seed) for seed in range(5)]
        half_fid = fid(half, 0)
        print(f"| {name} | {seeds[0]:.3f} | {half_fid:.3f} | {half_fid - seeds[0]:+.3f} | "
              f"{np.mean(seeds):.3f} ± {np.std(seeds, ddof=1):.3f} ({min(seeds):.3f}–{max(seeds):.3f}); "
              f"largest weight change {largest:.1e} |", flush=True)


if __name__ == "__main__":
    main()
