"""The set-level copying test (`copying`, Meehan et al. 2020 C_T) on genuine digits, generators and
copies of the reference.

For each set of `--count` images it prints C_T in both embeddings, the lower, the gap (C_T minus
the mirror's, the test run with training digits V in the test split's place) and the lean (which of
the test split and V the samples copy more of) from the lowest to the highest over the mirrors an
evaluation draws from, and whether the metric flags it (C_T below copying.FLAG_BELOW, the gap below
copying.GAP_FLAG_BELOW or the lean above copying.LEAN_FLAG_ABOVE), whichever mirror is drawn, and the MNIST
FID lead (FID against the test split minus its mean against the mirrors: what the set gains on the
leaderboard from the test split in particular):
- genuine training digits in neither P nor V, `--draws` random draws (the false-positive rate);
- the kit and every reference recipe's generator (plain sampling, written with the recipe's own
  pixel map; the kit's linear write-out for the kit); `--recipes a,b` runs only those recipes' rows;
- synthetic strokes never copied from MNIST (random pen paths, drawn with PIL);
- copies of the test split (the reference) under erosion, dilation, shifts of 3 px, scaling by 0.9,
  elastic warps and 10-degree rotations, as whole sets and mixed into the kit's samples;
- with `--train-epochs N`, the course template's vanilla recipe (Adam 2e-4, betas (0.9, 0.999),
  no dropout, batch 64, seed 0; with `--train-ema D` sampled from G's moving average) trained for N
  epochs on `--train-count` test digits and, alike, on
  as many training digits outside P: the cheat no platform catches (training on the reference)
  against the honest run. Their weights stay in a temporary folder, or with `--work-dir` in that
  folder, where a run interrupted or stopped by `--time-budget` resumes.

    MNIST_ROOT=../shared/data python bench/data_copying.py [--count 10000] [--draws 10]
    MNIST_ROOT=../shared/data python bench/data_copying.py --only-training --train-epochs 100
    MNIST_ROOT=../shared/data python bench/data_copying.py --recipes msgan,wgan
    MNIST_ROOT=../shared/data python bench/data_copying.py --only-training --train-epochs 600 \
        --train-on test --work-dir runs/copying --time-budget 3600     # resumable; run again to go on
    MNIST_ROOT=../shared/data python bench/data_copying.py --only-training --train-epochs 1000 \
        --train-count 1000 --train-ema 0.999 --work-dir runs/copying   # G's moving average sampled
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import numpy as np
import torch
from PIL import Image, ImageDraw
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evaluator import mnist  # noqa: E402
from evaluator.metrics import copying  # noqa: E402


def generator_samples(digest: str | None, count: int, seed: int = 0, pixels: dict | None = None) -> np.ndarray:
    """A stored generator (the kit's when `digest` is None), its outputs written with the kit's pixel
    map `pixels` (None: linear)."""
    from baselines.kit import Generator, kit_generate
    from baselines.recipes import load_weights

    generator = Generator()
    if digest is None:
        state = torch.load(REPO / "submission" / "checkpoints" / "G.pth", map_location="cpu", weights_only=True)
        generator.load_state_dict({key: value.float() for key, value in state.items()})
    else:
        load_weights(generator, digest)
        generator.float()
    torch.manual_seed(seed)
    with torch.no_grad():
        outputs = generator(torch.randn(count, 100))
    if pixels is None:
        return ((outputs + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).view(-1, 28, 28).numpy()
    return kit_generate().to_uint8(outputs, pixels)


def strokes(count: int, seed: int = 0) -> np.ndarray:
    """Pen paths of 3 to 6 points, 2 to 3 px wide, centred like MNIST digits: never MNIST."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 28, 28), np.uint8)
    for index in range(count):
        canvas = Image.new("L", (28, 28))
        points = [tuple(p) for p in rng.uniform(6, 22, (rng.integers(3, 7), 2))]
        ImageDraw.Draw(canvas).line(points, fill=255, width=int(rng.integers(2, 4)), joint="curve")
        images[index] = np.asarray(canvas)
    return ndimage.gaussian_filter(images.astype(float), (0, 0.6, 0.6)).clip(0, 255).astype(np.uint8)


def elastic(images: np.ndarray, rng: np.random.Generator, alpha: float = 8.0, sigma: float = 3.0) -> np.ndarray:
    """Simard et al.'s elastic distortion: a smoothed random displacement field."""
    out = np.empty_like(images)
    rows, cols = np.meshgrid(np.arange(28), np.arange(28), indexing="ij")
    for index, image in enumerate(images):
        dy = ndimage.gaussian_filter(rng.uniform(-1, 1, (28, 28)), sigma) * alpha
        dx = ndimage.gaussian_filter(rng.uniform(-1, 1, (28, 28)), sigma) * alpha
        out[index] = ndimage.map_coordinates(image.astype(float), [rows + dy, cols + dx], order=1).clip(0, 255)
    return out


def fit(images: np.ndarray) -> np.ndarray:
    """Back to 28x28 (padded or cropped around the centre), uint8."""
    size = images.shape[1]
    if size < 28:
        low = (28 - size) // 2
        images = np.pad(images, ((0, 0), (low, 28 - size - low), (low, 28 - size - low)))
    return np.round(images).clip(0, 255).astype(np.uint8)


def transforms(rng: np.random.Generator) -> dict:
    box = np.ones((1, 2, 2))
    return {
        "erosion (2x2)": lambda x: ndimage.grey_erosion(x, footprint=box),
        "dilation (2x2)": lambda x: ndimage.grey_dilation(x, footprint=box),
        "shift (3, 3) px": lambda x: np.roll(x, (3, 3), axis=(1, 2)),
        "scale 0.9": lambda x: fit(ndimage.zoom(x.astype(float), (1, 0.9, 0.9), order=1)),
        "elastic warp (alpha 8, sigma 3)": lambda x: elastic(x, rng),
        "rotation 10 degrees": lambda x: ndimage.rotate(x.astype(float), 10, axes=(1, 2), reshape=False, order=1),
    }


class FidLead:
    """What the images gain on the leaderboard from the test split in particular: their MNIST FID
    against the test split minus its mean against the mirrors' training digits (below 0: nearer the
    reference than genuine digits it never held). Training on the test split pays only by this."""

    def __init__(self, reference: np.ndarray, mirrors: list[np.ndarray]) -> None:
        from evaluator.features import make_extractor

        self.extractor = make_extractor("mnist")
        self.reference = self.fit(reference)
        self.mirrors = [self.fit(images) for images in mirrors]

    def fit(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from evaluator.metrics.fid import gaussian_fit

        return gaussian_fit(np.asarray(self.extractor(images).features, dtype=np.float64))

    def __call__(self, images: np.ndarray) -> float:
        from evaluator.metrics.fid import frechet_distance

        fitted = self.fit(images)
        against_mirrors = [frechet_distance(*fitted, *mirror) for mirror in self.mirrors]
        return frechet_distance(*fitted, *self.reference) - float(np.mean(against_mirrors))


def trained_on(images: np.ndarray, epochs: int, count: int, data_root: str | None, work_dir: Path | None = None,
               name: str = "run", time_budget: float | None = None, train_more: bool = True,
               ema: float | None = None) -> tuple[np.ndarray | None, float, int]:
    """Samples of the template recipe trained on `images` alone (no held-out digits), the seconds of
    training and the epochs done. With `work_dir` the run lives in `work_dir/name` and resumes from
    its checkpoint; with `time_budget` it stops after that many seconds of training (samples None
    until all `epochs` are done); with `train_more` False it only samples a finished run. With `ema`
    the samples come from the moving average of G (the reference recipes' way)."""
    import tempfile

    from baselines.train import Trainer, TrainConfig

    with tempfile.TemporaryDirectory(prefix="copying-bench-") as scratch:
        folder = Path(work_dir) / name if work_dir else Path(scratch)
        config = TrainConfig("vanilla", epochs, 64, 0, "cpu", 2e-4, 2e-4, data_root=data_root, eval_every=0,
                             checkpoint_every=5, holdout=0, betas_g=(0.9, 0.999), betas_d=(0.9, 0.999),
                             d_dropout=0.0, ema=ema, out_dir=folder, time_budget_s=time_budget)
        trainer = Trainer(config)
        trainer.resume()
        if trainer.epoch < epochs and train_more:
            trainer.train(torch.from_numpy(images.copy()).float().div(127.5).sub(1).view(-1, 784))
        if trainer.epoch < epochs:
            return None, trainer.wall_time, trainer.epoch
        torch.manual_seed(0)
        return trainer.sample(count, network=trainer.ema), trainer.wall_time, trainer.epoch


@click.command()
@click.option("--count", default=10_000, show_default=True)
@click.option("--draws", default=10, show_default=True, help="Random draws of genuine digits.")
@click.option("--data-root", envvar=mnist.ENV_VAR, default=None)
@click.option("--cache-dir", envvar="EVALUATOR_CACHE", default=None)
@click.option("--train-epochs", default=0, show_default=True,
              help="Also train the template recipe this long on the test split and on training digits.")
@click.option("--only-training", is_flag=True, help="Only the --train-epochs rows.")
@click.option("--train-on", default="test,train", show_default=True, help="Which of the two runs to train.")
@click.option("--train-count", default=10_000, show_default=True,
              help="Digits of each split to train on (fewer digits: a generator that memorises them).")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the training runs here and resume them (else a temporary folder).")
@click.option("--time-budget", type=float, default=None,
              help="Seconds of training per run in this call; rerun with the same --work-dir to go on.")
@click.option("--train-ema", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Sample the trained runs' moving average of G with this decay (as the reference recipes do).")
@click.option("--recipes", "only_recipes", default=None, metavar="NAME,...",
              help="Only these reference recipes' rows (after retraining one).")
def main(count: int, draws: int, data_root: str | None, cache_dir: str | None, train_epochs: int,
         only_training: bool, train_on: str, train_count: int, work_dir: Path | None,
         time_budget: float | None, train_ema: float | None, only_recipes: str | None) -> None:
    from baselines.recipes import recipes

    plain = {name: recipe for name, recipe in recipes().items() if recipe.sampling is None and "G.pth" in recipe.files}
    chosen_recipes = list(plain) if only_recipes is None else [part.strip() for part in only_recipes.split(",")]
    unknown = [name for name in chosen_recipes if name not in plain]
    if unknown:
        raise click.BadParameter(f"not a recipe with its own G: {', '.join(unknown)}", param_hint="--recipes")
    started = time.perf_counter()
    tests = copying.copy_tests(data_root, cache_dir)
    train = mnist.load_split("train", data_root)
    test_split = mnist.load_split("test", data_root)
    unused = np.setdiff1d(np.arange(len(train.images)), copying.held_out_indices(len(train.images)))
    mirrors = [copying.mirror_tests(data_root, cache_dir, which) for which in range(copying.MIRRORS)]
    # The honest run's training digits: outside P, like every mirror's V (each shares about a fifth)
    mirror_index = np.random.default_rng(99).choice(unused, train_count, replace=False)
    lead = FidLead(test_split.images,
                   [train.images[copying.mirror_indices(len(train.images), which)] for which in range(copying.MIRRORS)])
    print(f"reference side ready in {time.perf_counter() - started:.1f} s (cached after the first run)\n")

    def row(name: str, images: np.ndarray) -> None:
        began = time.perf_counter()
        embedded = copying.embed(images)
        found = {e: tests[e].statistic(embedded[e]) for e in copying.EMBEDDINGS}
        decisions = [copying.decision(found, {e: mirror[e].statistic(embedded[e]) for e in copying.EMBEDDINGS})
                     for mirror in mirrors]  # the metric's own rule, under each mirror
        lowest = decisions[0].ct
        gaps = [d.gap for d in decisions if d.gap is not None]
        leans = [d.lean for d in decisions]
        flagged = sum(d.flagged for d in decisions)
        shown = {0: "no", len(decisions): "yes"}.get(flagged, f"{flagged} of {len(decisions)} mirrors")
        cells = " | ".join(f"{found[e]['ct']:+.2f}" for e in copying.EMBEDDINGS)
        spread = f"{min(gaps):+.2f} to {max(gaps):+.2f}" if gaps else "none (the samples fill too few cells)"
        if gaps and len(gaps) < len(decisions):
            spread += f" ({len(gaps)} of {len(decisions)} mirrors; too few cells filled for the others)"
        print(f"| {name} | {cells} | {lowest:+.2f} | {spread} | {min(leans):+.2f} to {max(leans):+.2f} | {shown} | "
              f"{lead(images):+.3f} | "
              f"{time.perf_counter() - began:.1f} |", flush=True)

    print(f"| {count:,} images | C_T centred | C_T upright | C_T | gap, over the {copying.MIRRORS} mirrors | "
          f"lean, over the {copying.MIRRORS} mirrors | flagged | MNIST FID lead | seconds |")
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|")
    if train_epochs:
        honest = train.images[mirror_index]
        cheat = test_split.images[np.random.default_rng(98).choice(len(test_split.images), train_count,
                                                                    replace=False)]
        runs = {"test": (f"{train_count:,} test digits (the reference)", cheat),
                "train": (f"{train_count:,} training digits", honest)}
        for split in (part.strip() for part in train_on.split(",")):
            name, digits = runs[split]
            run = f"{split}-{train_count}-{train_epochs}" + (f"-ema{train_ema}" if train_ema else "")
            samples, seconds, done = trained_on(digits, train_epochs, count, data_root, work_dir, run,
                                                time_budget, ema=train_ema)
            if samples is None:
                print(f"| template recipe on {name}: {done} of {train_epochs} epochs after {seconds:.0f} s of "
                      f"training; run again with --work-dir {work_dir} to go on |", flush=True)
                continue
            recipe = f"template recipe{f' with EMA {train_ema}' if train_ema else ''}"
            row(f"{recipe}, {train_epochs} epochs on {name} ({seconds:.0f} s of training)", samples)
    if only_training:
        return
    def recipe_rows() -> None:
        for name in chosen_recipes:
            row(f"recipe {name}", generator_samples(plain[name].files["G.pth"], count, pixels=plain[name].pixel_map))

    if only_recipes is not None:
        recipe_rows()
        return
    outside = np.setdiff1d(unused, mirror_index)  # genuine digits in neither P nor the honest run's
    for draw in range(draws):
        chosen = np.random.default_rng(1000 + draw).choice(outside, count, replace=False)
        row(f"genuine training digits, draw {draw + 1}", train.images[chosen])
    kit = generator_samples(None, count)
    row("the kit's generator", kit)
    recipe_rows()
    row("synthetic strokes", strokes(count))
    rng = np.random.default_rng(7)
    reference = test_split.images[rng.choice(len(test_split.images), count, replace=count > len(test_split.images))]
    row("copies of the test split, unchanged", reference)
    for name, change in transforms(rng).items():
        copies = fit(change(reference))
        row(f"copies, {name}", copies)
        for share in (0.25, 0.1):
            mixed = kit.copy()
            where = rng.choice(count, int(share * count), replace=False)
            mixed[where] = copies[where]
            row(f"{share:.0%} copies ({name}) among the kit's samples", mixed)


if __name__ == "__main__":
    main()
