"""Metric `memorisation`: samples that are copies of MNIST digits, through noise, blur,
small shifts and contrast changes, of either split.

Pixel distance alone was fooled by a little noise (σ 0.05 moved every copy past its threshold).
Here a sample x and an MNIST image r are compared by their best correlation over the nuisances a
copier can add, each undone explicitly:

    similarity(x, r) = max over shifts d in {-2, ..., 2}² and extra blurs β of
                       corr( G₁(x), shift_d(G_√(1+β²)(r)) )

with G_σ a Gaussian blur (replicated borders). Correlation ignores contrast and brightness; the
blur G₁ on both sides damps pixel noise; matching β on the MNIST side undoes a blur applied to the
copy; the shifts undo a displacement. Candidates come from a space where none of those moves a
digit far: the image moved so that the centre of mass of its ink (what stands above ALIGN_CUT of its
range after G₁) is the middle, blurred by CANDIDATE_BLUR, standardised, on its first 64 principal
components. The CANDIDATES nearest, found through an inverted-file index (faiss), are ranked by the
same correlation at half resolution at two blur levels, and the best gets the exact similarity
above. The magnitude spectrum used before (shift-invariant, but moved far by noise and blur)
needed 32 candidates and two finalists; in this space 8 and one keep every detection rate of
`bench/copy_detector.py` within 1.1 points (most a little higher: a σ 1 blur of training digits
97.9% -> 98.9%; gamma 2 96.2% -> 95.1%), the kit's samples flagged 0.13% as before, and the metric
on 10K samples takes 0.9 s instead of 1.7 with its index loaded (docs/metrics.md; a one-off
script timing `CopyDetector.near_copies` on the kit's samples, 2-core CPU, 2026-12-07).

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
# samples takes 1.1 s instead of 1.0; 3 pixels would catch 92% of (3, -2) shifts for 1.4 s
# (`bench/copy_detector.py --compare-shifts 1,2,3`, 2-core CPU, 2026-12-07).
MAX_SHIFT = 2
SHIFTS = tuple((dy, dx) for dy in range(-MAX_SHIFT, MAX_SHIFT + 1) for dx in range(-MAX_SHIFT, MAX_SHIFT + 1))
# The candidate space's blur and ink level. Blur 1.5 / 2.5 / 3.5 put a σ 1 blurred training digit's
# original among its 8 nearest 95.0% / 98.7% / 99.7% of the time and a σ 0.15 noisy one's 99.7% /
# 97.2% / 92.2% (1,000 digits, exhaustive search; an exploration on the 2-core CPU, 2026-12-07).
CANDIDATE_BLUR = 2.5
ALIGN_CUT = 0.3
CANDIDATE_COMPONENTS = 64
CANDIDATES = 8  # nearest in the candidate space, ranked at half resolution
# The blur levels (of REFERENCE_BLURS) the candidates are ranked at, by their best. One level is not
# enough: ranked at extra blur 1 only, 1.2% of unblurred copies (contrast x 0.5) lost their original
# to a blurrier look-alike; at 0 only, blurred copies lost theirs (bench/copy_detector.py).
RANKING_LEVELS = (0, 2)
FINALISTS = 1  # of those, the best, whose exact similarity is computed
SEARCH_CELLS = 256  # of the inverted-file index over the candidate space
# Cells probed per query. 4 instead of 8: the search 0.26 -> 0.15 s on 10K samples (both splits), a
# σ 0.15 noisy training digit's original among the candidates 97.3% -> 96.9%, a 5° rotation's 86.3%
# -> 84.6% (1,000 digits; an exploration on the 2-core CPU, 2026-12-07); 16 gained nothing on 8.
SEARCH_PROBES = 4
ORIGINALS_PERCENTILE = 99.9  # of genuine unseen digits' similarity: the near-copy threshold
CALIBRATION_COUNT = 10_000  # training digits checked against the test split
FLAG_FRACTION = 0.01  # the result is flagged above this share of near-copies
CLOSEST_SHOWN = 8  # pairs kept as evidence (details: memorisation.closest)
CHUNK = 512
INDEX_FORMAT = 10  # 10: candidates from the ink-centred, blurred image (was the magnitude spectrum)


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
    rows = images.flatten(1)  # (N, pixels), N = 0 included (reshape(0, -1) cannot infer the width)
    rows = rows - rows.mean(1, keepdim=True)
    return rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-8)


def aligned(images: torch.Tensor) -> torch.Tensor:
    """The candidate space: each image moved so that the centre of mass of its ink is the centre,
    heavily blurred and standardised (N, 784). The ink is what stands above ALIGN_CUT of the image's
    own range after the detection blur, so that noise on the background, a contrast change or a
    blur of the copy hardly moves the centre. The move and the blur are one product in the Fourier
    domain (circular: MNIST's margins keep a digit clear of the wrap)."""
    count, size = len(images), images.shape[-1]
    if count == 0:
        return images.reshape(0, size * size)
    smooth = blur(images, DETECTION_BLUR)
    smooth = smooth - smooth.amin(dim=(1, 2), keepdim=True)  # a grey background is no ink
    ink = (smooth / smooth.amax(dim=(1, 2), keepdim=True).clamp_min(1e-6) - ALIGN_CUT).clamp_min(0)
    axis = torch.arange(size, dtype=torch.float32)
    rows, columns = ink.sum(2), ink.sum(1)
    mass = rows.sum(1).clamp_min(1e-6)
    centre = (size - 1) / 2
    dy, dx = rows @ axis / mass - centre, columns @ axis / mass - centre  # (N,): where the ink sits
    fy, fx = torch.fft.fftfreq(size), torch.fft.rfftfreq(size)
    gaussian = torch.exp(-2 * np.pi ** 2 * CANDIDATE_BLUR ** 2 * (fy[:, None] ** 2 + fx[None, :] ** 2))

    def ramp(frequencies: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:  # (N, F): the move along one axis
        angle = 2 * np.pi * offset[:, None] * frequencies[None, :]
        return torch.polar(torch.ones_like(angle), angle)

    moved = ramp(fy, dy)[:, :, None] * ramp(fx, dx)[:, None, :]  # in place below: a third of the time
    moved.mul_(gaussian).mul_(torch.fft.rfft2(images))
    return standardise(torch.fft.irfft2(moved, s=(size, size)))


def shifted_rows(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image standardised, then rolled by every shift of SHIFTS (in another order):
    (N, len(SHIFTS), 784), and the same windows averaged over 2x2 pixels and standardised again,
    (N, len(SHIFTS), 196), for the candidates' ranking. A roll keeps the mean and the norm, so one
    standardisation serves all; the rolls are the windows of the circularly padded image. Every
    halved window is read from one map of the padded image's 2x2 averages at every pixel (each
    window takes every other row and column of it): one pass instead of a pooling per pixel phase
    and a stack of 25 slices (this function on 10K samples 0.64 -> 0.53 s, a one-off script on the
    2-core CPU under load, 2026-12-06)."""
    count, size = len(images), images.shape[-1]
    padded = torch.nn.functional.pad(standardise(images).reshape(count, 1, size, size), (MAX_SHIFT,) * 4,
                                     mode="circular")[:, 0]
    windows = padded.unfold(1, size, 1).unfold(2, size, 1)  # (N, 2s+1, 2s+1, size, size)
    full = windows.reshape(count, len(SHIFTS), size * size)
    boxes = (padded[:, :-1, :-1] + padded[:, 1:, :-1] + padded[:, :-1, 1:] + padded[:, 1:, 1:]) * 0.25
    boxes = boxes.contiguous()  # (N, size + 2s - 1, ...): the 2x2 average whose top-left pixel is (y, x)
    half, starts = size // 2, 2 * MAX_SHIFT + 1
    image_stride, row_stride, _ = boxes.stride()
    halved_windows = boxes.as_strided((count, starts, starts, half, half),
                                      (image_stride, row_stride, 1, 2 * row_stride, 2))
    return full, standardise(halved_windows.reshape(-1, half * half)).reshape(count, starts ** 2, half * half)


def pool(images: torch.Tensor) -> torch.Tensor:
    """(N, H, W) averaged over 2x2 pixels: (N, H/2, W/2)."""
    return torch.nn.functional.avg_pool2d(images[:, None], 2)[:, 0]


def halved(rows: torch.Tensor) -> torch.Tensor:
    """Standardised rows (M, 784) averaged over 2x2 pixels and standardised again (M, 196): the
    candidates' ranking needs only the coarse shape, at a quarter of the products."""
    size = int(round(rows.shape[-1] ** 0.5))
    return standardise(pool(rows.reshape(-1, size, size)))


def _pixels(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(images, dtype=np.uint8)).float().div_(255.0)  # a copy: the input may be read-only


@dataclass
class Matches:
    similarity: np.ndarray  # float64 (N,): the best similarity to any image of the index
    index: np.ndarray  # int64 (N,): which image


def _search_index(projected: np.ndarray):
    """An inverted-file index (faiss IndexIVFFlat) over the candidate space: a query is compared
    with the images of the SEARCH_PROBES cells nearest to it, never with all 60,000."""
    import faiss

    quantiser = faiss.IndexFlatL2(projected.shape[1])
    cells = max(1, min(SEARCH_CELLS, len(projected) // 40))  # faiss wants 39+ points a cell to train
    index = faiss.IndexIVFFlat(quantiser, projected.shape[1], cells)
    index.cp.seed = 0
    index.train(projected)
    index.add(projected)
    return index


class CopyIndex:
    """The images of one MNIST split, searchable by `similarity` (module docstring)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, precomputed: dict | None = None) -> None:
        import faiss

        self.images = np.asarray(images, dtype=np.uint8)
        self.labels = np.asarray(labels, dtype=np.int64)
        if precomputed is not None:
            self.mean, self.basis = (torch.from_numpy(precomputed[k]) for k in ("mean", "basis"))
            self.coarse = torch.from_numpy(precomputed["coarse"])  # float16 (M, levels, 196): rows widen when gathered
            self.search = faiss.deserialize_index(precomputed["search"])
        else:
            pixels = _pixels(self.images)
            rows = aligned(pixels)
            self.mean = rows.mean(0)
            sample = (rows[:: max(1, len(rows) // 10_000)] - self.mean).double()
            _, vectors = torch.linalg.eigh(sample.T @ sample / len(sample))
            self.basis = vectors.flip(1)[:, :CANDIDATE_COMPONENTS].float().contiguous()
            self.search = _search_index(((rows - self.mean) @ self.basis).numpy())
            # (M, levels, 196): every image at each ranking level, halved; float16 is ample for a ranking
            self.coarse = torch.stack([
                halved(standardise(blur(pixels, float(np.hypot(DETECTION_BLUR, REFERENCE_BLURS[level])))))
                for level in RANKING_LEVELS], 1).half()
        self.search.nprobe = SEARCH_PROBES

    def arrays(self) -> dict[str, np.ndarray]:
        import faiss

        return {"mean": self.mean.numpy(), "basis": self.basis.numpy(),
                "search": faiss.serialize_index(self.search), "coarse": self.coarse.numpy()}

    def candidates(self, rows: torch.Tensor) -> torch.Tensor:
        """(N, CANDIDATES) indices of the images nearest each query (its `aligned` rows) in the
        candidate space (fewer than CANDIDATES found in the probed cells: the nearest again)."""
        projected = ((rows - self.mean) @ self.basis).numpy()
        _, found = self.search.search(np.ascontiguousarray(projected), min(CANDIDATES, len(self.images)))
        found = torch.from_numpy(found)
        return torch.where(found < 0, found[:, :1].clamp_min(0), found)

    def match(self, images: np.ndarray) -> Matches:
        """The most similar image of the index for each of `images`."""
        return best_matches(images, [self])[0]

    def references(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The images `indices` (..., k) at every blur level of REFERENCE_BLURS, (..., k x levels,
        784), the levels of one image adjacent, and (..., k x levels) the inverse norm of each once
        its mean is taken away. They are left unstandardised: a standardised query has zero mean,
        so its product with an image, times that inverse norm, is their correlation (a pass less over
        every reference: references 0.45 -> 0.3 s of the metric on 10K samples, bench/quick_profile.py)."""
        pixels = _pixels(self.images[indices.reshape(-1).numpy()])
        levels = torch.stack([blur(pixels, float(np.hypot(DETECTION_BLUR, extra))) for extra in REFERENCE_BLURS], 1)
        levels = levels.reshape(len(pixels), len(REFERENCE_BLURS), -1)
        size = levels.shape[-1]
        centred_sq = levels.square().sum(-1) - levels.sum(-1).square() / size
        return (levels.reshape(*indices.shape[:-1], -1, size),
                centred_sq.clamp_min(1e-12).rsqrt().reshape(*indices.shape[:-1], -1))

    def finalists(self, queries: "Queries", candidates: torch.Tensor) -> torch.Tensor:
        """(n, FINALISTS) of the candidates, the best by their correlation at half resolution (the
        RANKING_LEVELS, every shift)."""
        count, k = candidates.shape
        coarse = self.coarse[candidates.reshape(-1)].float().reshape(count, k * len(RANKING_LEVELS), -1)
        ranking = torch.bmm(queries.halved, coarse.transpose(1, 2)).amax(dim=1).reshape(count, k, -1).amax(dim=2)
        return torch.gather(candidates, 1, ranking.topk(min(FINALISTS, k), dim=1).indices)


@dataclass
class Queries:
    """A chunk of samples as the verification needs them, computed once for both splits."""

    shifted: torch.Tensor  # (n, len(SHIFTS), 784)
    halved: torch.Tensor  # (n, len(SHIFTS), 196)


def best_matches(images: np.ndarray, indexes: list[CopyIndex]) -> list[Matches]:
    """The best match of every image in each index: one candidate search per index over all
    images, then the verification chunk by chunk, the chunk's shifted rows shared."""
    pixels = _pixels(images)
    rows = aligned(pixels)
    candidates = [index.candidates(rows) for index in indexes]
    found: list[list[Matches]] = [[] for _ in indexes]
    for start in range(0, len(images), CHUNK):
        queries = Queries(*shifted_rows(blur(pixels[start:start + CHUNK], DETECTION_BLUR)))
        finalists = [index.finalists(queries, chosen[start:start + CHUNK]) for index, chosen in zip(indexes, candidates)]
        references = [index.references(chosen) for index, chosen in zip(indexes, finalists)]
        # every index's finalists against the chunk's shifted rows in one product: the rows, not
        # the few finalists, are the bytes it reads (exact check 0.31 -> 0.17 s on 10K samples)
        scores = torch.bmm(queries.shifted, torch.cat([images for images, _ in references], 1).transpose(1, 2))
        scores = scores.amax(dim=1) * torch.cat([norms for _, norms in references], 1)
        for parts, chosen, part in zip(found, finalists, scores.split([norms.shape[1] for _, norms in references], 1)):
            best, column = part.max(dim=1)  # over (finalists x levels)
            where = torch.gather(chosen, 1, (column // len(REFERENCE_BLURS))[:, None])[:, 0]
            # a correlation is at most 1: rounding can put a perfect copy's a hair above
            parts.append(Matches(best.double().clamp(-1.0, 1.0).numpy(), where.numpy()))
    return [_concatenate(parts) for parts in found]


def _concatenate(parts: list[Matches]) -> Matches:
    if not parts:
        return Matches(np.zeros(0), np.zeros(0, dtype=np.int64))
    return Matches(np.concatenate([p.similarity for p in parts]), np.concatenate([p.index for p in parts]))


@dataclass
class CopyDetector:
    """Both splits' indexes and, per split and class, the similarity genuine unseen digits reach."""

    train: CopyIndex
    test: CopyIndex
    train_thresholds: np.ndarray  # (10,): copies of training digits
    test_thresholds: np.ndarray  # (10,): copies of test digits

    def near_copies(self, images: np.ndarray) -> dict:
        to_train, to_test = best_matches(images, [self.train, self.test])
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
           "candidates": [CANDIDATE_BLUR, CANDIDATE_COMPONENTS, CANDIDATES, list(RANKING_LEVELS), FINALISTS,
                          SEARCH_CELLS, SEARCH_PROBES],
           "percentile": ORIGINALS_PERCENTILE,
           "train": mnist.split_checksum("train", data_root), "test": mnist.split_checksum("test", data_root)}
    train_split, test_split = mnist.load_split("train", data_root), mnist.load_split("test", data_root)
    path = cache_path(resolve_cache_dir(cache_dir), "copy-index", key)
    arrays, _ = load_arrays(path, key)
    if arrays is not None:
        parts = ("mean", "basis", "search", "coarse")
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
