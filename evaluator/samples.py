"""Validate a folder of generated PNGs and load it as a uint8 array (N, 28, 28).

One pass collects every problem into a single report, so a team sees all of them at once.
Files are opened with O_NOFOLLOW after an lstat, checked for the PNG signature, and their
header (size, mode) is checked before any pixel is decoded, with a hard pixel limit.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_COUNT = 10_000
IMAGE_SIZE = (28, 28)
MAX_FILE_BYTES = 1 << 20  # a 28x28 PNG is ~1 KB; anything near 1 MiB is not a digit
MAX_DECODE_PIXELS = 4096  # header sizes above this are refused before decoding
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ACCEPTED_MODES = ("L", "RGB")
_KNOWN_SIGNATURES = {
    b"\xff\xd8\xff": "JPEG",
    b"GIF8": "GIF",
    b"BM": "BMP",
    b"RIFF": "WEBP/RIFF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


@dataclass(frozen=True)
class Problem:
    """One problem with one file (or the folder itself when `file` is empty)."""

    file: str
    code: str
    message: str


@dataclass
class ValidationReport:
    """Every problem found in a samples folder."""

    directory: str
    expected_count: int
    found_count: int = 0
    problems: list[Problem] = field(default_factory=list)
    sha256: str | None = None  # over every file's name and bytes, set when all are valid

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, file: str, code: str, message: str) -> None:
        self.problems.append(Problem(file, code, message))

    def by_code(self) -> dict[str, list[Problem]]:
        grouped: dict[str, list[Problem]] = defaultdict(list)
        for problem in self.problems:
            grouped[problem.code].append(problem)
        return dict(grouped)

    def summary(self, examples: int = 10) -> str:
        """Human-readable report: one section per problem kind, a few examples each."""
        if self.ok:
            return f"{self.directory}: {self.found_count} valid PNGs"
        lines = [
            f"{self.directory}: {len(self.problems)} problem(s) "
            f"(expected {self.expected_count} files named 0.png ... {self.expected_count - 1}.png, "
            f"found {self.found_count} entries)"
        ]
        for code, problems in sorted(self.by_code().items()):
            lines.append(f"  {code}: {len(problems)}")
            for problem in problems[:examples]:
                where = f"{problem.file}: " if problem.file else ""
                lines.append(f"    - {where}{problem.message}")
            if len(problems) > examples:
                lines.append(f"    ... and {len(problems) - examples} more")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self, limit: int = 100) -> dict:
        """JSON form: counts per code and up to `limit` problems listed."""
        return {
            "ok": self.ok,
            "expected_count": self.expected_count,
            "found_count": self.found_count,
            "sha256": self.sha256,
            "summary": self.summary(),
            "problem_counts": {code: len(items) for code, items in self.by_code().items()},
            "problems": [vars(problem) for problem in self.problems[:limit]],
        }


def _describe_file_type(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    for check, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"),
                        (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if check(mode):
            return name
    return "not a regular file"


def _read_regular_file(path: Path, max_bytes: int) -> bytes:
    """Read at most max_bytes + 1 bytes, refusing to follow a symlink or block on a FIFO."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped after our lstat
            raise OSError("not a regular file when opened")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(max_bytes + 1)
    finally:
        os.close(fd)


def _signature_name(head: bytes) -> str:
    for signature, name in _KNOWN_SIGNATURES.items():
        if head.startswith(signature):
            return f"a {name} file"
    return "not a PNG file"


def _decode_png(data: bytes) -> tuple[np.ndarray | None, str, str]:
    """Decode one PNG; returns (pixels, problem code, message)."""
    if not data.startswith(PNG_SIGNATURE):
        return None, "not_png", f"{_signature_name(data[:8])} (no PNG signature)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=["PNG"])
            if image.size != IMAGE_SIZE:
                width, height = image.size
                return None, "wrong_size", f"{width}x{height} pixels, expected 28x28"
            if image.mode not in ACCEPTED_MODES:
                return None, "wrong_mode", (
                    f"mode {image.mode!r}, expected 8-bit grayscale 'L' or RGB with equal channels"
                )
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        return None, "decompression_bomb", f"refused to decode: {err}"
    except Exception as err:  # noqa: BLE001 - any decoder failure is a property of the file
        return None, "decode_error", f"cannot decode PNG: {err}"
    pixels = np.asarray(image, dtype=np.uint8)
    if image.mode == "RGB":
        if not (np.array_equal(pixels[..., 0], pixels[..., 1])
                and np.array_equal(pixels[..., 0], pixels[..., 2])):
            return None, "rgb_not_gray", "RGB image whose three channels differ (must be grayscale)"
        pixels = pixels[..., 0]
    return pixels, "", ""


