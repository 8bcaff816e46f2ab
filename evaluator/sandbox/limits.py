"""Resource limits for one sandboxed generation run."""

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
    samples_max_bytes: int = 256 << 20
    samples_max_files: int = 20_000
    tmp_bytes: int = 512 << 20
    max_file_bytes: int = 256 << 20  # RLIMIT_FSIZE: one file written anywhere
    submission_max_bytes: int = 1 << 30  # the team folder as copied
    submission_max_file_bytes: int = 512 << 20

    def to_dict(self) -> dict:
        return asdict(self)
