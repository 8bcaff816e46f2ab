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

REPLICATES = 200
REPLICATES_HIGH_DIM_CPU = 50  # 2048-d FID costs about 0.85 s a replicate on 2 CPU cores (bench/bootstrap_share.py)
HIGH_DIM = 512
PACKED_MAX_DIM = 128  # up to here, every replicate's second moments in one product (uncertainty._weighted_grams)
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
    values["fid"] = fid_replicates(fake, weights, reference, device)
    return {f"{space}.{key}": {"replicates": [float(f"{v:.6g}") for v in values[key]]}
            for key in ("fid", "precision", "recall", "density", "coverage")}


def fid_replicates(features: np.ndarray, weights: np.ndarray, reference, device: str = "cpu") -> np.ndarray:
    """FID of the samples reweighted by each row of `weights`, against the fixed reference.

    With C the samples centred on their mean, R the reference's covariance square root (cached) and
    W = diag(w): the replicate's covariance is S_w = (Cᵀ W C − n s sᵀ)/(n−1) with s = Cᵀ w / n, and
    R S_w R, whose eigenvalues give tr((S_w S_r)^½) (fid.py), equals (Gᵀ W G − n t tᵀ)/(n−1) with
    G = C R computed once and t = Gᵀ w / n. So a replicate costs one d×d product over the rows it
    drew (about 63% of them) and one symmetric eigenvalue problem: no d³ product, no covariance of
    its own. All in float64: in float32 the product's rounding lifted the near-zero eigenvalues and
    with them every 2048-d replicate, by 0.02 at FID 6 (real Inception features); torch, so that it
    runs on the evaluation's device."""
    n, dim = features.shape
    centred = np.asarray(features, dtype=np.float64)
    origin = centred.mean(axis=0)
    centred = centred - origin  # for accuracy: the replicates' means stay near zero
    root = torch.from_numpy(np.asarray(reference.covariance_sqrt, dtype=np.float64)).to(device)
    g = torch.from_numpy(centred).to(device) @ root
    weights_t = torch.from_numpy(np.asarray(weights, dtype=np.float64)).to(device)
    shifts = weights @ centred / n  # (B, d): each replicate's mean minus `origin`
    rooted_shifts = weights_t @ g / n  # t = R s, per replicate
    traces = (weights @ np.einsum("nd,nd->n", centred, centred) - n * np.einsum("bd,bd->b", shifts, shifts)) / (n - 1)
    mean_gap = origin - np.asarray(reference.mean, dtype=np.float64)
    gaps = mean_gap + shifts
    fixed = np.einsum("bd,bd->b", gaps, gaps) + traces + np.trace(reference.covariance)  # all but the root term
    distances = np.empty(len(weights))
    for chosen, grams in _weighted_grams(g, weights_t):
        t = rooted_shifts[chosen]
        products = (grams - n * t[:, :, None] * t[:, None, :]) / (n - 1)
        trace_sqrt = torch.linalg.eigvalsh(products).clamp_min(0).sqrt().sum(dim=1).cpu().numpy()
        rows = chosen.numpy()
        distances[rows] = np.maximum(fixed[rows] - 2 * trace_sqrt, 0.0)
    return distances


def _weighted_grams(g: torch.Tensor, weights: torch.Tensor, chunk_bytes: int = 2 ** 25):
    """(replicate indices, their Gᵀ W G). In low dimension all replicates at once: the products
    g_i g_iᵀ of each row, packed to their lower triangles, are weighted by one matrix product per
    chunk of rows (a replicate's own product is too small to pay for a call: 0.57 s against 0.1 s
    for 200 replicates in 64-d). In high dimension one replicate at a time, over the rows it drew."""
    n, dim = g.shape
    if dim > PACKED_MAX_DIM:
        for index, w in enumerate(weights):
            drawn = torch.nonzero(w, as_tuple=True)[0]
            rows = g[drawn]
            yield torch.tensor([index]), ((rows * w[drawn, None]).T @ rows)[None]
        return
    lower_rows, lower_cols = torch.tril_indices(dim, dim, device=g.device)
    packed = torch.zeros((len(weights), len(lower_rows)), dtype=g.dtype, device=g.device)
    step = max(1, chunk_bytes // (len(lower_rows) * g.element_size()))
    for start in range(0, n, step):
        block = g[start:start + step]
        packed += weights[:, start:start + step] @ (block[:, lower_rows] * block[:, lower_cols])
    grams = torch.zeros((len(weights), dim, dim), dtype=g.dtype, device=g.device)
    grams[:, lower_rows, lower_cols] = packed  # eigvalsh reads the lower triangle only
    yield torch.arange(len(weights)), grams


def _covered(weights: np.ndarray, lists: np.ndarray, chunk: int = 50) -> np.ndarray:
    """Per replicate: the share of reference images with at least one covering sample drawn."""
    drawn = np.concatenate([weights > 0, np.zeros((len(weights), 1), dtype=bool)], axis=1)  # sentinel: never
    return np.concatenate([drawn[start:start + chunk][:, lists].any(axis=2).mean(axis=1)
                           for start in range(0, len(weights), chunk)])


def add_intervals(found: dict[str, dict], metrics: dict[str, float]) -> dict[str, dict]:
    for name, entry in found.items():
        entry["interval"] = list(interval(metrics[name], entry["replicates"]))
    return found
