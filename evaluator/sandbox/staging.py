"""Copy a team folder into a scratch directory, refusing anything but plain files and folders."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from evaluator.sandbox.limits import Limits

STALE_OUTPUT = "samples"


class StagingError(Exception):
    """The folder cannot be run as submitted (the message says why)."""


@dataclass
class Staged:
    directory: Path  # the copy; run with this as the working directory
    sha256: str  # over every copied file's relative path and bytes
    files: int
    bytes: int
    removed: list[str] = field(default_factory=list)  # e.g. a committed samples/


def _kind(mode: int) -> str:
    for check, name in ((stat.S_ISLNK, "symbolic link"), (stat.S_ISFIFO, "FIFO"),
                        (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                        (stat.S_ISBLK, "block device")):
        if check(mode):
            return name
    return "special file"


def stage_submission(source: str | os.PathLike, scratch: str | os.PathLike,
                     limits: Limits | None = None) -> Staged:
    """Copy `source` to `scratch/submission`; raise StagingError on anything unsafe."""
    limits = limits or Limits()
    source, target = Path(source), Path(scratch) / "submission"
    if not source.is_dir() or source.is_symlink():
        raise StagingError(f"{source} is not a folder")
    for required in ("generate.py",):
        if not (source / required).is_file():
            raise StagingError(f"{source} has no {required}")
    digest = hashlib.sha256()
    total = files = 0
    removed: list[str] = []
    target.mkdir(parents=True)
    for directory, subdirs, names in os.walk(source, followlinks=False):
        relative_dir = Path(directory).relative_to(source)
        if relative_dir == Path("."):
            if STALE_OUTPUT in subdirs or STALE_OUTPUT in names:
                removed.append(f"{STALE_OUTPUT}/ (committed output is never scored)")
                subdirs[:] = [d for d in subdirs if d != STALE_OUTPUT]
                names = [n for n in names if n != STALE_OUTPUT]
        subdirs.sort()
        for name in sorted(subdirs):
            info = os.lstat(Path(directory) / name)
            if not stat.S_ISDIR(info.st_mode):
                raise StagingError(f"{relative_dir / name} is a {_kind(info.st_mode)}; not allowed")
            (target / relative_dir / name).mkdir()
        for name in sorted(names):
            path = Path(directory) / name
            relative = relative_dir / name
            info = os.lstat(path)
            if not stat.S_ISREG(info.st_mode):
                raise StagingError(f"{relative} is a {_kind(info.st_mode)}; only plain files are allowed")
            if info.st_size > limits.submission_max_file_bytes:
                raise StagingError(f"{relative} is {info.st_size} bytes; the limit per file is "
                                   f"{limits.submission_max_file_bytes}")
            total += info.st_size
            files += 1
            if total > limits.submission_max_bytes:
                raise StagingError(f"the folder exceeds {limits.submission_max_bytes} bytes")
            destination = target / relative
            _copy_no_follow(path, destination, digest, str(relative))
            os.chmod(destination, 0o644)
    for directory, subdirs, _ in os.walk(target):
        for name in subdirs:
            os.chmod(Path(directory) / name, 0o755)
    os.chmod(target, 0o755)
    (target / STALE_OUTPUT).mkdir()  # mount point for the writable samples folder
    return Staged(target, digest.hexdigest(), files, total, removed)


def _copy_no_follow(source: Path, destination: Path, digest, name: str) -> None:
    fd = os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as reader, open(destination, "wb") as writer:
        if not stat.S_ISREG(os.fstat(reader.fileno()).st_mode):
            raise StagingError(f"{name} changed type while being copied")
        file_digest = hashlib.sha256()
        for chunk in iter(lambda: reader.read(1 << 20), b""):
            file_digest.update(chunk)
            writer.write(chunk)
    digest.update(f"{name}\0{file_digest.hexdigest()}\n".encode())


def remove_tree(path: str | os.PathLike) -> None:
    shutil.rmtree(path, ignore_errors=True)
