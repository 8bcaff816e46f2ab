"""Resource limits for one sandboxed generation run, and for the evaluator's own work on team data."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str | int) -> int:
    """'512M', '4G', '1.5G' or a byte count -> bytes."""
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(text), re.IGNORECASE)
    if not match:
        raise ValueError(f"not a size: {text!r} (use e.g. 512M or 4G)")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


@dataclass
class Limits:
    timeout_s: float = 600.0
    memory_bytes: int = 8 << 30
    pids: int = 256
    # What generate.py may write into its (throwaway) copy: samples/ and any scratch files beside it.
    samples_max_bytes: int = 256 << 20
    samples_max_files: int = 20_000
    tmp_bytes: int = 512 << 20
    max_file_bytes: int = 256 << 20  # RLIMIT_FSIZE: one file written anywhere
    trace_max_bytes: int = 256 << 20  # the rule check's record of generator calls (bootstrap.py)
    # The team folder as copied (staging refuses beyond these, before running anything).
    submission_max_bytes: int = 1 << 30
    submission_max_file_bytes: int = 512 << 20
    submission_max_files: int = 5_000  # files and folders; the kit has 5, real team folders < 100
    submission_max_depth: int = 32
    # The evaluator's own work on what the run wrote (outside the sandbox).
    validation_timeout_s: float = 300.0  # 10K plain PNGs validate in about 3 s

    def to_dict(self) -> dict:
        return asdict(self)
