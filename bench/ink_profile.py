"""How the reference generators draw their strokes, against MNIST's: the share of ink (pixels above
0.1 of full scale), the share of that ink that is grey (between 0.1 and 0.9: the anti-aliased edges
of a scanned stroke) and the share of ink pixels with no inked 4-neighbour (speckle).

A generator whose ink is almost all saturated draws hard-edged strokes that Inception tells from
MNIST's whatever the digit's shape; no per-pixel monotone map (the write-out a recipe may choose)
can put the grey edges back. The outputs are mapped linearly here, before any recipe's map.

    MNIST_ROOT=../shared/data python bench/ink_profile.py [wgan wgan-gp-course ...] [--count 2000]
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evaluator import mnist  # noqa: E402

INK, SATURATED = 0.1, 0.9


def ink_profile(images: np.ndarray) -> dict[str, float]:
    """(N, 28, 28) images in [0, 1]: ink share, grey share of the ink, isolated share of the ink."""
    ink = images > INK
    grey = ink & (images < SATURATED)
    padded = np.pad(ink, ((0, 0), (1, 1), (1, 1)))
    neighbour = padded[:, :-2, 1:-1] | padded[:, 2:, 1:-1] | padded[:, 1:-1, :-2] | padded[:, 1:-1, 2:]
    inked = max(int(ink.sum()), 1)
    return {"ink": float(ink.mean()), "grey": grey.sum() / inked, "isolated": (ink & ~neighbour).sum() / inked}


def generator_images(name: str, count: int, seed: int) -> np.ndarray:
    """`count` outputs of recipe `name`, drawn by the kit's sampler (pixel_map.generator_outputs),
    mapped linearly onto [0, 1]."""
    from baselines.pixel_map import generator_outputs
    from baselines.recipes import RecipeError

    try:
        outputs, _ = generator_outputs(name, count, seed)
    except RecipeError as err:
        raise click.BadParameter(str(err), param_hint="RECIPES") from err
    return ((outputs + 1) / 2).clamp(0, 1).numpy()


@click.command()
@click.argument("names", nargs=-1)
@click.option("--count", default=2000, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True)
@click.option("--data-root", envvar=mnist.ENV_VAR, default=None)
def main(names: tuple[str, ...], count: int, seed: int, data_root: str | None) -> None:
    """Ink profile of MNIST's test digits and of each recipe NAME (default: wgan, wgan-gp-course,
    vanilla-template)."""
    generated = {f"recipe {name}": generator_images(name, count, seed)
                 for name in names or ("wgan", "wgan-gp-course", "vanilla-template")}
    rows = {"MNIST test digits": mnist.load_split("test", data_root).images[:count] / 255.0, **generated}
    print(f"| {count:,} images | ink share | grey share of the ink | isolated share of the ink |")
    print("|---|---:|---:|---:|")
    for label, images in rows.items():
        profile = ink_profile(np.asarray(images, dtype=np.float32))
        print(f"| {label} | {profile['ink']:.3f} | {profile['grey']:.3f} | {profile['isolated']:.4f} |")


if __name__ == "__main__":
    main()
