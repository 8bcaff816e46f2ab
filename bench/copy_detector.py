"""The copy detector against perturbations made by other tools than its own blur.

The tests perturb copies with the detector's own Gaussian blur; a copier would use SciPy, PIL or a
JPEG encoder. For each perturbation this takes `--count` random digits of each MNIST split,
perturbs them, and reports the share the `memorisation` metric calls near-copies (flagged above 1%).

    MNIST_ROOT=../shared/data python bench/copy_detector.py [--count 1000] [--seed 11]
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import click
import numpy as np
from PIL import Image, ImageEnhance, ImageFilter
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evaluator import mnist  # noqa: E402
from evaluator.metrics import memorisation  # noqa: E402
from evaluator.metrics.context import SampleContext  # noqa: E402


def each(images: np.ndarray, change) -> np.ndarray:
    return np.stack([np.asarray(change(Image.fromarray(image)).convert("L")) for image in images])


def jpeg(image: Image.Image, quality: int = 75) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer)


def to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def perturbations(rng: np.random.Generator) -> dict:
    def noise(x, sigma):
        return to_uint8(x + rng.normal(0, sigma * 255, x.shape))

    def gauss(x):
        return ndimage.gaussian_filter(x.astype(float), (0, 1, 1))

    return {
        "Gaussian blur σ 1 (SciPy)": lambda x: to_uint8(gauss(x)),
        "GaussianBlur(1) (PIL)": lambda x: each(x, lambda i: i.filter(ImageFilter.GaussianBlur(1))),
        "3x3 box blur": lambda x: to_uint8(ndimage.uniform_filter(x.astype(float), (1, 3, 3))),
        "ImageFilter.BLUR (PIL, 5x5 ring)": lambda x: each(x, lambda i: i.filter(ImageFilter.BLUR)),
        "noise σ 0.1": lambda x: noise(x, 0.1),
        "noise σ 0.15": lambda x: noise(x, 0.15),
        "blur σ 1 then noise σ 0.05": lambda x: to_uint8(gauss(x) + rng.normal(0, 0.05 * 255, x.shape)),
        "1-px shift up (wrapped)": lambda x: np.roll(x, -1, axis=1),
        "1-px shift right (padded)": lambda x: np.pad(x, ((0, 0), (0, 0), (1, 0)))[:, :, :28],
        "1-px diagonal shift": lambda x: np.roll(x, (1, 1), axis=(1, 2)),
        "2-px shift": lambda x: np.roll(x, 2, axis=2),
        "contrast × 0.5": lambda x: to_uint8(x * 0.5),
        "Contrast(1.5) (PIL)": lambda x: each(x, lambda i: ImageEnhance.Contrast(i).enhance(1.5)),
        "gamma 2": lambda x: to_uint8(255 * (x / 255.0) ** 2),
        "JPEG quality 75": lambda x: each(x, jpeg),
        "rotation 5°": lambda x: each(x, lambda i: i.rotate(5, resample=Image.BILINEAR)),
    }


@click.command()
@click.option("--count", default=1000, show_default=True, help="Digits per split.")
@click.option("--seed", default=11, show_default=True)
@click.option("--cache-dir", default=None, help="Where the detector's calibration is cached.")
def main(count: int, seed: int, cache_dir: str | None) -> None:
    root = os.environ.get("MNIST_ROOT", str(REPO.parent / "shared" / "data"))
    rng = np.random.default_rng(seed)
    splits = {name: mnist.load_split(name, root).images for name in ("train", "test")}
    chosen = {name: images[rng.choice(len(images), count, replace=False)] for name, images in splits.items()}
    print(f"{count} digits of each split, seed {seed}; share called near-copies (flagged above "
          f"{memorisation.FLAG_FRACTION:.0%})\n")
    print("| perturbation | copies of training digits | copies of test digits |")
    print("|---|---|---|")
    for name, change in perturbations(rng).items():
        shares = []
        for images in chosen.values():
            perturbed = change(images)
            context = SampleContext(perturbed, np.full((count, 10), 0.1), np.full(10, 0.1), root, cache_dir)
            shares.append(memorisation.memorisation(context)["near_copy_fraction"])
        print(f"| {name} | {shares[0]:.1%} | {shares[1]:.1%} |")


if __name__ == "__main__":
    main()
