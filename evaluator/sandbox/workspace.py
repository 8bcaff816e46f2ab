"""The scratch area of one run: the team's copy (writable, capped) and the trace folder.

As root, each is a tmpfs of its own with a byte and an inode cap, so whatever generate.py writes
(samples, scratch files beside them, anything in the trace folder) is bounded by the kernel; the
copy belongs to the run's own uid. Elsewhere they are plain folders, and the caps are those of
RLIMIT_FSIZE and the checks after the run. Everything is unmounted and removed on exit, whatever
happened; a process killed outright (SIGKILL, a node's OOM killer) cannot, so each scratch area
names its owner's pid and the next workspace removes those whose owner is gone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from evaluator.sandbox.identity import sandbox_uid
from evaluator.sandbox.limits import Limits
from evaluator.sandbox.staging import Staged, chown_tree, remove_tree, stage_submission


@dataclass
class Workspace:
    scratch: Path
    limits: Limits
    uid: int | None = None  # the run's own uid (root only), else None: the run keeps ours
    tmpfs: list[Path] = field(default_factory=list)

    @property
    def submission(self) -> Path:
        return self.scratch / "submission"

    @property
    def samples(self) -> Path:
        return self.submission / "samples"

    @property
    def trace(self) -> Path:
        return self.scratch / "trace"

    def stage(self, folder: str | os.PathLike) -> Staged:
        """Copy the team's folder in, then cap what the run may add and hand it to the run's uid."""
        staged = stage_submission(folder, self.scratch, self.limits)
        if self.submission in self.tmpfs:
            used = os.statvfs(self.submission)
            used_bytes = (used.f_blocks - used.f_bfree) * used.f_frsize
            used_inodes = used.f_files - used.f_ffree
            _mount_tmpfs(self.submission, used_bytes + self.limits.samples_max_bytes,
                         used_inodes + self.limits.samples_max_files + 16, remount=True)
        if self.uid is not None:
            chown_tree(self.submission, self.uid, self.uid)
            os.chown(self.trace, self.uid, self.uid)
        return staged


def _mount_tmpfs(path: Path, size: int, inodes: int, remount: bool = False) -> bool:
    options = f"{'remount,' if remount else ''}size={size},nr_inodes={inodes},mode=0755"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


def _unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


PREFIX = "mnist-eval-"
OWNER_FILE = "owner.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def sweep_stale(root: str | os.PathLike) -> list[Path]:
    """Unmount and remove the scratch areas under `root` whose owning process is gone (killed before
    its cleanup ran); areas of live processes, of other users, or without an owner file stay."""
    removed = []
    for scratch in Path(root).glob(f"{PREFIX}*"):
        try:
            if scratch.is_symlink() or scratch.lstat().st_uid != os.geteuid():
                continue
            pid = int((scratch / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue
        if pid <= 0 or _alive(pid):
            continue
        for name in ("submission", "trace"):
            if os.path.ismount(scratch / name):
                _unmount(scratch / name)
        try:
            remove_tree(scratch)
        except OSError:  # another run sweeping the same area at once: what is left is its to remove
            continue
        removed.append(scratch)
    return removed


@contextmanager
def workspace(limits: Limits, sandbox: bool, scratch_dir: str | None = None) -> Iterator[Workspace]:
    """A fresh scratch area (own uid and tmpfs caps when run as root with the sandbox)."""
    sweep_stale(scratch_dir or tempfile.gettempdir())
    scratch = Path(tempfile.mkdtemp(prefix=PREFIX, dir=scratch_dir))
    os.chmod(scratch, 0o755)
    (scratch / OWNER_FILE).write_text(f"{os.getpid()}\n")
    space = Workspace(scratch, limits)
    try:
        with ExitStack() as stack:
            privileged = sandbox and os.geteuid() == 0
            if privileged:
                space.uid = stack.enter_context(sandbox_uid())
            space.submission.mkdir()
            space.trace.mkdir()
            if privileged and shutil.which("mount"):
                caps = ((space.submission, limits.submission_max_bytes + limits.samples_max_bytes,
                         limits.submission_max_files + limits.samples_max_files + 16),
                        (space.trace, limits.trace_max_bytes, 4096))
                for path, size, inodes in caps:
                    if _mount_tmpfs(path, size, inodes):
                        space.tmpfs.append(path)
            os.chmod(space.trace, 0o777 if space.uid is None and sandbox else 0o755)
            yield space
    finally:
        for path in reversed(space.tmpfs):
            _unmount(path)
        remove_tree(scratch)
