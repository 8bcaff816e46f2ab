"""Shared fixtures: the real MNIST data (CI points MNIST_ROOT at ../shared/data), caches, images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _mnist_root() -> Path | None:
    for candidate in (os.environ.get("MNIST_ROOT"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    root = _mnist_root()
    if root is None:
        pytest.skip("MNIST not found: set MNIST_ROOT to a folder containing MNIST/raw")
    return root


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One reference cache for the whole session (computed once, then hit)."""
    return tmp_path_factory.mktemp("reference-cache")


@pytest.fixture(scope="session")
def test_digits(mnist_root) -> np.ndarray:
    from evaluator import mnist

    return mnist.load_split("test", mnist_root).images


@pytest.fixture(scope="session")
def train_digits(mnist_root) -> np.ndarray:
    from evaluator import mnist

    return mnist.load_split("train", mnist_root).images


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(cache_dir):
    """No test writes to the user's ~/.cache: every default cache goes to the session's folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVALUATOR_CACHE", str(cache_dir))
        yield


@pytest.fixture(scope="session", autouse=True)
def no_scratch_left_behind():
    """Tests that kill an evaluator outright leave its scratch area (tmpfs mounts as root) for the
    next workspace to sweep; the suite sweeps them itself when it ends."""
    import tempfile

    from evaluator.sandbox.workspace import sweep_stale

    yield
    sweep_stale(tempfile.gettempdir())
