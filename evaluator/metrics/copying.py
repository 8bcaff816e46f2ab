"""Metric `copying`: are the samples, as a set, closer to the leaderboard's reference than genuine
digits never drawn from it are? The set-level data-copying test of Meehan, Chaudhuri and Dasgupta
(AISTATS 2020, "A Non-Parametric Test to Detect Data-Copying in Generative Models"), followed as
the paper defines it (reference notes: shared/reference/data-copying.md):

- T, the set that may have been copied: the MNIST test split (the leaderboard's reference);
- P, genuine digits from the same distribution that are not in T: HELD_OUT_COUNT training digits;
- Q, the samples.

Each point's distance to its nearest neighbour in T is measured in a canonical embedding of the
digit, where the transforms a copier uses are undone rather than listed: each image is resampled
so that its centre of mass is the centre and its radius of gyration is fixed (MNIST's own
normalisation: undoes shifts and scaling), in a second embedding also turned so that its principal
axis is vertical (undoes rotations), then blurred (sigma 1, which absorbs erosion, dilation and
small warps), standardised (distance from correlation) and projected on T's first PCA_COMPONENTS
principal components. In the MNIST classifier's own features, eroded or shifted copies were not
closer to their originals than genuine digits are (C_T +9.1 and +24.3), so the test could not
see them there. T is partitioned into CELLS cells by k-means (scikit-learn); in every cell
holding at least MIN_CELL_SAMPLES samples the distances of Q and of P are compared by a
Mann-Whitney U test (U as SciPy's mannwhitneyu computes it), normalised to Z_U; C_T is the
average of Z_U weighted by P's share of each cell. C_T far below 0: the samples sit closer to
the reference than genuine unseen digits do, which no transform of the copies (erosion, warps,
rotations) undoes. The per-sample near-copy detector (`memorisation`) needs a list of
transforms; this test needs only the invariances of its embeddings. C_T is computed in both
embeddings and the lower counts.

C_T alone also moves with the generator: one that favours the data's dense regions scores below
0 without copying anything, one that lies far from the data above it, which hides a share of
copies among its samples. So the same test is run again with
10,000 training digits (V, one of five disjoint draws, chosen at random per evaluation) in T's
place, a mirror: the generator's own bias moves both alike, while favouring the test split lowers
C_T alone. The gap, C_T minus the mirror's, is the second
flag (constants below; docs/data-copying.md). The third, the lean, asks which of T and the mirror's
V the samples copy more of, sample by sample (authenticity, Alaa et al. 2022): a generator trained
on the test split leans to T, where every generator trained on the training split leans to V.

The flag threshold and its false-positive rate are measured on genuine digits, every reference
submission and the kit by `bench/data_copying.py` (figures in docs/data-copying.md).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch

from evaluator import mnist
from evaluator.cache import cache_path, load_arrays, resolve_cache_dir, save_arrays
from evaluator.metrics import knn
from evaluator.metrics.context import SampleContext
from evaluator.metrics.registry import MetricValues

CELLS = 20  # k-means cells over T: about 500 reference digits and 500 samples a cell at 10K
EMBEDDINGS = ("centred", "upright")  # centre of mass and scale; and the principal axis turned upright
EMBEDDING_BLUR = 1.0
GYRATION_RADIUS = 5.0  # pixels: every digit is rescaled to this radius of gyration
PCA_COMPONENTS = 64
MIN_CELL_SAMPLES = 20  # cells with fewer samples are left out (Meehan et al.'s tau)
HELD_OUT_COUNT = 10_000  # P: training digits, drawn once with HELD_OUT_SEED
HELD_OUT_SEED = 0
# Flag when the lower C_T is below this. Ten draws of genuine training digits against the test
# split gave -0.31 to +0.22, the kit and every reference generator -1.43 to +19 (a GAN mostly
# lies farther from the data than the data itself), whole sets of eroded, dilated, shifted, scaled,
# warped or rotated test digits -6.2 to -28.7 (bench/data_copying.py, docs/data-copying.md).
FLAG_BELOW = -3.0
# The mirror: the same test with V, MIRROR_COUNT training digits outside P, in T's place and the
# test split as V's genuine unseen digits. A generator's own bias (nearer to the data's dense
# regions than genuine digits are, or farther) moves C_T and the mirror's C_T alike, and the
# training split is every honest team's; favouring the test split lowers C_T alone. The gap is C_T
# minus the mirror's, the lower of both embeddings. Flag when it is below GAP_FLAG_BELOW. Over the
# five mirrors, the kit and the reference generators gave gaps of -1.19 to +0.02 where one is
# defined (GAP_MIN_SHARE), one generator's gap moving by up to 0.85 with the mirror drawn, and the
# template recipe with EMA trained on 1,000 training digits reached -2.01; a quarter
# of transformed copies among the kit's samples -5.6 to -7.3 (C_T flagged one of six such sets), a
# tenth -2.5 to -3.4, whole sets of copies -20.4 to -28.7. The gap does not catch the course
# template's recipe trained on the test split: 600 epochs collapsed onto a few cells (no gap), as the
# same run on training digits did; on 1,000 test digits with EMA its gaps (-1.99 to -1.39) fell
# within the same run's on training digits (-2.01 to -0.59) (bench/data_copying.py,
# docs/data-copying.md). The lean below does.
#
# V is one of MIRRORS disjoint draws (together every training digit outside P), chosen per
# evaluation with the host's randomness after the samples exist: with one public V, eroded copies
# of the test split and of V hid from the gap; against any other mirror they show (tests/metrics/test_copying.py).
MIRROR_COUNT = 10_000
MIRRORS = 5
MIRROR_SEED = 99
GAP_FLAG_BELOW = -3.0
# The gap subtracts two tests' C_T, which share a scale only when the samples fill cells holding most
# of each test's genuine digits. With a few dozen samples a test falls back to one global comparison
# or rests on one or two cells, and C_T changes scale with that: 64 of the kit's outputs, blurred
# and mirrored, gave C_T +13.6 from the global comparison, +7.7 when one cell held 20 of them, and a
# gap of -6.0 when the mirror fell back and the test did not (tests/metrics/test_copying.py). So the
# gap is left out (None, no flag) unless the cells used hold at least GAP_MIN_SHARE of the genuine
# digits in the test and in its mirror; C_T's own flag stands at any count (ten exact copies are
# flagged).
GAP_MIN_SHARE = 0.5
# The lean: which split the samples copy more of. A sample is unauthentic against a reference set
# when it lies closer to its nearest digit r there than r lies to its own nearest neighbour (Alaa,
# van Breugel, Saveliev and van der Schaar, ICML 2022, "How Faithful is your Synthetic Data?").
# Against T and against the drawn mirror's V (10,000 digits each), b samples are unauthentic against
# T alone and c against V alone; the lean is McNemar's z = (b - c) / sqrt(b + c). Generators
# trained on the training split (which holds V) lean to V; one trained on the test split leans to T,
# in the centred embedding. Over all five mirrors (bench/authenticity_split.py, 2026-12-06 and
# 2026-12-07, docs/data-copying.md): the course template's recipe trained on 10,000 test digits
# +2.13 to +3.92 (400 epochs, EMA 0.999) and +3.03 to +6.00 (600 epochs, no EMA); the same recipe on
# as many training digits -8.36 to -4.16 and -6.44 to -0.09; the kit and every reference generator
# -10.01 to -0.82; genuine training digits outside V -9.19 to -8.15. In the upright embedding the
# honest runs reached +2.48 and +5.17, so only the centred one decides. Flag above LEAN_FLAG_ABOVE.
LEAN_EMBEDDING = "centred"
LEAN_FLAG_ABOVE = 2.0
FORMAT = 7  # 7: each reference digit's own nearest-neighbour distance (the lean); 6: float32 nearest search


def canonical(images: np.ndarray) -> dict[str, torch.Tensor]:
    """(N, 784) standardised rows in each of EMBEDDINGS: each digit centred on its centre of mass,
    rescaled to a fixed radius of gyration, for "upright" also turned so that its principal axis is
    vertical, then blurred. The moments are computed once for both, from the row and column sums
    (two small products instead of five passes over every pixel)."""
    import torch.nn.functional as F

    from evaluator.metrics.memorisation import blur, standardise

    x = torch.from_numpy(np.asarray(images, dtype=np.float32) / 255.0)
    count, size = len(x), x.shape[-1]
    axis = torch.arange(size, dtype=torch.float32)
    rows, columns = x.sum(2), x.sum(1)  # (N, size): mass per row (y) and per column (x)
    mass = rows.sum(1).clamp_min(1e-6)
    cy, cx = rows @ axis / mass, columns @ axis / mass
    syy = rows @ (axis * axis) / mass - cy * cy
    sxx = columns @ (axis * axis) / mass - cx * cx
    sxy = (x @ axis) @ axis / mass - cx * cy  # sum of x * y * pixel, over the mass, less the centre's
    scale = torch.sqrt((syy + sxx).clamp_min(1e-6)) / GYRATION_RADIUS
    half = (size - 1) / 2
    embedded = {}
    for name in EMBEDDINGS:
        angle = 0.5 * torch.atan2(2 * sxy, syy - sxx) if name == "upright" else torch.zeros(count)
        theta = torch.zeros(count, 2, 3)  # output grid -> input grid, in affine_grid's [-1, 1] coordinates
        theta[:, 0, 0], theta[:, 0, 1] = scale * torch.cos(angle), scale * torch.sin(angle)
        theta[:, 1, 0], theta[:, 1, 1] = -scale * torch.sin(angle), scale * torch.cos(angle)
        theta[:, 0, 2], theta[:, 1, 2] = (cx - half) / half, (cy - half) / half
        grid = F.affine_grid(theta, [count, 1, size, size], align_corners=True)
        resampled = F.grid_sample(x[:, None], grid, align_corners=True, padding_mode="zeros")[:, 0]
        embedded[name] = standardise(blur(resampled, EMBEDDING_BLUR))
    return embedded


def nearest_points(queries: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each query's nearest reference point (index) and the Euclidean distance to it: the point from
    a float32 search, its distance recomputed in float64. Only a float32 near-tie can make it another
    point, farther by a relative 1e-6 or so: below anything a rank test sees."""
    nearest = knn.nearest_index(queries, reference)
    return nearest, np.sqrt(knn.pair_sq_distances(queries, reference, np.arange(len(queries)), nearest))


