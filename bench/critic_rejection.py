"""Choose a critic-rejection setting without looking at the test split: the kit's own sampler
(`submission/generate.py`) draws 10,000 samples from a recipe's G and D at each percentile, scored
in MNIST features against the training digits the trainer holds out (`train-baseline --holdout`,
same seed, same split).

    MNIST_ROOT=../shared/data python bench/critic_rejection.py wgan-gp [--percentile 50 --percentile 80]
        [--setting '{"method": "interpolation"}']

`--setting` adds any other sampling.json setting of the kit (interpolation, say) to the same table,
scored the same way. Every row writes its pixels with the recipe's own pixel map; a recipe without a
stored critic (D.pth) gets no critic-rejection rows.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from baselines.kit import kit_generate  # noqa: E402
from baselines.recipes import assemble  # noqa: E402
from baselines.train import TrainConfig, _reference, _score_against, load_training_data, training_split  # noqa: E402


def draw(generate, checkpoints: Path, config: dict, count: int, seed: int):
    generate.CHECKPOINTS = str(checkpoints)
    torch.manual_seed(seed)
    sampler = generate.Sampler(config, torch.device("cpu"))
    chunks, total = [], 0
    while total < count:
        images = sampler.batch(2500)[: count - total]
        chunks.append(generate.to_uint8(images, config.get("pixels")))
        total += len(images)
    return np.concatenate(chunks), sampler.accepted / sampler.drawn


@click.command()
@click.argument("recipe")
@click.option("--percentile", "percentiles", multiple=True, type=float, default=(25, 50, 75, 90), show_default=True)
@click.option("--count", default=10_000, show_default=True)
@click.option("--setting", "settings", multiple=True, type=json.loads,
              help="Another sampling.json setting to score, as JSON (e.g. '{\"method\": \"interpolation\"}').")
@click.option("--seed", default=0, show_default=True)
@click.option("--data-root", envvar="MNIST_ROOT", default=None)
def main(recipe: str, percentiles: tuple[float, ...], settings: tuple[dict, ...], count: int, seed: int,
         data_root: str | None) -> None:
    # The trainer's defaults give the split (holdout size, seed) and the scoring device.
    config = TrainConfig("wgan-gp", data_root=data_root, out_dir=Path(tempfile.mkdtemp()))
    _, held_out = training_split(load_training_data(data_root, "cpu"), config)
    reference = _reference(held_out, config)
    (folder,) = assemble([recipe], Path(tempfile.mkdtemp(prefix="rejection-")))
    generate = kit_generate()
    checkpoints = folder / "checkpoints"
    written = checkpoints / "sampling.json"
    pixels = json.loads(written.read_text()).get("pixels") if written.exists() else None
    if not (checkpoints / "D.pth").exists():
        percentiles = ()  # no critic stored with this recipe
    print(f"{recipe}: {count} samples, seed {seed}, against {len(held_out)} held-out training digits, "
          f"pixel map {json.dumps(pixels)}")
    print("| sampling | acceptance | held-out MNIST FID | precision | recall |\n|---|---:|---:|---:|---:|")
    rows = [("plain", {"method": "plain"}),
            *((f"critic rejection, percentile {p:g}", {"method": "critic_rejection", "percentile": p})
              for p in percentiles),
            *((json.dumps(setting), setting) for setting in settings)]
    for name, sampling in rows:
        sampling = {"pixels": pixels, **sampling} if pixels is not None else sampling
        images, acceptance = draw(generate, checkpoints, sampling, count, seed)
        scores = _score_against(images, reference, config)
        print(f"| {name} | {acceptance:.1%} | {scores['mnist.fid']:.3f} | {scores['mnist.precision']:.4f} | "
              f"{scores['mnist.recall']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
