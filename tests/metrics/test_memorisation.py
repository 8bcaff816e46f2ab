"""The copy detector: copies of either split through noise, blur, shifts and contrast are flagged;
genuine unseen digits and a trained generator's samples are not."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from evaluator import mnist
from evaluator.metrics import memorisation
from evaluator.metrics.context import SampleContext


def _context(images, mnist_root, cache_dir):
    return SampleContext(images, np.full((len(images), 10), 0.1), np.full(10, 0.1), mnist_root, cache_dir)


@pytest.fixture(scope="module")
def detector(mnist_root, cache_dir):
    return memorisation.copy_detector(str(mnist_root), str(cache_dir))


def noisy(images, sigma, rng):
    return np.round(np.clip(images / 255.0 + rng.normal(0, sigma, images.shape), 0, 1) * 255).astype(np.uint8)


def blurred(images, sigma):
    return np.clip(np.round(memorisation.blur(torch.from_numpy(images.astype(np.float32)), sigma).numpy()),
                   0, 255).astype(np.uint8)


PERTURBATIONS = {
    "exact": lambda x, rng: x,
    "noise σ 0.1": lambda x, rng: noisy(x, 0.1, rng),
    "1-px blur": lambda x, rng: blurred(x, 1.0),
    "1-px shift": lambda x, rng: np.roll(x, 1, axis=2),
    "2-px shift": lambda x, rng: np.roll(x, (2, -1), axis=(1, 2)),
    "contrast": lambda x, rng: np.round(x * 0.6 + 60).astype(np.uint8),
    "shift and noise": lambda x, rng: noisy(np.roll(x, -1, axis=1), 0.05, rng),
}


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("perturbation", list(PERTURBATIONS))
def test_perturbed_copies_of_either_split_are_flagged(split, perturbation, train_digits, test_digits, mnist_root,
                                                      cache_dir, detector):
    rng = np.random.default_rng(7)
    source = (train_digits if split == "train" else test_digits)[rng.choice(10_000, 300, replace=False)]
    values = memorisation.memorisation(_context(PERTURBATIONS[perturbation](source, rng), mnist_root, cache_dir))
    assert values["flagged"]
    assert values["near_copy_fraction"] >= (0.75 if "noise" in perturbation else 0.95)


@pytest.mark.parametrize("perturbation, share", [("exact", 0.997), ("contrast", 0.997), ("2-px shift", 0.997),
                                                 ("1-px blur", 0.98)])
def test_each_copy_is_matched_to_its_own_original(perturbation, share, detector, mnist_root):
    # The search is approximate (candidates, then a coarse ranking, then an exact check of one):
    # a copy that loses its original to a look-alike is measured against the wrong digit. Ranked at
    # one blur level only, 1.2% of contrast-scaled copies did; centred on the ink's centre of mass
    # measured against the image's maximum, 1.5% of copies on a grey background (contrast) did.
    train = mnist.load_split("train", mnist_root).images
    rng = np.random.default_rng(21)
    chosen = np.sort(rng.choice(len(train), 1000, replace=False))
    copies = PERTURBATIONS[perturbation](train[chosen], rng)
    matches = detector.train.match(copies)
    same = (matches.index == chosen) | np.array([np.array_equal(train[i], train[j])
                                                  for i, j in zip(matches.index, chosen)])
    assert same.mean() >= share, f"{(~same).sum()} of 1000 copies matched another digit"


def test_unseen_digits_are_not_copies_with_thresholds_from_other_digits(detector, train_digits, test_digits):
    """The calibration generalises: thresholds set on half the test digits flag well under 1% of the
    other half (checked against the training split alone, as originals should be)."""
    half = np.random.default_rng(3).permutation(10_000)
    matches = detector.train.match(test_digits)
    labels = detector.train.labels[matches.index]
    thresholds = memorisation._thresholds(matches.similarity[half[:5000]], labels[half[:5000]])
    held_out = half[5000:]
    flagged = matches.similarity[held_out] > thresholds[labels[held_out]]
    assert flagged.mean() < memorisation.FLAG_FRACTION


def test_the_calibration_case_is_not_flagged(detector, test_digits):
    """MNIST test digits checked against the training split alone: originals, not copies."""
    matches = detector.train.match(test_digits)
    near = matches.similarity > detector.train_thresholds[detector.train.labels[matches.index]]
    assert near.mean() < memorisation.FLAG_FRACTION


def test_samples_from_the_kits_generator_are_not_flagged(mnist_root, cache_dir):
    from baselines.kit import Generator
    from baselines.train import sha256_file
    from tests.conftest import REPO

    weights = REPO / "submission" / "checkpoints" / "G.pth"
    manifest = REPO / "baselines" / "vanilla" / "manifest.json"
    assert sha256_file(weights) == json.loads(manifest.read_text())["files"]["G.pth"]
    generator = Generator()
    generator.load_state_dict(torch.load(weights, weights_only=True))
    torch.manual_seed(0)
    with torch.no_grad():
        images = ((generator(torch.randn(2000, 100)) + 1) * 127.5).round().to(torch.uint8)
    values = memorisation.memorisation(_context(images.view(-1, 28, 28).numpy(), mnist_root, cache_dir))
    assert not values["flagged"] and values["near_copy_fraction"] < memorisation.FLAG_FRACTION


def test_the_closest_pairs_are_the_evidence(train_digits, mnist_root, cache_dir, rng):
    copies = noisy(train_digits[100:110], 0.05, rng)
    values = memorisation.memorisation(_context(copies, mnist_root, cache_dir))
    closest = values["closest"]
    assert len(closest) == memorisation.CLOSEST_SHOWN and all(pair["near_copy"] for pair in closest)
    assert {(pair["split"], pair["mnist_index"]) for pair in closest} <= {("train", i) for i in range(100, 110)}
    assert [p["margin"] for p in closest] == sorted((p["margin"] for p in closest), reverse=True)


def test_the_blur_matrix_is_a_blur_with_replicated_borders():
    matrix = memorisation.blur_matrix(1.0)
    np.testing.assert_allclose(matrix.sum(1).numpy(), 1.0, atol=1e-6)  # a flat image stays flat
    flat = torch.full((1, 28, 28), 0.3)
    np.testing.assert_allclose(memorisation.blur(flat, 1.0).numpy(), 0.3, atol=1e-6)


def test_standardised_rows_have_zero_mean_and_unit_norm_and_none_is_an_empty_batch(rng):
    images = torch.from_numpy(rng.random((5, 28, 28)).astype(np.float32))
    rows = memorisation.standardise(images)
    np.testing.assert_allclose(rows.mean(1).numpy(), 0.0, atol=1e-6)
    np.testing.assert_allclose(rows.norm(dim=1).numpy(), 1.0, atol=1e-5)
    assert memorisation.standardise(torch.zeros(0, 28, 28)).shape == (0, 784)
    assert torch.all(memorisation.standardise(torch.full((1, 28, 28), 0.5)) == 0)  # a blank image: no NaN


def test_the_cached_detector_is_the_built_one(mnist_root, tmp_path, test_digits):
    memorisation.copy_detector.cache_clear()
    built = memorisation.copy_detector(str(mnist_root), str(tmp_path))
    assert len(list(tmp_path.glob("copy-index-*.npz"))) == 1
    memorisation.copy_detector.cache_clear()
    loaded = memorisation.copy_detector(str(mnist_root), str(tmp_path))
    assert loaded is not built
    np.testing.assert_array_equal(built.train_thresholds, loaded.train_thresholds)
    first, second = built.train.match(test_digits[:200]), loaded.train.match(test_digits[:200])
    np.testing.assert_array_equal(first.index, second.index)
    memorisation.copy_detector.cache_clear()


def test_the_evidence_is_written_beside_the_result(tmp_path, train_digits, mnist_root):
    from PIL import Image

    from evaluator.submission import write_outputs

    pairs = [{"sample": i, "split": "train", "mnist_index": 100 + i, "similarity": 0.99, "margin": 0.01,
              "near_copy": True} for i in range(8)]
    result = {"details": {"memorisation.closest": pairs}}
    path = write_outputs(result, "log", train_digits[100:120], tmp_path / "run", str(mnist_root))
    strip = np.asarray(Image.open(path.parent / "closest.png").convert("L"))
    assert result["closest"] == "closest.png" and strip.shape == (2 * 30 + 2, 8 * 30 + 2)
    # Each sample here is the very digit it is paired with: the two rows are the same images.
    np.testing.assert_array_equal(strip[2:30, 2:30], strip[32:60, 2:30])


def test_the_shifted_rows_are_the_rolled_images_and_their_halves():
    images = memorisation.blur(torch.rand(3, 28, 28, generator=torch.Generator().manual_seed(5)) ** 3, 1.0)
    full, halved = memorisation.shifted_rows(images)
    base = memorisation.standardise(images).reshape(3, 28, 28)
    found_full, found_halved = [], []
    for dy, dx in memorisation.SHIFTS:  # a window of the circular padding is a roll
        rolled = torch.roll(base, shifts=(-dy, -dx), dims=(1, 2))
        found_full.append(rolled.reshape(3, -1))
        found_halved.append(memorisation.halved(rolled.reshape(3, -1)))
    for want in (torch.stack(found_full, 1), torch.stack(found_halved, 1)):
        got = full if want.shape[-1] == 784 else halved
        # the same set of shifts, in the function's own order: match each row to one wanted row
        score = torch.einsum("nsd,ntd->nst", got, want)
        assert torch.allclose(score.amax(2), torch.ones(3, len(memorisation.SHIFTS)), atol=1e-5)
        assert all(len(set(row.tolist())) == len(memorisation.SHIFTS) for row in score.argmax(2))


def test_the_candidate_space_hardly_moves_a_shifted_darker_or_greyed_digit(test_digits):
    """`aligned` centres the ink (measured against the image's own range) before blurring: a copy
    shifted by 2 px, halved in contrast or laid on a grey background lands next to its original,
    nearer than any other of 500 digits."""
    digits = test_digits[:500]
    originals = memorisation.aligned(memorisation._pixels(digits))
    shifted = np.pad(digits, ((0, 0), (2, 0), (0, 2)))[:, :28, 2:]  # 2 px down and left, nothing wrapped
    for changed in (shifted, (digits * 0.5).astype(np.uint8), np.round(digits * 0.6 + 60).astype(np.uint8)):
        correlations = memorisation.aligned(memorisation._pixels(changed)) @ originals.T  # standardised rows
        assert (correlations.argmax(dim=1) == torch.arange(len(digits))).float().mean() >= 0.99
    assert memorisation.aligned(memorisation._pixels(digits[:0])).shape == (0, 784)