@dataclass
class _Checked:
    """One file's outcome: pixels when valid, else a problem code and message."""

    pixels: np.ndarray | None
    code: str = ""
    message: str = ""
    sha256: str = ""


def _check_one(directory: Path, name: str, max_bytes: int) -> _Checked:
    path = directory / name
    try:
        info = os.lstat(path)
    except OSError as err:
        return _Checked(None, "unreadable", f"cannot stat: {err.strerror}")
    kind = _describe_file_type(info.st_mode)
    if kind is not None:
        return _Checked(None, "not_regular_file", f"is {kind}; only regular files are accepted")
    if info.st_nlink > 1:
        return _Checked(None, "hard_link", f"has {info.st_nlink} hard links; only plain files are accepted")
    if info.st_size > max_bytes:
        return _Checked(None, "too_large", f"{info.st_size} bytes, the limit is {max_bytes}")
    try:
        data = _read_regular_file(path, max_bytes)
    except OSError as err:
        return _Checked(None, "unreadable", f"cannot read: {err.strerror or err}")
    if len(data) > max_bytes:
        return _Checked(None, "too_large", f"more than {max_bytes} bytes")
    pixels, code, message = _decode_png(data)
    return _Checked(pixels, code, message, hashlib.sha256(data).hexdigest())


def validate_samples(
    directory: str | os.PathLike,
    expected_count: int = DEFAULT_COUNT,
    max_file_bytes: int = MAX_FILE_BYTES,
    workers: int = 4,
    progress: "callable | None" = None,
) -> tuple[np.ndarray | None, ValidationReport]:
    """Validate `directory`; return (uint8 images (N, 28, 28) or None, report).

    `progress(n)` is called as files are checked, for progress bars.
    """
    directory = Path(directory)
    report = ValidationReport(directory=str(directory), expected_count=expected_count)
    try:
        info = os.lstat(directory)
    except OSError as err:
        report.add("", "missing_folder", f"samples folder {directory} does not exist ({err.strerror})")
        return None, report
    if not stat.S_ISDIR(info.st_mode):
        kind = _describe_file_type(info.st_mode) or "a regular file"
        report.add("", "missing_folder", f"{directory} is {kind}, not a folder")
        return None, report

    with os.scandir(directory) as entries:
        names = {entry.name for entry in entries}
    report.found_count = len(names)
    expected_names = [f"{index}.png" for index in range(expected_count)]
    expected_set = set(expected_names)
    for name in expected_names:
        if name not in names:
            report.add(name, "missing", "expected file is missing")
    for name in sorted(names - expected_set, key=_natural_key):
        report.add(name, "extra", "unexpected entry (only 0.png ... N-1.png are allowed)")

    present = [name for name in expected_names if name in names]
    images = np.zeros((expected_count, *IMAGE_SIZE), dtype=np.uint8)
    # Pillow's bomb limit is process-global; lower it only while we decode team files.
    saved_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, MAX_DECODE_PIXELS
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            checked = pool.map(lambda name: (name, _check_one(directory, name, max_file_bytes)),
                               present, chunksize=64)
            digest = hashlib.sha256()
            for name, result in checked:
                if result.pixels is None:
                    report.add(name, result.code, result.message)
                else:
                    images[int(name[:-4])] = result.pixels
                    digest.update(f"{name}:{result.sha256}\n".encode())
                if progress is not None:
                    progress(1)
    finally:
        Image.MAX_IMAGE_PIXELS = saved_limit
    report.sha256 = digest.hexdigest() if report.ok else None
    return (images if report.ok else None), report


def _natural_key(name: str) -> tuple:
    stem = name.split(".", 1)[0]
    return (0, int(stem), name) if stem.isdigit() else (1, 0, name)


def write_samples(images: np.ndarray, directory: str | os.PathLike) -> Path:
    """Write uint8 (N, 28, 28) images as `0.png ... N-1.png` (tests, benchmarks, fixtures)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for index, pixels in enumerate(images):
        Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(directory / f"{index}.png")
    return directory
