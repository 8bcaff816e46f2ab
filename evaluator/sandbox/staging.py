"""Copy a team folder into a scratch directory, refusing anything but plain files and folders.

Every step is bounded before it is taken: the number of entries, the depth, the bytes per file and
in all. The walk is iterative (a folder nested 1,100 levels deep is refused at the depth limit,
not a RecursionError), and `remove_tree` removes anything a run leaves, however deep or however
its permissions were set.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from evaluator.sandbox.limits import Limits

STALE_OUTPUT = "samples"
SKIPPED = (".git",)  # version control metadata is not part of the submission (nor of its hash)


class StagingError(Exception):
    """The folder cannot be run as submitted (the message says why)."""


@dataclass
class Staged:
    directory: Path  # the copy; run with this as the working directory
    sha256: str  # over every copied file's relative path and bytes
    files: int
    bytes: int
    removed: list[str] = field(default_factory=list)  # e.g. a committed samples/
    had_samples_folder: bool = False  # staged as an empty samples/
    directories: int = 0


def _kind(mode: int) -> str:
    for check, name in ((stat.S_ISLNK, "symbolic link"), (stat.S_ISFIFO, "FIFO"),
                        (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                        (stat.S_ISBLK, "block device")):
        if check(mode):
            return name
    return "special file"


def stage_submission(source: str | os.PathLike, scratch: str | os.PathLike,
                     limits: Limits | None = None) -> Staged:
    """Copy `source` to `scratch/submission` (created, or empty); raise StagingError on anything unsafe."""
    target = Path(scratch) / "submission"
    target.mkdir(parents=True, exist_ok=True)
    if any(target.iterdir()):
        raise StagingError(f"internal: {target} is not empty")
    return _walk(Path(source), target, limits or Limits())


def hash_submission(source: str | os.PathLike, limits: Limits | None = None) -> Staged:
    """What staging would record (SHA-256, counts), without copying: the same walk, the same bounds."""
    return _walk(Path(source), None, limits or Limits())


def _walk(source: Path, target: Path | None, limits: Limits) -> Staged:
    if not source.is_dir() or source.is_symlink():
        raise StagingError(f"{source.name} is not a folder")
    if not (source / "generate.py").is_file():
        raise StagingError("the folder has no generate.py")
    digest = hashlib.sha256()
    staged = Staged(target or source, "", 0, 0)
    pending: list[Path] = [Path(".")]  # relative folders still to copy, depth-first
    while pending:
        relative_dir = pending.pop()
        names = _list(source / relative_dir, limits.submission_max_files)
        if relative_dir == Path("."):
            for name in (STALE_OUTPUT, *SKIPPED):
                if name in names:
                    names.remove(name)
                    if name == STALE_OUTPUT and (source / name).is_dir() and not (source / name).is_symlink():
                        staged.had_samples_folder = True
                    staged.removed.append(f"{name}/ (committed output is never scored)"
                                          if name == STALE_OUTPUT else f"{name}/ (not part of the submission)")
        subdirs = []
        for name in sorted(names):
            path = source / relative_dir / name
            relative = relative_dir / name
            info = os.lstat(path)
            staged.files += 0 if stat.S_ISDIR(info.st_mode) else 1
            staged.directories += 1 if stat.S_ISDIR(info.st_mode) else 0
            if staged.files + staged.directories > limits.submission_max_files:
                raise StagingError(f"the folder has more than {limits.submission_max_files} files and "
                                   f"folders (the limit); nothing was run")
            if stat.S_ISDIR(info.st_mode):
                if len(relative.parts) > limits.submission_max_depth:
                    raise StagingError(f"folders nested deeper than {limits.submission_max_depth} "
                                       f"levels (the limit), at {_shorten(relative)}")
                if target is not None:
                    (target / relative).mkdir(mode=0o755)
                subdirs.append(relative)
                continue
            if not stat.S_ISREG(info.st_mode):
                raise StagingError(f"{_shorten(relative)} is a {_kind(info.st_mode)}; only plain files "
                                   f"are allowed")
            if info.st_size > limits.submission_max_file_bytes:
                raise StagingError(f"{_shorten(relative)} is {info.st_size} bytes; the limit per file is "
                                   f"{limits.submission_max_file_bytes}")
            staged.bytes += info.st_size
            if staged.bytes > limits.submission_max_bytes:
                raise StagingError(f"the folder exceeds {limits.submission_max_bytes} bytes")
            _copy_no_follow(path, target / relative if target is not None else None, digest,
                            relative.as_posix())
        pending.extend(reversed(subdirs))
    if target is not None:
        # samples/ as at home: where the team committed one, an empty one (a script that writes into
        # it without making it ran on the course platform); where it had none, none (a script that
        # calls os.mkdir("samples") without exist_ok crashed on a folder made for it).
        if staged.had_samples_folder:
            (target / STALE_OUTPUT).mkdir(mode=0o755)
        os.chmod(target, 0o755)
    staged.sha256 = digest.hexdigest()
    return staged


def _list(directory: Path, limit: int) -> list[str]:
    """Entry names of one folder, refusing (without reading further) beyond `limit` entries."""
    names = []
    with os.scandir(directory) as entries:
        for entry in entries:
            names.append(entry.name)
            if len(names) > limit:
                raise StagingError(f"the folder has more than {limit} files and folders (the limit); "
                                   f"nothing was run")
    return names


def _shorten(relative: Path, keep: int = 120) -> str:
    text = relative.as_posix()
    return text if len(text) <= keep else f"{text[:keep // 2]}…{text[-keep // 2:]}"


def _copy_no_follow(source: Path, destination: Path | None, digest, name: str) -> None:
    """Hash one file into `digest` and, unless `destination` is None, copy it there (mode 0644)."""
    fd = os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as reader:
        if not stat.S_ISREG(os.fstat(reader.fileno()).st_mode):
            raise StagingError(f"{name} changed type while being copied")
        file_digest = hashlib.sha256()
        writer = open(destination, "wb") if destination is not None else None
        try:
            for chunk in iter(lambda: reader.read(1 << 20), b""):
                file_digest.update(chunk)
                if writer is not None:
                    writer.write(chunk)
        finally:
            if writer is not None:
                writer.close()
                os.chmod(destination, 0o644)
    digest.update(f"{name}\0{file_digest.hexdigest()}\n".encode())


def chown_tree(path: Path, uid: int, gid: int) -> None:
    """Give a staged copy (bounded by staging) to the sandbox's uid, so the run may write in it."""
    os.chown(path, uid, gid)
    for directory, subdirs, files in os.walk(path):
        for name in (*subdirs, *files):
            os.chown(os.path.join(directory, name), uid, gid, follow_symlinks=False)


