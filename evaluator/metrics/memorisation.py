"""Metric `memorisation`: samples that are copies of MNIST digits, through noise, blur,
small shifts and contrast changes, of either split.

Pixel distance alone was fooled by a little noise (σ 0.05 moved every copy past its threshold).
Here a sample x and an MNIST image r are compared by their best correlation over the nuisances a
copier can add, each undone explicitly:

    similarity(x, r) = max over shifts d in {-2, ..., 2}² and extra blurs β of
                       corr( G₁(x), shift_d(G_√(1+β²)(r)) )

with G_σ a Gaussian blur (replicated borders). Correlation ignores contrast and brightness; the
blur G₁ on both sides damps pixel noise; matching β on the MNIST side undoes a blur applied to the
copy; the shifts undo a displacement. Candidates come from a shift-invariant space first (the
magnitude spectrum of a strongly blurred image, 64 principal components), then are verified as
above.

A sample is a near-copy of an MNIST image when its similarity exceeds what genuine, unseen digits
of that class reach: the 99.9th percentile of the similarity of MNIST test digits to the training
split (for copies of training digits), and of 10,000 training digits to the test split (for
copies of test digits, the worst case, since the test split is the reference). Per class, because
ones are far more alike than fives. The submission is flagged when more than FLAG_FRACTION of its
samples are near-copies. Calibration and detection rates are measured in tests and the README.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from evaluator import mnist
from evaluator.cache import cache_path, load_arrays, resolve_cache_dir, save_arrays
from evaluator.metrics.context import SampleContext
from evaluator.metrics.registry import MetricValues

DETECTION_BLUR = 1.0  # pixels, on both sides
REFERENCE_BLURS = (0.0, 0.7, 1.0, 1.4)  # extra blur tried on the MNIST side
# Up to 2 pixels each way: with 1, a 2-px shift of 1,000 training digits went unflagged (0%); with
# 2 every one is caught, genuine digits reach the same thresholds (to 1e-4) and the metric on 10K
# samples takes 9.0 s instead of 8.0; 3 pixels would catch 81% of (3, -2) shifts for 10.7 s
# (`bench/copy_detector.py --compare-shifts 1,2,3`, 2-core CPU).
MAX_SHIFT = 2
SHIFTS = tuple((dy, dx) for dy in range(-MAX_SHIFT, MAX_SHIFT + 1) for dx in range(-MAX_SHIFT, MAX_SHIFT + 1))
CANDIDATE_BLUR = 3.0
CANDIDATE_COMPONENTS = 64
CANDIDATES = 32
ORIGINALS_PERCENTILE = 99.9  # of genuine unseen digits' similarity: the near-copy threshold
CALIBRATION_COUNT = 10_000  # training digits checked against the test split
FLAG_FRACTION = 0.01  # the result is flagged above this share of near-copies
CLOSEST_SHOWN = 8  # pairs kept as evidence (details: memorisation.closest)
CHUNK = 512
INDEX_FORMAT = 2


@lru_cache(maxsize=16)
def blur_matrix(sigma: float, size: int = 28) -> torch.Tensor:
    """(size, size) matrix M of a 1-D Gaussian blur with replicated borders: blurred = M @ x @ M.T.
    Two small matrix products blur a batch of 28x28 images far faster than a convolution does."""
    half = int(np.ceil(3 * sigma))
    taps = np.exp(-np.arange(-half, half + 1) ** 2 / (2 * sigma**2))
    taps /= taps.sum()
    matrix = np.zeros((size, size))
    for row in range(size):
        for offset, weight in zip(range(-half, half + 1), taps):
            matrix[row, min(max(row + offset, 0), size - 1)] += weight  # replicate: the edge takes the rest
    return torch.from_numpy(matrix.astype(np.float32))


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (N, 28, 28) float images, borders replicated (a grey background stays flat)."""
    if sigma <= 0:
        return images
    matrix = blur_matrix(float(sigma), images.shape[-1])
    return matrix @ images @ matrix.T


def standardise(images: torch.Tensor) -> torch.Tensor:
    """Rows of zero mean and unit norm: their dot product is the correlation."""
    rows = images.reshape(len(images), -1)
    rows = rows - rows.mean(1, keepdim=True)
    return rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-8)


