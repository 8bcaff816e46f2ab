"""Bootstrap intervals over the generated samples, with the reference held fixed.

Why the samples and not the reference: every team is compared with the same 10,000 test digits,
so the reference's own sampling noise is common to all and cancels in every comparison; what
differs between two runs of one folder is which samples its generator drew. Resampling the
samples (with replacement, B times) reuses their features: no network runs again.

Per replicate: FID refits the samples' Gaussian under the resampling weights (the reference's
square root stays cached); precision and density reweight each sample's own indicator and count
(the reference's balls are fixed, so these are exact); recall and coverage ask, per reference
image, whether any sample covering it was drawn (each sample's ball radius stays the full-sample
one, and a reference image covered by more than knn.COVER_LIST_LENGTH samples counts as always covered: the
chance that none of 16 is drawn is e^-16, about 1e-7).

Intervals are centred percentile intervals: the estimate plus the 2.5th and 97.5th percentiles of
(replicate − mean of the replicates), so that the bootstrap's own upward bias of FID (duplicated
samples) is not added to it. The replicates are kept in the result, so that the leaderboard can
test the difference between two teams (leaderboard/ranking.py).
"""

from __future__ import annotations

import numpy as np
import torch

from evaluator.metrics import knn
from evaluator.metrics.context import FeatureContext
from evaluator.metrics.fid import frechet_distance

REPLICATES = 200
REPLICATES_HIGH_DIM_CPU = 50  # 2048-d FID costs about 0.7 s a replicate on 2 CPU cores
HIGH_DIM = 512
SEED = 0
LEVEL = 0.95
BLOCK = 2048


def replicate_count(dim: int, device: str, asked: int | None = None) -> int:
    if asked is not None:
        return asked
    return REPLICATES_HIGH_DIM_CPU if dim > HIGH_DIM and device == "cpu" else REPLICATES


def interval(estimate: float, replicates: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    centred = np.asarray(replicates, dtype=np.float64) - np.mean(replicates)
    tail = (1 - level) / 2 * 100
    return float(estimate + np.percentile(centred, tail)), float(estimate + np.percentile(centred, 100 - tail))


def _cover_lists(real: np.ndarray, fake: np.ndarray, radii_sq: np.ndarray, of_fake: bool, strict: bool,
                 device: str) -> np.ndarray:
    """(n_real, knn.COVER_LIST_LENGTH) indices of samples covering each reference image, padded with n_fake.

    of_fake: the ball is the sample's (radius radii_sq[fake]); else the reference image's."""
    real_t = torch.from_numpy(np.ascontiguousarray(real, dtype=np.float32)).to(device)
    fake_t = torch.from_numpy(np.ascontiguousarray(fake, dtype=np.float32)).to(device)
    radii = torch.from_numpy(np.asarray(radii_sq, dtype=np.float32)).to(device)
    lists = np.full((len(real), knn.COVER_LIST_LENGTH), len(fake), dtype=np.int64)
    for start in range(0, len(real), BLOCK):
        distances = torch.cdist(real_t[start:start + BLOCK], fake_t).square()
        bound = radii.unsqueeze(0) if of_fake else radii[start:start + BLOCK].unsqueeze(1)
        inside = (distances < bound if strict else distances <= bound).to(torch.float32)
        # up to knn.COVER_LIST_LENGTH covering samples (any of them do), padded by the sentinel n_fake
        taken, order = torch.topk(inside, min(knn.COVER_LIST_LENGTH, len(fake)), dim=1)
        block = torch.where(taken > 0, order, torch.full_like(order, len(fake)))
        lists[start:start + len(block), :block.shape[1]] = block.cpu().numpy()
    return lists


def bootstrap(context: FeatureContext, space: str, replicates: int, device: str = "cpu",
              seed: int = SEED) -> dict[str, dict]:
    """{`space.value`: {"interval": [low, high], "replicates": [...]}} for FID, precision, recall,
    density and coverage, from `context`'s features and cached statistics."""
    fake = np.asarray(context.fake, dtype=np.float64)
    n = len(fake)
    reference = context.reference
    rng = np.random.default_rng(seed)
    weights = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(replicates)]).astype(np.float64)
    cross = context.cross
    in_real = (cross.fake_in_real_le > 0).astype(np.float64)
    recall_lists, coverage_lists = cross.real_in_fake_lists, cross.fake_in_real_lists
    if recall_lists is None or coverage_lists is None:  # a backend that does not list them in its pass
        recall_lists = _cover_lists(context.real, context.fake, context.fake_radii_sq, of_fake=True, strict=False,
                                    device=device)
        coverage_lists = _cover_lists(context.real, context.fake, context.real_radii_sq, of_fake=False,
                                      strict=True, device=device)
    values = {"precision": weights @ in_real / n,
              "density": weights @ cross.fake_in_real_lt / (context.k * n),
              "recall": _covered(weights, recall_lists), "coverage": _covered(weights, coverage_lists)}
    values["fid"] = np.asarray([frechet_distance(mean, covariance, reference.mean, reference.covariance,
                                                 sqrt_sigma2=reference.covariance_sqrt)
                                for mean, covariance in _weighted_gaussians(fake, weights)])
    return {f"{space}.{key}": {"replicates": [float(f"{v:.6g}") for v in values[key]]}
            for key in ("fid", "precision", "recall", "density", "coverage")}


def _weighted_gaussians(features: np.ndarray, weights: np.ndarray):
    """Mean and unbiased covariance of the features under each row of resampling weights."""
    n, dim = features.shape
    origin = features.mean(axis=0)
    centred = features - origin  # for accuracy: the replicates' means stay near zero
    shifts = weights @ centred / n
    if dim <= 128:  # all second moments in one product: n x dim² doubles (330 MB at 64-d)
        moments = weights @ np.einsum("nd,ne->nde", centred, centred).reshape(n, dim * dim)
        for shift, moment in zip(shifts, moments):
            yield origin + shift, (moment.reshape(dim, dim) - n * np.outer(shift, shift)) / (n - 1)
        return
    for w, shift in zip(weights, shifts):  # 2048-d: one replicate at a time
        deviation = centred - shift
        yield origin + shift, (deviation * w[:, None]).T @ deviation / (n - 1)


def _covered(weights: np.ndarray, lists: np.ndarray, chunk: int = 50) -> np.ndarray:
    """Per replicate: the share of reference images with at least one covering sample drawn."""
    drawn = np.concatenate([weights > 0, np.zeros((len(weights), 1), dtype=bool)], axis=1)  # sentinel: never
    return np.concatenate([drawn[start:start + chunk][:, lists].any(axis=2).mean(axis=1)
                           for start in range(0, len(weights), chunk)])


def add_intervals(found: dict[str, dict], metrics: dict[str, float]) -> dict[str, dict]:
    for name, entry in found.items():
        entry["interval"] = list(interval(metrics[name], entry["replicates"]))
    return found
