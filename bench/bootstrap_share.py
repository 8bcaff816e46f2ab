"""What the bootstrap intervals cost beside the rest of a feature space's evaluation, on 10K samples.

Per feature space: the features of `--count` samples of the kit's generator (the first
`--feature-sample` of them timed and scaled to `--count`, since Inception on CPU takes minutes), the
metrics that the space's k-NN pass and Gaussian fit serve (precision/recall, density/coverage, FID),
and the bootstrap (`uncertainty.bootstrap`, as many replicates as an evaluation draws there). The
bootstrap's input is `--count` feature rows made from the reference's own (resampled, with a little
noise): its cost depends on their number and dimension, not on what they depict. The reference comes
from the evaluator's cache (computed on a miss, which is long for Inception on CPU).

    MNIST_ROOT=../shared/data python bench/bootstrap_share.py [--spaces mnist,inception] [--device cpu]
"""

from __future__ import annotations

import platform
import sys
import time
from datetime import date
from pathlib import Path

import click
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from evaluator import mnist  # noqa: E402
from evaluator.features import make_extractor  # noqa: E402
from evaluator.metrics import knn, uncertainty  # noqa: E402
from evaluator.metrics.context import FeatureContext  # noqa: E402
from evaluator.metrics.density_coverage import density_coverage  # noqa: E402
from evaluator.metrics.fid_metric import fid  # noqa: E402
from evaluator.metrics.precision_recall import precision_recall_metric  # noqa: E402
from evaluator.reference import load_reference  # noqa: E402


def seconds(action) -> tuple[float, object]:
    began = time.perf_counter()
    out = action()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - began, out


@click.command()
@click.option("--spaces", default="mnist,inception", show_default=True)
@click.option("--count", default=10_000, show_default=True)
@click.option("--feature-sample", default=500, show_default=True, help="Samples whose features are timed.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--data-root", envvar=mnist.ENV_VAR, default=None)
@click.option("--cache-dir", envvar="EVALUATOR_CACHE", default=None)
def main(spaces: str, count: int, feature_sample: int, device: str, data_root: str | None,
         cache_dir: str | None) -> None:
    from data_copying import generator_samples

    images = generator_samples(None, feature_sample)
    print(f"{count:,} samples, {date.today().isoformat()}, {platform.machine()}, device {device}, "
          f"{torch.get_num_threads()} torch threads (`python bench/bootstrap_share.py`)\n")
    print("| space | features s | k-NN and FID metrics s | bootstrap s (replicates) | bootstrap share |")
    print("|---|---:|---:|---:|---:|")
    for space in (name.strip() for name in spaces.split(",")):
        extractor = make_extractor(space, device)
        extractor(images[:8])  # warm-up: lazy initialisation is not the features' cost
        taken, _ = seconds(lambda: extractor(images))
        features_s = taken * count / feature_sample
        reference = load_reference(extractor, data_root, cache_dir, (3,), "auto", device)
        real = reference.stats.features
        rng = np.random.default_rng(0)
        fake = (real[rng.integers(0, len(real), count)]
                + rng.normal(scale=0.05 * real.std(), size=(count, real.shape[1]))).astype(np.float32)
        backend = knn.make_backend("auto", real.shape[1], device)
        context = FeatureContext(space, fake, reference.stats, 3, backend)
        metrics_s, _ = seconds(lambda: (fid(context), precision_recall_metric(context), density_coverage(context)))
        replicates = uncertainty.replicate_count(real.shape[1], device)
        boot_s, _ = seconds(lambda: uncertainty.bootstrap(context, space, replicates, device))
        share = boot_s / (features_s + metrics_s + boot_s)
        print(f"| {space} | {features_s:.1f} | {metrics_s:.1f} | {boot_s:.1f} ({replicates}) | {share:.0%} |",
              flush=True)


if __name__ == "__main__":
    main()
