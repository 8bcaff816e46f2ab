"""Which split does a generator lean to? The statistic behind `copying.lean` (the cheat of training
on the test split, the leaderboard's reference), computed by the metric's own code in both
embeddings under every mirror; the metric takes the centred embedding under the mirror it draws.

Authenticity as Alaa, van Breugel, Saveliev and van der Schaar define it (ICML 2022, "How Faithful
is your Synthetic Data?"): a sample is unauthentic when it lies closer to its nearest reference
digit r than r lies to its own nearest neighbour in the reference set. Here it is measured in the
copy test's embeddings (evaluator/metrics/copying.py: canonical digits, blurred, projected on each
side's principal components) against two reference sets of 10,000 digits: the test split T, and a
mirror V of training digits outside P (each of copying's five). Each sample is then unauthentic
against T, against V, both or neither; the paired statistic is McNemar's z = (b - c) / sqrt(b + c),
b the samples unauthentic against T alone, c against V alone. A generator trained on the training
split should lean to V (z below 0; MNIST's writers differ between the splits), one trained on the
test split to T.

Rows: P (genuine training digits), the kit, every reference recipe's generator, and with
`--work-dir` the template-recipe runs that `bench/data_copying.py --train-epochs N --train-count M
--work-dir DIR` trained and left there (folders `test-M-N` and `train-M-N`, `-emaD` after
them for runs with `--train-ema D`, sampled from G's moving average).

    MNIST_ROOT=../shared/data python bench/authenticity_split.py [--count 10000] [--work-dir DIR]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from data_copying import generator_samples, trained_on  # noqa: E402

from evaluator import mnist  # noqa: E402
from evaluator.metrics import copying  # noqa: E402

# bench/data_copying.py's run folders: test-M-N or train-M-N, with -emaD when G's average is sampled.
RUN_FOLDER = re.compile(r"(?P<split>test|train)-(?P<digits>\d+)-(?P<epochs>\d+)(?:-ema(?P<ema>0\.\d+))?")


@click.command()
@click.option("--count", default=10_000, show_default=True)
@click.option("--data-root", envvar=mnist.ENV_VAR, default=None)
@click.option("--cache-dir", envvar="EVALUATOR_CACHE", default=None)
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where bench/data_copying.py left its trained runs (test-M-N, train-M-N).")
def main(count: int, data_root: str | None, cache_dir: str | None, work_dir: Path | None) -> None:
    from baselines.recipes import recipes

    sides = {"T": copying.copy_tests(data_root, cache_dir)}
    sides |= {f"V{which}": copying.mirror_tests(data_root, cache_dir, which) for which in range(copying.MIRRORS)}
    mirrors = [side for side in sides if side != "T"]

    def row(label: str, images: np.ndarray) -> None:
        cells = []
        embedded = copying.embed(images)
        for name in copying.EMBEDDINGS:
            unauthentic = {side: tests[name].statistic(embedded[name])["unauthentic"] for side, tests in sides.items()}
            against_t = unauthentic["T"]
            z = [copying.mcnemar_z(against_t, unauthentic[side]) for side in mirrors]
            cells.append(f"{against_t.mean():.3f} | {min(z):+.2f} to {max(z):+.2f}")
        print(f"| {label} | {' | '.join(cells)} |", flush=True)

    header = " | ".join(f"unauthentic vs T ({name}) | z over the {len(mirrors)} mirrors ({name})"
                        for name in copying.EMBEDDINGS)
    print(f"| {count:,} images | {header} |")
    print("|---|" + "---:|" * (2 * len(copying.EMBEDDINGS)))
    train = mnist.load_split("train", data_root)
    row("P: genuine training digits", train.images[copying.held_out_indices(len(train.images))][:count])
    row("the kit's generator", generator_samples(None, count))
    for name, recipe in recipes().items():
        if recipe.sampling is None and "G.pth" in recipe.files:
            row(f"recipe {name}", generator_samples(recipe.files["G.pth"], count))
    for folder in sorted(work_dir.iterdir()) if work_dir else []:
        run = RUN_FOLDER.fullmatch(folder.name)
        if folder.is_dir() and run:
            split, digits, epochs = run["split"], int(run["digits"]), int(run["epochs"])
            ema = float(run["ema"]) if run["ema"] else None
            samples, seconds, done = trained_on(np.zeros((1, 28, 28), np.uint8), epochs, count, data_root,
                                                work_dir, folder.name, train_more=False, ema=ema)
            if samples is None:
                print(f"| {folder.name}: {done} of {epochs} epochs; finish it with bench/data_copying.py |")
                continue
            recipe = f"template recipe{f' with EMA {ema}' if ema else ''}"
            row(f"{recipe}, {epochs} epochs on {digits:,} {split} digits", samples)

if __name__ == "__main__":
    main()