def remove_tree(path: str | os.PathLike) -> None:
    """Remove `path` and everything below it, however deep, without following links.

    Works one folder at a time through a single directory descriptor (a chain of 1,100 folders would
    need more descriptors, and longer paths, than the system allows), and restores the owner's
    permissions on folders a run made unreadable.
    """
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        os.unlink(path)
        return
    names: list[str] = []  # the folders we are in, below `path`
    fd = _open_dir(str(path), None)
    try:
        while True:
            child = None
            with os.scandir(fd) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        child = entry.name
                        break
                    try:
                        os.unlink(entry.name, dir_fd=fd)
                    except FileNotFoundError:
                        pass
            if child is not None:
                deeper = _open_dir(child, fd)
                os.close(fd)
                fd, names = deeper, [*names, child]
                continue
            if not names:
                break
            parent = os.open("..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = parent
            os.rmdir(names.pop(), dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(path)


def _open_dir(name: str, dir_fd: int | None) -> int:
    """Open a folder (known not to be a link) for removal, first making it ours to empty."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except PermissionError:  # a run may have set mode 000 on its own folders
        os.chmod(name, 0o700, dir_fd=dir_fd)
        fd = os.open(name, flags, dir_fd=dir_fd)
    if stat.S_IMODE(os.fstat(fd).st_mode) & 0o700 != 0o700:
        os.fchmod(fd, 0o700)
    return fd