def spectrum(images: torch.Tensor) -> torch.Tensor:
    """Shift-invariant description: the normalised magnitude spectrum of a strongly blurred image."""
    blurred = blur(images, CANDIDATE_BLUR)
    magnitude = torch.fft.rfft2(blurred - blurred.mean(dim=(1, 2), keepdim=True)).abs().reshape(len(images), -1)
    return magnitude / magnitude.norm(dim=1, keepdim=True).clamp_min(1e-8)


def _pixels(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(images, dtype=np.float32) / 255.0)


@dataclass
class Matches:
    similarity: np.ndarray  # float64 (N,): the best similarity to any image of the index
    index: np.ndarray  # int64 (N,): which image


class CopyIndex:
    """The images of one MNIST split, searchable by `similarity` (module docstring)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, precomputed: dict | None = None) -> None:
        self.images = np.asarray(images, dtype=np.uint8)
        self.labels = np.asarray(labels, dtype=np.int64)
        # Each image blurred for every level, standardised: float16 keeps 70,000 x 4 levels in 440 MB, and
        # a correlation rounded at 1e-3 relative is far finer than the thresholds' spacing.
        pixels = _pixels(self.images)
        self.references = [standardise(blur(pixels, float(np.hypot(DETECTION_BLUR, extra)))).half()
                           for extra in REFERENCE_BLURS]
        if precomputed is not None:
            self.mean, self.basis, self.projected = (torch.from_numpy(precomputed[k])
                                                     for k in ("mean", "basis", "projected"))
            return
        spectra = spectrum(pixels)
        self.mean = spectra.mean(0)
        sample = (spectra[:: max(1, len(spectra) // 10_000)] - self.mean).double()
        _, vectors = torch.linalg.eigh(sample.T @ sample / len(sample))
        self.basis = vectors.flip(1)[:, :CANDIDATE_COMPONENTS].float().contiguous()
        self.projected = ((spectra - self.mean) @ self.basis).contiguous()

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean.numpy(), "basis": self.basis.numpy(), "projected": self.projected.numpy()}

    def match(self, images: np.ndarray) -> Matches:
        """The most similar image of the index for each of `images`."""
        similarity = np.full(len(images), -1.0)
        found = np.zeros(len(images), dtype=np.int64)
        for start in range(0, len(images), CHUNK):
            queries = _pixels(images[start:start + CHUNK])
            distances = torch.cdist((spectrum(queries) - self.mean) @ self.basis, self.projected)
            candidates = torch.topk(distances, min(CANDIDATES, len(self.images)), largest=False).indices
            best, where = self._verify(queries, candidates)
            similarity[start:start + CHUNK], found[start:start + CHUNK] = best, where
        return Matches(similarity, found)

    def _verify(self, queries: torch.Tensor, candidates: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        count, k = candidates.shape
        query = blur(queries, DETECTION_BLUR)
        shifted = torch.stack([standardise(torch.roll(query, shifts=shift, dims=(1, 2))) for shift in SHIFTS], 1)
        flat = candidates.reshape(-1)
        best = torch.full((count,), -1.0)
        where = torch.zeros(count, dtype=torch.long)
        for references in self.references:
            reference = references[flat].float().reshape(count, k, -1)
            scores = torch.einsum("nsd,nkd->nsk", shifted, reference).amax(dim=1)  # best shift per candidate
            value, column = scores.max(dim=1)
            better = value > best
            best[better] = value[better]
            where[better] = candidates[better, column[better]]
        # float16 references round a perfect copy's correlation a hair above 1: a correlation is at most 1
        return best.double().clamp(-1.0, 1.0).numpy(), where.numpy()


@dataclass
class CopyDetector:
    """Both splits' indexes and, per split and class, the similarity genuine unseen digits reach."""

    train: CopyIndex
    test: CopyIndex
    train_thresholds: np.ndarray  # (10,): copies of training digits
    test_thresholds: np.ndarray  # (10,): copies of test digits

    def near_copies(self, images: np.ndarray) -> dict:
        to_train, to_test = self.train.match(images), self.test.match(images)
        train_label = self.train.labels[to_train.index]
        test_label = self.test.labels[to_test.index]
        margin_train = to_train.similarity - self.train_thresholds[train_label]
        margin_test = to_test.similarity - self.test_thresholds[test_label]
        use_test = margin_test > margin_train
        return {"near": (margin_train > 0) | (margin_test > 0), "margin": np.maximum(margin_train, margin_test),
                "similarity": np.where(use_test, to_test.similarity, to_train.similarity),
                "split": np.where(use_test, "test", "train"),
                "index": np.where(use_test, to_test.index, to_train.index)}


