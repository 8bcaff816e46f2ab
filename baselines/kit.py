"""The competition kit's fixed Generator, loaded from `submission/model.py` (one source of truth)."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from types import ModuleType

KIT_DIR = Path(__file__).resolve().parents[1] / "submission"


@lru_cache(maxsize=1)
def kit_model() -> ModuleType:
    spec = importlib.util.spec_from_file_location("submission_model", KIT_DIR / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@lru_cache(maxsize=1)
def kit_generate() -> ModuleType:
    """The kit's `generate.py` (its sampler and pixel maps), which imports `model` as a team's run
    does: the kit's model module stands in for it."""
    import sys

    sys.modules.setdefault("model", kit_model())
    spec = importlib.util.spec_from_file_location("submission_generate", KIT_DIR / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def Generator():  # noqa: N802 - reads like the class it builds
    return kit_model().Generator(g_output_dim=784)


LATENT_DIM = 100
