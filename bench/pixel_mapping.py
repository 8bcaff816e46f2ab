"""How the kit writes a pixel, measured: the same generator outputs mapped three ways, scored in each
feature space (FID against the 10K MNIST test digits).

- linear: [-1, 1] onto [0, 255] (the kit's `to_uint8`);
- clamp: the course template's `save_image(x)`: x * 255 + 0.5 clamped to [0, 255], negative
  outputs black;
- minmax: `save_image(x, normalize=True)`: each image stretched from its own min to its max;
- linear-cut: linear, then every pixel below 10/255 set to 0 (MNIST has 0.7% of its pixels at
  1-9/255, a linear map of the tanh outputs about 12%: the faint haze).

    MNIST_ROOT=../shared/data python bench/pixel_mapping.py [--recipe kit] [--count 10000]
        [--inception-count 2000]

The Inception space costs about 9 minutes per 10K images on a 2-core CPU, so it scores the first
--inception-count images of each mapping (every mapping the same latents); FID's bias at a small N
is common to the three, the ordering and the gaps are what this measures.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from baselines.kit import LATENT_DIM, kit_model  # noqa: E402
from baselines.recipes import find_weights, recipes  # noqa: E402
from evaluator.pipeline import EvaluationOptions, score_images  # noqa: E402

KIT_G = REPO / "submission" / "checkpoints" / "G.pth"


def linear(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1) * 127.5).round()


def clamp(x: torch.Tensor) -> torch.Tensor:
    return (x * 255 + 0.5).clamp(0, 255).floor()


def minmax(x: torch.Tensor) -> torch.Tensor:
    flat = x.reshape(len(x), -1)
    low, high = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - low) / (high - low).clamp_min(1e-5) * 255 + 0.5).clamp(0, 255).floor().reshape(x.shape)


def linear_cut(x: torch.Tensor) -> torch.Tensor:
    pixels = linear(x)
    return torch.where(pixels < 10, torch.zeros_like(pixels), pixels)


MAPPINGS = {"linear": linear, "clamp": clamp, "minmax": minmax, "linear-cut": linear_cut}


def generator_path(recipe: str) -> Path:
    """The kit's G, a recipe's G, or a G.pth file (a training run's export)."""
    if recipe == "kit":
        return KIT_G
    if recipe.endswith(".pth") and Path(recipe).is_file():
        return Path(recipe)
    return find_weights(recipes()[recipe].files["G.pth"])


@torch.inference_mode()
def sample(generator: torch.nn.Module, count: int, seed: int) -> torch.Tensor:
    """`count` raw outputs in [-1, 1], (N, 28, 28), from seeded latents drawn in chunks."""
    torch.manual_seed(seed)
    return torch.cat([generator(torch.randn(min(2500, count - start), LATENT_DIM)).float()
                      for start in range(0, count, 2500)]).reshape(-1, 28, 28)


def outputs(recipe: str, count: int, seed: int) -> torch.Tensor:
    return sample(kit_model().load_generator(str(generator_path(recipe)), torch.device("cpu")), count, seed)


@click.command()
@click.option("--recipe", default="kit", show_default=True, help="A baselines/ recipe, the kit's G, or a G.pth file.")
@click.option("--count", default=10_000, show_default=True)
@click.option("--inception-count", default=2000, show_default=True, help="0 skips the Inception space.")
@click.option("--seed", default=0, show_default=True)
@click.option("--mapping", "names", multiple=True, type=click.Choice(list(MAPPINGS)), default=tuple(MAPPINGS),
              show_default=True)
def main(recipe: str, count: int, inception_count: int, seed: int, names: tuple[str, ...]) -> None:
    x = outputs(recipe, count, seed)
    pixels = linear(x)
    dark = float(((pixels >= 1) & (pixels <= 9)).float().mean())
    print(f"{recipe}: {count} samples, seed {seed}; {dark:.1%} of linear pixels at 1-9/255")
    print("| mapping | MNIST FID | Inception FID (first %d) |\n|---|---:|---:|" % inception_count)
    for name in names:
        images = MAPPINGS[name](x).to(torch.uint8).numpy()
        mnist_fid = score_images(images, EvaluationOptions(expected_count=count, metrics=("fid",),
                                                           bootstrap=0))["metrics"]["mnist.fid"]
        inception = "—"
        if inception_count:
            options = EvaluationOptions(expected_count=inception_count, feature_spaces=("inception",),
                                        metrics=("fid",), bootstrap=0)
            inception = f"{score_images(np.ascontiguousarray(images[:inception_count]), options)['metrics']['inception.fid']:.2f}"
        print(f"| {name} | {mnist_fid:.3f} | {inception} |", flush=True)


if __name__ == "__main__":
    main()