def _thresholds(similarity: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.array([np.percentile(similarity[labels == digit], ORIGINALS_PERCENTILE) for digit in range(10)])


def calibration(train: CopyIndex, test: CopyIndex) -> dict[str, np.ndarray]:
    """What genuine unseen digits reach: test digits against train, 10,000 training digits against
    test (neither ever a copy of the other, apart from MNIST's own few near-duplicates)."""
    to_train = train.match(test.images)
    sample = np.random.default_rng(0).choice(len(train.images), CALIBRATION_COUNT, replace=False)
    to_test = test.match(train.images[sample])
    return {"train_thresholds": _thresholds(to_train.similarity, train.labels[to_train.index]),
            "test_thresholds": _thresholds(to_test.similarity, test.labels[to_test.index]),
            "test_to_train": to_train.similarity, "train_to_test": to_test.similarity}


@lru_cache(maxsize=2)
def copy_detector(data_root: str | None, cache_dir: str | None = None) -> CopyDetector:
    """The detector over both MNIST splits: from the on-disk cache when its key (both splits'
    checksums, the settings, the format) and checksum match, else built, calibrated and cached."""
    key = {"format": INDEX_FORMAT, "blur": DETECTION_BLUR, "reference_blurs": list(REFERENCE_BLURS),
           "max_shift": MAX_SHIFT,
           "candidates": [CANDIDATE_BLUR, CANDIDATE_COMPONENTS, CANDIDATES], "percentile": ORIGINALS_PERCENTILE,
           "train": mnist.split_checksum("train", data_root), "test": mnist.split_checksum("test", data_root)}
    train_split, test_split = mnist.load_split("train", data_root), mnist.load_split("test", data_root)
    path = cache_path(resolve_cache_dir(cache_dir), "copy-index", key)
    arrays, _ = load_arrays(path, key)
    if arrays is not None:
        parts = ("mean", "basis", "projected")
        train = CopyIndex(train_split.images, train_split.labels, {p: arrays[f"train_{p}"] for p in parts})
        test = CopyIndex(test_split.images, test_split.labels, {p: arrays[f"test_{p}"] for p in parts})
        return CopyDetector(train, test, arrays["train_thresholds"], arrays["test_thresholds"])
    train, test = CopyIndex(train_split.images, train_split.labels), CopyIndex(test_split.images, test_split.labels)
    calibrated = calibration(train, test)
    save_arrays(path, key, {**{f"train_{k}": v for k, v in train.arrays().items()},
                            **{f"test_{k}": v for k, v in test.arrays().items()},
                            "train_thresholds": calibrated["train_thresholds"],
                            "test_thresholds": calibrated["test_thresholds"]})
    return CopyDetector(train, test, calibrated["train_thresholds"], calibrated["test_thresholds"])


def memorisation(context: SampleContext) -> MetricValues:
    root = None if context.data_root is None else str(context.data_root)
    cache_dir = None if context.cache_dir is None else str(context.cache_dir)
    detector = copy_detector(root, cache_dir)
    found = detector.near_copies(context.images)
    fraction = float(found["near"].mean())
    closest = np.argsort(-found["margin"])[:CLOSEST_SHOWN]
    return {
        "near_copy_fraction": fraction,
        "nn_similarity_median": float(np.median(found["similarity"])),
        "nn_similarity_max": float(found["similarity"].max()),
        "flagged": fraction > FLAG_FRACTION,
        "closest": [{"sample": int(i), "split": str(found["split"][i]), "mnist_index": int(found["index"][i]),
                     "similarity": round(float(found["similarity"][i]), 5),
                     "margin": round(float(found["margin"][i]), 5), "near_copy": bool(found["near"][i])}
                    for i in closest],
        "settings": {
            "flag_fraction": FLAG_FRACTION,
            "originals_percentile": ORIGINALS_PERCENTILE,
            "train_thresholds": detector.train_thresholds.round(5).tolist(),
            "test_thresholds": detector.test_thresholds.round(5).tolist(),
        },
    }