def mann_whitney_u(q: np.ndarray, p: np.ndarray) -> float:
    """Mann and Whitney's U of `q` against `p`: the pairs with q > p, a tie counting one half. It
    equals scipy.stats.mannwhitneyu's statistic (a test checks), without importing scipy.stats
    (0.6 s of every evaluation's start-up)."""
    ordered = np.sort(np.asarray(p, dtype=np.float64))
    q = np.asarray(q, dtype=np.float64)
    below = np.searchsorted(ordered, q, side="left")
    tied = np.searchsorted(ordered, q, side="right") - below
    return float(below.sum() + 0.5 * tied.sum())


def nearest_cell(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    return torch.cdist(torch.from_numpy(np.ascontiguousarray(points, dtype=np.float64)),
                       torch.from_numpy(np.ascontiguousarray(centers, dtype=np.float64))).argmin(dim=1).numpy()


@dataclass
class CopyTest:
    """The reference side of the test in one embedding: T projected, its cells, P's distances."""

    mean: np.ndarray  # (D,) of T's embedding
    basis: np.ndarray  # (D, PCA_COMPONENTS)
    reference: np.ndarray  # (M, PCA_COMPONENTS) T
    centers: np.ndarray  # (CELLS, PCA_COMPONENTS)
    held_out_distances: np.ndarray  # (n,) P's distance to T
    held_out_cells: np.ndarray  # (n,)
    own_distances: np.ndarray  # (M,) each T digit's distance to its nearest other T digit

    @classmethod
    def build(cls, reference: np.ndarray, held_out: np.ndarray, cells: int = CELLS,
              components: int = PCA_COMPONENTS, seed: int = 0) -> "CopyTest":
        """From embedded T and P (rows); PCA of T (float64), k-means on T's projection."""
        from sklearn.cluster import KMeans

        reference = np.asarray(reference, dtype=np.float64)
        mean = reference.mean(axis=0)
        _, vectors = np.linalg.eigh(np.cov(reference - mean, rowvar=False))
        basis = vectors[:, ::-1][:, :components].copy()
        projected = (reference - mean) @ basis
        centers = KMeans(n_clusters=cells, n_init=4, random_state=seed).fit(projected).cluster_centers_
        own = np.sqrt(knn.kth_neighbour_radii_sq(projected, 1, knn.BruteForceBackend()))
        test = cls(mean, basis, projected, centers, np.zeros(0), np.zeros(0, dtype=np.int64), own)
        test.held_out_distances, test.held_out_cells, _ = test._locate(held_out)
        return test

    def _locate(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each row's distance to its nearest T digit, its cell, and that digit's index."""
        # in float32: a quarter of the float64 product's time, and the distances are recomputed in float64
        rows = torch.as_tensor(np.asarray(rows, dtype=np.float32))
        projected = ((rows - torch.as_tensor(self.mean, dtype=torch.float32))
                     @ torch.as_tensor(self.basis, dtype=torch.float32)).numpy()
        nearest, distances = nearest_points(projected, self.reference)
        return distances, nearest_cell(projected, self.centers), nearest

    def statistic(self, samples: np.ndarray) -> dict:
        """C_T of embedded `samples` (rows), with the cells it used, and which samples are
        unauthentic against T (closer to their nearest T digit than it is to its own neighbour)."""
        distances, cells, nearest = self._locate(samples)
        unauthentic = distances < self.own_distances[nearest]

        def z_score(q: np.ndarray, p: np.ndarray) -> float:
            m, n = len(q), len(p)
            return float((mann_whitney_u(q, p) - m * n / 2) / np.sqrt(m * n * (m + n + 1) / 12))

        weights, scores = [], []
        share = np.bincount(self.held_out_cells, minlength=len(self.centers)) / len(self.held_out_cells)
        for cell in range(len(self.centers)):
            q, p = distances[cells == cell], self.held_out_distances[self.held_out_cells == cell]
            if len(q) >= MIN_CELL_SAMPLES and len(p):
                scores.append(z_score(q, p))
                weights.append(share[cell])
        if not weights:  # too few samples for any cell (a test run of a few dozen): one global cell
            return {"ct": z_score(distances, self.held_out_distances), "cells_used": 0, "held_out_share": 0.0,
                    "cell_z": [], "unauthentic": unauthentic}
        weights = np.asarray(weights)
        return {"ct": float(np.dot(weights, scores) / weights.sum()), "cells_used": len(weights),
                "held_out_share": float(weights.sum()), "cell_z": [round(float(z), 2) for z in scores],
                "unauthentic": unauthentic}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "basis": self.basis, "reference": self.reference, "centers": self.centers,
                "held_out_distances": self.held_out_distances, "held_out_cells": self.held_out_cells,
                "own_distances": self.own_distances}


def embed(images: np.ndarray) -> dict[str, np.ndarray]:
    """The images in each of EMBEDDINGS, as rows."""
    return {name: rows.numpy() for name, rows in canonical(images).items()}


def held_out_indices(train_count: int) -> np.ndarray:
    """P: the training digits compared with the samples (the same draw everywhere)."""
    return np.random.default_rng(HELD_OUT_SEED).choice(train_count, HELD_OUT_COUNT, replace=False)


def mirror_indices(train_count: int, which: int = 0) -> np.ndarray:
    """V number `which` (of MIRRORS): training digits outside P, the draws disjoint."""
    outside = np.setdiff1d(np.arange(train_count), held_out_indices(train_count))
    order = np.random.default_rng(MIRROR_SEED).permutation(outside)
    return np.sort(order[which * MIRROR_COUNT:(which + 1) * MIRROR_COUNT])


def copy_tests(data_root: str | None, cache_dir: str | None) -> dict[str, CopyTest]:
    """The test in each embedding: from the on-disk cache when its key (both splits' checksums, the
    settings) and checksum match, else built (about 4 s on two cores) and cached."""
    return _cached_tests(data_root, cache_dir, None)


def mirror_tests(data_root: str | None, cache_dir: str | None, which: int) -> dict[str, CopyTest]:
    """Mirror number `which` in each embedding (its V in T's place, the test split as V's unseen
    digits), cached in a file of its own: an evaluation reads the test and the one mirror it drew
    (a sixth of the bytes each, instead of all twelve tests in one file)."""
    if not 0 <= which < MIRRORS:
        raise ValueError(f"mirror {which} is not one of 0..{MIRRORS - 1}")
    return _cached_tests(data_root, cache_dir, which)


FIELDS = ("mean", "basis", "reference", "centers", "held_out_distances", "held_out_cells", "own_distances")


@lru_cache(maxsize=MIRRORS + 1)
def _cached_tests(data_root: str | None, cache_dir: str | None, mirror: int | None) -> dict[str, CopyTest]:
    """One side of the test (`mirror` None: T with P; else that mirror's V with the test split), in
    every embedding."""
    key = {"format": FORMAT, "embeddings": list(EMBEDDINGS), "blur": EMBEDDING_BLUR, "radius": GYRATION_RADIUS,
           "components": PCA_COMPONENTS, "cells": CELLS, "held_out": [HELD_OUT_COUNT, HELD_OUT_SEED],
           "train": mnist.split_checksum("train", data_root), "test": mnist.split_checksum("test", data_root)}
    if mirror is not None:
        key["mirror"] = [MIRROR_COUNT, MIRRORS, MIRROR_SEED, mirror]
    path = cache_path(resolve_cache_dir(cache_dir), "copy-test" if mirror is None else "copy-mirror", key)
    arrays, _ = load_arrays(path, key)
    if arrays is not None:
        return {name: CopyTest(**{f: arrays[f"{name}_{f}"] for f in FIELDS}) for name in EMBEDDINGS}
    train, test = mnist.load_split("train", data_root), mnist.load_split("test", data_root)
    if mirror is None:
        reference, genuine = test.images, train.images[held_out_indices(len(train.images))]
    else:
        reference, genuine = train.images[mirror_indices(len(train.images), mirror)], test.images
    reference, genuine = embed(reference), embed(genuine)
    tests = {name: CopyTest.build(reference[name], genuine[name]) for name in EMBEDDINGS}
    save_arrays(path, key, {f"{name}_{f}": value for name, built in tests.items() for f, value in built.arrays().items()})
    return tests


def mcnemar_z(against_test: np.ndarray, against_mirror: np.ndarray) -> float:
    """McNemar's z of two paired boolean outcomes: (b - c) / sqrt(b + c), b the samples unauthentic
    against the test split alone, c against the mirror alone (0 when neither happens)."""
    only_test = int(np.count_nonzero(against_test & ~against_mirror))
    only_mirror = int(np.count_nonzero(against_mirror & ~against_test))
    return (only_test - only_mirror) / max(float(np.sqrt(only_test + only_mirror)), 1.0)


class Decision(NamedTuple):
    ct: float  # the lower C_T of the embeddings
    gap: float | None  # None when the samples do not fill the cells (GAP_MIN_SHARE)
    lean: float  # in LEAN_EMBEDDING
    flagged: bool


def decision(found: dict[str, dict], mirrored: dict[str, dict]) -> Decision:
    """C_T, the gap, the lean and the flag, from each embedding's `CopyTest.statistic` against the
    test and against one mirror."""
    lowest = min(value["ct"] for value in found.values())
    comparable = all(value["held_out_share"] >= GAP_MIN_SHARE for value in (*found.values(), *mirrored.values()))
    gap = min(found[name]["ct"] - mirrored[name]["ct"] for name in found) if comparable else None
    lean = mcnemar_z(found[LEAN_EMBEDDING]["unauthentic"], mirrored[LEAN_EMBEDDING]["unauthentic"])
    flagged = lowest < FLAG_BELOW or (gap is not None and gap < GAP_FLAG_BELOW) or lean > LEAN_FLAG_ABOVE
    return Decision(lowest, gap, lean, bool(flagged))


def copying(context: SampleContext) -> MetricValues:
    root = None if context.data_root is None else str(context.data_root)
    cache_dir = None if context.cache_dir is None else str(context.cache_dir)
    which = secrets.randbelow(MIRRORS)  # unpredictable to the team, drawn after its samples exist
    tests, mirrors = copy_tests(root, cache_dir), mirror_tests(root, cache_dir, which)
    embedded = embed(context.images)
    found = {name: tests[name].statistic(embedded[name]) for name in EMBEDDINGS}
    mirrored = {name: mirrors[name].statistic(embedded[name]) for name in EMBEDDINGS}
    lowest, gap, lean, flagged = decision(found, mirrored)
    return {"ct": lowest, **{f"ct_{name}": value["ct"] for name, value in found.items()}, "gap": gap,
            "lean": lean, "flagged": flagged,
            "settings": {"cells": CELLS, "min_cell_samples": MIN_CELL_SAMPLES, "held_out": HELD_OUT_COUNT,
                         "flag_below": FLAG_BELOW, "mirror": {"count": MIRROR_COUNT, "drawn": which, "of": MIRRORS},
                         "gap_flag_below": GAP_FLAG_BELOW, "gap_min_share": GAP_MIN_SHARE,
                         "lean_embedding": LEAN_EMBEDDING, "lean_flag_above": LEAN_FLAG_ABOVE,
                         "lean_by_embedding": {name: round(mcnemar_z(value["unauthentic"], mirrored[name]["unauthentic"]), 4)
                                               for name, value in found.items()},
                         "ct_mirror": {name: round(value["ct"], 4) for name, value in mirrored.items()},
                         "held_out_share": {**{name: round(value["held_out_share"], 4) for name, value in found.items()},
                                            **{f"mirror_{name}": round(value["held_out_share"], 4)
                                               for name, value in mirrored.items()}},
                         "cells_used": {name: value["cells_used"] for name, value in found.items()},
                         "cell_z": {name: value["cell_z"] for name, value in found.items()}}}
