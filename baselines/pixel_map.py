"""`choose-pixel-map RECIPE`: choose how a recipe's generator outputs become pixels, on the
held-out training digits its trainer kept apart (never the test split), and record the choice in
its manifest, so that the assembled folder writes its samples that way.

How a pixel is written moves FID by points in either direction (clamping took 12.9 off one
generator's Inception FID and added 12.5 to another's, `bench/pixel_mapping.py`), so the map is
part of a recipe. The candidates are the kit's own maps (`submission/generate.py`, `to_uint8`):
each is applied to the same outputs (the recipe's sampling trick included), scored by FID against
the held-out digits in the chosen feature space, and the lowest wins.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import click
import numpy as np
import torch

from baselines.kit import kit_generate
from baselines.recipes import BASELINES_DIR, RecipeError, assemble, recipes

CANDIDATES = {"linear": {"map": "linear"}, "clamp": {"map": "clamp"}, "cut": {"map": "cut", "below": 10}}


@contextmanager
def _inside(folder: Path):
    """The kit's sampler reads `checkpoints/` relative to the working folder, as a team's run does."""
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def held_out_digits(manifest: dict, data_root: str | None) -> np.ndarray:
    """The uint8 digits the recipe's trainer held out (its seed and count), or a RecipeError."""
    from baselines.train import load_training_data, split_holdout

    count = int(manifest.get("holdout") or 0)
    if count <= 0:
        raise RecipeError("this recipe was trained without held-out digits (holdout 0 or unrecorded): "
                          "there is nothing to choose its pixel map on without touching the test split")
    data = load_training_data(data_root, "cpu")
    _, held_out = split_holdout(data, min(count, len(data) // 2), int(manifest.get("seed", 0)))
    return ((held_out.view(-1, 28, 28) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()


def generator_outputs(name: str, count: int, seed: int) -> tuple[torch.Tensor, dict]:
    """`count` outputs in [-1, 1] of the assembled recipe, drawn by the kit's own sampler (its
    trick included), and the folder's sampling settings."""
    generate = kit_generate()
    with tempfile.TemporaryDirectory(prefix="pixel-map-") as scratch:
        (folder,) = assemble([name], Path(scratch))
        config_path = folder / "checkpoints" / "sampling.json"
        config = json.loads(config_path.read_text()) if config_path.exists() else {"method": "plain"}
        torch.manual_seed(seed)
        with _inside(folder):
            sampler = generate.Sampler(config, torch.device("cpu"))
            batches, total = [], 0
            while total < count:
                images = sampler.batch(min(2500, count - total))[: count - total]
                batches.append(images.float().reshape(-1, 28, 28))
                total += len(images)
    return torch.cat(batches), config


def fid_against(space: str, reference: np.ndarray):
    """A function scoring uint8 images by FID against `reference` in the feature space `space`."""
    from evaluator.features import make_extractor
    from evaluator.metrics.fid import frechet_distance, gaussian_fit

    extractor = make_extractor(space, "cpu")
    mean, covariance = gaussian_fit(extractor(reference).features)

    def score(images: np.ndarray) -> float:
        sample_mean, sample_covariance = gaussian_fit(extractor(images).features)
        return float(frechet_distance(sample_mean, sample_covariance, mean, covariance))

    return score


def choose(name: str, space: str = "mnist", count: int = 10_000, seed: int = 0,
           data_root: str | None = None) -> dict:
    """Score every candidate map; returns the manifest entry for the lowest FID."""
    available = recipes()
    if name not in available:
        raise RecipeError(f"no recipe {name!r}; known: {', '.join(sorted(available))}")
    recipe = available[name]
    base = available[recipe.sampling["base"]] if recipe.sampling and "base" in recipe.sampling else recipe
    score = fid_against(space, held_out_digits(base.manifest, data_root))
    outputs, _ = generator_outputs(name, count, seed)
    generate = kit_generate()
    scores = {label: score(generate.to_uint8(outputs, spec)) for label, spec in CANDIDATES.items()}
    best = min(scores, key=scores.get)
    return {**CANDIDATES[best], "chosen_on": {
        "features": space, "samples": len(outputs), "seed": seed, "held_out": int(base.manifest["holdout"]),
        "fid": {label: round(value, 4) for label, value in scores.items()}}}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("recipe")
@click.option("--features", default="mnist", show_default=True, type=click.Choice(["mnist", "inception"]),
              help="The space FID is measured in (inception: minutes on a CPU).")
@click.option("--count", default=10_000, show_default=True, type=click.IntRange(min=100))
@click.option("--seed", default=0, show_default=True)
@click.option("--data-root", envvar="MNIST_ROOT", default=None, help="Folder containing MNIST/raw.")
@click.option("--write", is_flag=True, help="Record the choice in the recipe's manifest.json.")
def main(recipe: str, features: str, count: int, seed: int, data_root: str | None, write: bool) -> None:
    """Choose RECIPE's pixel map on its held-out training digits (and with --write, record it)."""
    try:
        chosen = choose(recipe, features, count, seed, data_root)
    except RecipeError as err:
        raise click.ClickException(str(err)) from err
    fids = chosen["chosen_on"]["fid"]
    click.echo(f"{recipe}: FID ({features} features) of {count} samples against its held-out training digits")
    for label, value in fids.items():
        click.echo(f"  {label:7s} {value:10.4f}{'  <- chosen' if CANDIDATES[label]['map'] == chosen['map'] else ''}")
    if write:
        path = BASELINES_DIR / recipe / "manifest.json"
        manifest = json.loads(path.read_text())
        manifest["pixels"] = chosen
        path.write_text(json.dumps(manifest, indent=2) + "\n")
        click.echo(f"recorded in {path}")
