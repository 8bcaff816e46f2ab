"""Validate a folder of generated PNGs and load it as a uint8 array (N, 28, 28).

One pass collects every problem into a single report, so a team sees all of them at once; the
report groups them (file ranges such as "2500–2999" and counts), so it stays small however many
files are wrong. Files are opened with O_NOFOLLOW after an lstat and checked for the PNG signature;
only the critical chunks (IHDR, PLTE, IDAT, IEND) reach the decoder, at most MAX_CHUNKS of them
(compressed text chunks once made a file 800 times slower to validate); the header (size, mode)
is checked before any pixel is decoded, with a hard pixel limit; and the whole pass stops at a
deadline, reporting the files it did not reach.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_COUNT = 10_000
IMAGE_SIZE = (28, 28)
MAX_FILE_BYTES = 1 << 20  # a 28x28 PNG is ~1 KB; anything near 1 MiB is not a digit
MAX_DECODE_PIXELS = 4096  # header sizes above this are refused before decoding
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CRITICAL_CHUNKS = (b"IHDR", b"PLTE", b"IDAT", b"IEND")  # all that decoding 8-bit L or RGB needs
MAX_CHUNKS = 1024
MAX_ENTRIES = 50_000  # names read from the folder before giving up
REPORT_RANGES = 40  # file ranges listed per kind of problem
REPORT_NAMES = 20  # names listed per kind of problem, for names that are not numbers
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

    def groups(self) -> list[dict]:
        """Problems grouped by code and message: a count and the files, as compressed ranges."""
        grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
        for problem in self.problems:
            grouped[(problem.code, problem.message)].append(problem.file)
        return [{"code": code, "message": message, "count": len(files), "files": describe_files(files)}
                for (code, message), files in sorted(grouped.items(), key=lambda item: item[0])]

    def summary(self) -> str:
        """Human-readable report: every kind of problem with its count and files."""
        if self.ok:
            return f"{self.directory}: {self.found_count} valid PNGs"
        lines = [
            f"{self.directory}: {len(self.problems)} problem(s) "
            f"(expected {self.expected_count} files named 0.png ... {self.expected_count - 1}.png, "
            f"found {self.found_count} entries)"
        ]
        for group in self.groups():
            where = f": {group['files']}" if group["files"] else ""
            lines.append(f"  {group['code']} ({group['message']}): {group['count']}{where}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self, limit: int = 100) -> dict:
        """JSON form: counts per code, the grouped report, and up to `limit` problems listed."""
        return {
            "ok": self.ok,
            "expected_count": self.expected_count,
            "found_count": self.found_count,
            "sha256": self.sha256,
            "summary": self.summary(),
            "problem_counts": {code: len(items) for code, items in self.by_code().items()},
            "groups": self.groups(),
            "problems": [vars(problem) for problem in self.problems[:limit]],
        }


def describe_files(names: list[str]) -> str:
    """`0.png`..`9999.png` style names as ranges ("2500–2999, 5500–5999"), others by name."""
    numbers = sorted({int(n[:-4]) for n in names if _numbered(n)})
    others = sorted(n for n in names if n and not _numbered(n))
    ranges: list[str] = []
    for number in numbers:
        if ranges and ranges[-1][1] == number - 1:
            ranges[-1] = (ranges[-1][0], number)
        else:
            ranges.append((number, number))
    parts = [f"{a}.png" if a == b else f"{a}–{b}.png" for a, b in ranges[:REPORT_RANGES]]
    if len(ranges) > REPORT_RANGES:
        parts.append(f"… {len(ranges) - REPORT_RANGES} more ranges")
    parts += [repr(n)[1:-1][:80] for n in others[:REPORT_NAMES]]
    if len(others) > REPORT_NAMES:
        parts.append(f"… {len(others) - REPORT_NAMES} more names")
    return ", ".join(parts)


def _numbered(name: str) -> bool:
    stem = name[:-4]
    return name.endswith(".png") and stem.isascii() and stem.isdigit() and (stem == "0" or stem[0] != "0")


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


def _critical_chunks(data: bytes) -> bytes | str:
    """The PNG with only its critical chunks, or why its chunk structure is refused."""
    kept, position, count = [PNG_SIGNATURE], len(PNG_SIGNATURE), 0
    while position < len(data):
        if position + 12 > len(data):
            return "truncated chunk"
        length = int.from_bytes(data[position:position + 4], "big")
        kind = data[position + 4:position + 8]
        end = position + 12 + length
        if end > len(data):
            return "truncated chunk"
        count += 1
        if count > MAX_CHUNKS:
            return f"more than {MAX_CHUNKS} chunks"
        if kind in CRITICAL_CHUNKS:
            kept.append(data[position:end])
        position = end
        if kind == b"IEND":
            break
    return b"".join(kept)


def _decode_png(data: bytes) -> tuple[np.ndarray | None, str, str]:
    """Decode one PNG; returns (pixels, problem code, message)."""
    if not data.startswith(PNG_SIGNATURE):
        return None, "not_png", f"{_signature_name(data[:8])} (no PNG signature)"
    data = _critical_chunks(data)
    if isinstance(data, str):
        code = "decode_error" if data == "truncated chunk" else "too_many_chunks"
        return None, code, f"refused: {data}"
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


def _check_one(directory: Path, name: str, max_bytes: int, deadline: float) -> _Checked:
    if time.monotonic() > deadline:
        return _Checked(None, "not_checked", "not reached: validation stopped at its time limit")
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
    progress: "callable | None" = None,
    timeout_s: float = 300.0,
) -> tuple[np.ndarray | None, ValidationReport]:
    """Validate `directory`; return (uint8 images (N, 28, 28) or None, report).

    `progress(n)` is called as files are checked, for progress bars. Files not reached within
    `timeout_s` are reported as `not_checked` (the samples are then invalid).
    """
    deadline = time.monotonic() + timeout_s
    directory = Path(directory)
    report = ValidationReport(directory=str(directory), expected_count=expected_count)
    try:
        info = os.lstat(directory)
    except OSError as err:
        report.add("", "missing_folder", f"{directory.name}/ does not exist ({err.strerror}): nothing was written")
        return None, report
    if not stat.S_ISDIR(info.st_mode):
        kind = _describe_file_type(info.st_mode) or "a regular file"
        report.add("", "missing_folder", f"{directory.name} is {kind}, not a folder")
        return None, report

    names = set()
    with os.scandir(directory) as entries:
        for entry in entries:  # bounded: at most MAX_ENTRIES names are read
            names.add(entry.name)
            if len(names) > max(MAX_ENTRIES, 2 * expected_count):
                report.add("", "too_many_entries", f"more than {len(names) - 1} entries; the rest "
                                                   f"were not listed")
                break
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
        # One thread: decoding 10K small PNGs is Python-bound, and threads fighting for the GIL took
        # 1.9-3.0 s where one takes 1.2 s (2-core CPU, 10K kit samples).
        digest = hashlib.sha256()
        for name in present:
            result = _check_one(directory, name, max_file_bytes, deadline)
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


# The child of BackgroundValidation: it reads its request (JSON) from stdin and writes the report
# (JSON, after its length) and the images (.npy) to stdout. No pickle crosses: the child decodes
# team files, and its output is read as data only.
_CHILD_CODE = """
import json, sys
request = json.loads(sys.stdin.read())
sys.path[:0] = request["path"]
from evaluator.samples import _validation_child
_validation_child(request)
"""


def _validation_child(request: dict) -> None:
    import sys

    images, report = validate_samples(request["directory"], request["expected_count"])
    header = json.dumps({"found_count": report.found_count, "sha256": report.sha256,
                         "problems": [[p.file, p.code, p.message] for p in report.problems],
                         "images": images is not None}).encode()
    out = sys.stdout.buffer
    out.write(len(header).to_bytes(8, "big") + header)
    if images is not None:  # through memory: np.save asks a real file for its position, and a pipe has none
        array = io.BytesIO()
        np.save(array, images, allow_pickle=False)
        out.write(array.getbuffer())
    out.flush()


class BackgroundValidation:
    """`validate_samples` in a child process, started before the caller imports torch: decoding 10K
    PNGs (about 1 s of one core, bound by Python, so threads do not share it) then runs beside the
    interpreter's start-up (torch's import alone is 1.3 s) instead of after it. The child is a new
    interpreter that imports only this module. If it cannot be started, fails or answers anything
    but a well-formed report, the folder is validated in the calling process instead: the outcome
    never depends on which way it ran."""

    def __init__(self, directory: str | os.PathLike, expected_count: int = DEFAULT_COUNT) -> None:
        import subprocess
        import sys

        self.directory, self.expected_count = Path(directory), expected_count
        request = {"path": [entry for entry in sys.path if entry], "directory": str(self.directory),
                   "expected_count": expected_count}
        try:
            # -I: no current folder on the path (a `json.py` beside the caller must not be imported),
            # no PYTHON* variables; the caller's own path comes in the request.
            self._child = subprocess.Popen([sys.executable, "-I", "-c", _CHILD_CODE], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            self._child.stdin.write(json.dumps(request).encode())
            self._child.stdin.close()
        except OSError:  # no process could be started (or it died at once): validate in result()
            self.close()

    def result(self, progress: "callable | None" = None) -> tuple[np.ndarray | None, ValidationReport]:
        """What `validate_samples` returns for the folder; `progress(n)` once, when it is known."""
        try:
            answer = self._read() if self._child is not None else None
        finally:
            self.close()
        if answer is None:
            return validate_samples(self.directory, self.expected_count, progress=progress)
        if progress is not None:
            progress(self.expected_count)
        return answer

    def _read(self) -> tuple[np.ndarray | None, ValidationReport] | None:
        stream = self._child.stdout
        try:
            length = int.from_bytes(stream.read(8), "big")
            header = json.loads(stream.read(length))
            report = ValidationReport(str(self.directory), self.expected_count, int(header["found_count"]),
                                      [Problem(str(f), str(c), str(m)) for f, c, m in header["problems"]],
                                      header["sha256"])
            images = np.load(io.BytesIO(stream.read()), allow_pickle=False) if header["images"] else None  # a pipe cannot seek
        except (OSError, ValueError, KeyError, TypeError, EOFError):
            return None
        if self._child.wait() != 0 or (images is not None and (
                images.dtype != np.uint8 or images.shape != (self.expected_count, *IMAGE_SIZE))):
            return None
        return images, report

    def close(self) -> None:
        """Stop the child if it still runs, and reap it."""
        child, self._child = getattr(self, "_child", None), None
        if child is not None:
            if child.poll() is None:
                child.kill()
            child.wait()
            child.stdout.close()


def _natural_key(name: str) -> tuple:
    stem = name.split(".", 1)[0]
    # isdigit() alone accepts "²" or "٣", which int() refuses or reads as another number.
    return (0, int(stem), name) if stem.isascii() and stem.isdigit() else (1, 0, name)


def write_samples(images: np.ndarray, directory: str | os.PathLike) -> Path:
    """Write uint8 (N, 28, 28) images as `0.png ... N-1.png` (tests, benchmarks, fixtures)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for index, pixels in enumerate(images):
        Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(directory / f"{index}.png")
    return directory
