"""What a team or the public reads never shows the organiser's machine: host paths become
placeholders in every published text (result.json, log.txt, and so the leaderboard pages).

The sandbox binds the evaluation Python at its host path (a virtual environment under /tmp must
stay importable), so a team's traceback names `/home/organiser/venv/lib/python3.11/site-packages/
torch/...`; staging, caches and MNIST live at host paths too. Each known prefix is written as a
placeholder (`<python>/lib/...`), longest first, only where it ends a path component.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

# Too general to stand for the organiser (and bound read-only into every sandbox anyway).
NOT_PRIVATE = frozenset({"/", "/usr", "/usr/local", "/bin", "/lib", "/lib64", "/etc", "/tmp", "/opt", "/home"})
SCRATCH = re.compile(re.escape(tempfile.gettempdir().rstrip("/")) + r"/mnist-eval-[A-Za-z0-9_]+")
HARNESS = Path(__file__).resolve().parents[1]  # this project's checkout or site-packages folder
END_OF_COMPONENT = r"(?=[/\s'\"`()<>:,;\[\]{}]|$)"


def _variants(path: str | os.PathLike | None) -> set[str]:
    if not path:
        return set()
    raw = os.path.abspath(os.fspath(path)).rstrip("/") or "/"
    return {raw, os.path.realpath(raw)}


def host_prefixes(submission: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None,
                  cache_dir: str | os.PathLike | None = None,
                  extra: dict[str, str | os.PathLike | None] | None = None) -> list[tuple[str, str]]:
    """(host prefix, placeholder) pairs, longest prefix first."""
    named: list[tuple[str | os.PathLike | None, str]] = [
        (sys.prefix, "<python>"), (sys.exec_prefix, "<python>"),
        (sys.base_prefix, "<python-base>"), (sys.base_exec_prefix, "<python-base>"),
        (Path(submission).parent if submission else None, "<submissions>"),
        (data_root, "<mnist>"), (cache_dir, "<cache>"),
        *((path, name) for name, path in (extra or {}).items()),
        (HARNESS, "<harness>"), (os.path.expanduser("~"), "~"), (os.getcwd(), "<cwd>"),
        # Where else this Python imports from ($PYTHONPATH, user site, a .pth file's entries).
        *((entry, "<python-path>") for entry in sys.path if entry and os.path.isdir(entry)),
    ]
    pairs: dict[str, str] = {}
    for path, placeholder in named:
        for variant in _variants(path):
            if variant in NOT_PRIVATE or variant in pairs:
                continue
            # An import folder inside a named prefix keeps that prefix's placeholder (<python>/lib/...).
            if placeholder == "<python-path>" and any(Path(variant).is_relative_to(prefix) for prefix in pairs):
                continue
            pairs[variant] = placeholder
    return sorted(pairs.items(), key=lambda pair: -len(pair[0]))


def redact_text(text: str, prefixes: list[tuple[str, str]]) -> str:
    text = SCRATCH.sub("<scratch>", text)
    for prefix, placeholder in prefixes:
        if prefix in text:
            text = re.sub(re.escape(prefix) + END_OF_COMPONENT, lambda _: placeholder, text)
    return text


def redact(value: Any, prefixes: list[tuple[str, str]]) -> Any:
    """A copy of a JSON-like value with every string redacted (keys included)."""
    if isinstance(value, str):
        return redact_text(value, prefixes)
    if isinstance(value, dict):
        return {redact(key, prefixes): redact(item, prefixes) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(item, prefixes) for item in value]
    return value
