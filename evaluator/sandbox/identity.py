"""A uid of its own for each concurrent sandbox.

RLIMIT_NPROC counts the processes of a uid across the whole machine: with one shared sandbox uid,
a team holding 253 threads made the next team's run CRASH. Each run therefore takes a uid from a
range reserved for sandboxes, held by an exclusive lock on a file for as long as the run lasts, so
that concurrent runs (threads, processes or Slurm tasks on one node) never share one. The lock
dies with its holder, so a crashed evaluator frees its uid.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

UID_BASE_ENV = "EVALUATOR_SANDBOX_UID_BASE"
DEFAULT_UID_BASE = 3_000_000  # far above the uids of people (and of systemd's dynamic users)
SLOTS = 4096
LOCK_DIRS = (Path("/run/mnist-gan-eval"), Path("/var/tmp/mnist-gan-eval"))


class NoFreeIdentity(RuntimeError):
    """Every sandbox uid is taken (more than SLOTS concurrent runs on one machine)."""


def uid_base() -> int:
    value = os.environ.get(UID_BASE_ENV, "")
    return int(value) if value.isdigit() else DEFAULT_UID_BASE


def _lock_dir() -> Path:
    for directory in LOCK_DIRS:
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if os.access(directory, os.W_OK):
                return directory
        except OSError:
            continue
    raise NoFreeIdentity(f"none of {[str(d) for d in LOCK_DIRS]} is writable for the uid locks")


@contextmanager
def sandbox_uid() -> Iterator[int]:
    """Hold a free sandbox uid for the duration of the block (root only: others cannot switch)."""
    directory = _lock_dir()
    base = uid_base()
    for slot in range(SLOTS):
        uid = base + slot
        fd = os.open(directory / f"uid-{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield uid
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    raise NoFreeIdentity(f"all {SLOTS} sandbox uids from {base} are in use")
