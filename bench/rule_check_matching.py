"""How well the rule check finds each sample's own forward pass, under the pixel mappings teams use.

The rule check (`evaluator/sandbox/rule_check.py`) picks, for each sample, the replayed generator
outputs that correlate best with it, then checks that its pixels are a monotone function of one of
them. This draws `--count` latents through the kit's generator, writes the samples under each
mapping, and reports, per set of correlation views: where the true output ranks among all outputs
(0 = first), the least share of a sample's variance its output explains (MIN_EXPLAINED is the
bar), how many samples `trace_samples` leaves untraced, and its time.

    python bench/rule_check_matching.py [--count 10000] [--latents 10240]

`--latents` above `--count` adds outputs that were drawn but not written (the course template draws
whole batches of 2,048).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evaluator.sandbox import rule_check  # noqa: E402
from evaluator.sandbox.rule_check import WeightSet, explained_share, replay, trace_samples  # noqa: E402

MAPPINGS = {
    "linear (kit)": lambda o: np.round((o + 1) * 127.5),
    "clamp at 0 (course template)": lambda o: np.floor(np.clip(o, 0, 1) * 255 + 0.5),
    "min-max (normalize=True)": lambda o: np.round(255 * (o - o.min(1, keepdims=True)) / np.ptp(o, 1, keepdims=True)),
    "gamma 2.2": lambda o: np.round(255 * ((o + 1) / 2) ** 2.2),
    "binarised at 0": lambda o: 255.0 * (o > 0),
}


def kit_weights() -> list[np.ndarray]:
    state = torch.load(REPO / "submission" / "checkpoints" / "G.pth", map_location="cpu", weights_only=True)
    return [state[f"fc{layer}.{kind}"].float().numpy() for layer in range(1, 5) for kind in ("weight", "bias")]


def true_ranks(images: np.ndarray, outputs: np.ndarray, views) -> np.ndarray:
    """For sample i (made from output i): how many outputs score strictly higher than output i."""
    standard = rule_check._standardise(images.reshape(len(images), -1).astype(np.float32))
    ranks = np.zeros(len(images), dtype=np.int64)
    for start in range(0, len(images), 2048):
        block = standard[start:start + 2048]
        scores = np.max([block @ rule_check._standardise(view(outputs)).T for view in views], axis=0)
        own = scores[np.arange(len(block)), np.arange(start, start + len(block))]
        ranks[start:start + len(block)] = (scores > own[:, None]).sum(axis=1)
    return ranks


@click.command()
@click.option("--count", default=10_000, show_default=True, help="Samples written.")
@click.option("--latents", default=10_240, show_default=True, help="Outputs drawn (at least --count).")
@click.option("--seed", default=0, show_default=True)
def main(count: int, latents: int, seed: int) -> None:
    weights = kit_weights()
    torch.manual_seed(seed)
    z = torch.randn(max(latents, count), rule_check.LATENT_DIM).numpy()
    outputs = replay(weights, z)
    settings = {"raw output only (before)": rule_check.VIEWS[:1], "raw, clamped, sign (now)": rule_check.VIEWS}
    print(f"{count} samples, {len(z)} outputs, kit generator, {rule_check.CANDIDATES} candidates now\n")
    print("| mapping | views | true output's rank: max | samples ranked beyond 4 | explained share: min | "
          "untraced (now) | seconds |")
    print("|---|---|---|---|---|---|---|")
    for name, mapping in MAPPINGS.items():
        images = mapping(outputs[:count]).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)
        for label, views in settings.items():
            ranks = true_ranks(images, outputs, views)
            untraced, seconds, share = "", "", ""
            if views is rule_check.VIEWS:
                flat = images.reshape(count, -1)
                informative = flat.max(axis=1) > flat.min(axis=1)
                share = f"{explained_share(flat[informative], outputs[:count][informative]).min():.4f}"
                started = time.perf_counter()
                checked, traced, _ = trace_samples(images, [WeightSet(weights, z, "bench")])
                seconds = f"{time.perf_counter() - started:.1f}"
                untraced = str(checked - traced)
            print(f"| {name} | {label} | {ranks.max()} | {(ranks >= 4).sum()} | {share} | {untraced} | {seconds} |")


if __name__ == "__main__":
    main()
