"""The result JSON: one versioned schema for every run (see docs/results-schema.md)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).parent / "schema" / "result.schema.json"
PACKAGES = ("torch", "torchvision", "numpy", "scipy", "pillow")


def package_versions() -> dict[str, str]:
    """Versions of the evaluator and the packages that determine its numbers."""
    from evaluator import __version__

    versions = {"evaluator": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id() -> str:
    """Sortable and unique enough for one organiser: UTC time plus 6 random hex digits."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + os.urandom(3).hex()


def write_file(path: str | os.PathLike, data: bytes | str, mode: int = 0o644) -> Path:
    """Write a file atomically (temp file + rename), readable by all (`mode`): a reader never sees
    half a file, and every output (result.json, log.txt, grid.png, pages) gets the same mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_json(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write JSON atomically (see `write_file`)."""
    return write_file(path, json.dumps(payload, indent=2, sort_keys=False, allow_nan=False) + "\n")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())
