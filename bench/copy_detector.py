"""The copy detector against perturbations made by other tools than its own blur.

The tests perturb copies with the detector's own Gaussian blur; a copier would use SciPy, PIL or a
JPEG encoder. For each perturbation this takes `--count` random digits of each MNIST split,
perturbs them, and reports the share the `memorisation` metric calls near-copies (flagged above 1%).

    MNIST_ROOT=../shared/data python bench/copy_detector.py [--count 1000] [--seed 11]
    MNIST_ROOT=../shared/data python bench/copy_detector.py --compare-shifts 1,2,3

`--compare-shifts` instead builds and calibrates the detector afresh (in a temporary cache) for
each largest shift, and reports its thresholds, the calibration time, the share of genuine test
digits it flags against the training split, the share of the kit's 10K samples it flags and the
time that takes, and the share of 2-px and (3, -2)-px shifted copies it catches.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import torch
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


def kit_samples(count: int = 10_000, seed: int = 0) -> np.ndarray:
    """The kit's generator written the kit's way (linear map), as uint8 digits."""
    from baselines.kit import Generator

    generator = Generator()
    state = torch.load(REPO / "submission" / "checkpoints" / "G.pth", map_location="cpu", weights_only=True)
    generator.load_state_dict({key: value.float() for key, value in state.items()})
    torch.manual_seed(seed)
    with torch.no_grad():
        outputs = generator(torch.randn(count, 100))
    return ((outputs + 1) * 127.5).round().to(torch.uint8).view(-1, 28, 28).numpy()


def shift_table(shifts: list[int], root: str, chosen: dict[str, np.ndarray]) -> None:
    """Each largest shift: the detector rebuilt and calibrated from scratch, then measured."""
    samples = kit_samples()
    test_digits = mnist.load_split("test", root).images
    print("| largest shift | calibration s | training thresholds (0-9) | test digits flagged against train "
          "| kit 10K flagged | kit 10K s | 2-px copies | (3, -2)-px copies |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for largest in shifts:
        memorisation.MAX_SHIFT = largest
        memorisation.SHIFTS = tuple((dy, dx) for dy in range(-largest, largest + 1)
                                    for dx in range(-largest, largest + 1))
        memorisation.copy_detector.cache_clear()
        with tempfile.TemporaryDirectory() as cache_dir:
            started = time.perf_counter()
            detector = memorisation.copy_detector(root, cache_dir)
            calibration_s = time.perf_counter() - started
            matches = detector.train.match(test_digits)
            originals = (matches.similarity > detector.train_thresholds[detector.train.labels[matches.index]]).mean()

            def share(images: np.ndarray) -> float:
                context = SampleContext(images, np.full((len(images), 10), 0.1), np.full(10, 0.1), root, cache_dir)
                return memorisation.memorisation(context)["near_copy_fraction"]

            started = time.perf_counter()
            kit = share(samples)
            kit_s = time.perf_counter() - started
            two = share(np.roll(chosen["train"], 2, axis=2))
            three = share(np.roll(chosen["train"], (3, -2), axis=(1, 2)))
        thresholds = " ".join(f"{t:.4f}" for t in detector.train_thresholds)
        print(f"| {largest} | {calibration_s:.1f} | {thresholds} | {originals:.2%} | {kit:.2%} | {kit_s:.1f} "
              f"| {two:.1%} | {three:.1%} |")


@click.command()
@click.option("--count", default=1000, show_default=True, help="Digits per split.")
@click.option("--seed", default=11, show_default=True)
@click.option("--cache-dir", default=None, help="Where the detector's calibration is cached.")
@click.option("--compare-shifts", default=None, help="Comma-separated largest shifts to compare, e.g. 1,2,3.")
def main(count: int, seed: int, cache_dir: str | None, compare_shifts: str | None) -> None:
    root = os.environ.get("MNIST_ROOT", str(REPO.parent / "shared" / "data"))
    rng = np.random.default_rng(seed)
    splits = {name: mnist.load_split(name, root).images for name in ("train", "test")}
    chosen = {name: images[rng.choice(len(images), count, replace=False)] for name, images in splits.items()}
    if compare_shifts:
        print(f"{count} training digits for the shifted copies, seed {seed}; CPU\n")
        shift_table([int(value) for value in compare_shifts.split(",")], root, chosen)
        return
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
