"""Fetch each team's submission: a local folder as it is, or a git repository cloned (or updated)
shallowly into the competition's state folder, outside any sandbox, with a time and a size limit.

git runs with hooks, LFS smudging, prompts and system configuration switched off; a clone that
grows past `max_bytes` is killed while it downloads, not after. Symbolic links in a repository are
checked out as links, so staging refuses the folder (REFUSED) exactly as it would a local one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from competition.config import CompetitionConfig, Team
from evaluator.sandbox.limits import parse_size
from evaluator.sandbox.staging import StagingError, hash_submission, remove_tree

URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:)", re.IGNORECASE)


class FetchError(Exception):
    """The source could not be fetched (the message says why, in one line)."""


@dataclass
class Fetched:
    team: str
    kind: str  # folder | git
    folder: Path  # what is evaluated
    commit: str | None
    sha256: str  # the submission hash staging will record (over its files)
    seconds: float


def is_git(team: Team, base: Path) -> bool:
    """A URL, a `ref`, or a path to a bare repository is git; any other folder is taken as it is."""
    if team.ref or URL.match(team.source):
        return True
    path = base / team.source
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and not (path / "generate.py").exists()


FINAL_DEPTH = 200  # commits fetched to find the last one before the deadline


def fetch(team: Team, config: CompetitionConfig, cache: Path, before: datetime | None = None) -> Fetched:
    """The team's folder, ready to evaluate; raises FetchError. With `before` (a final round), a git
    source is checked out at its last commit before that time."""
    started = time.monotonic()
    base = config.source.parent if config.source is not None else Path.cwd()
    if is_git(team, base):
        source = team.source if URL.match(team.source) else str((base / team.source).resolve())
        folder = cache / team.name
        commit = _git_checkout(source, team.ref, folder, config.fetch.timeout, parse_size(config.fetch.max_bytes),
                               before)
        kind = "git"
    else:
        folder = (base / team.source).resolve()
        if not folder.is_dir():
            raise FetchError(f"{team.source} is not a folder")
        commit = _git_commit(folder)
        kind = "folder"
    try:
        sha256 = hash_submission(folder).sha256
    except StagingError as err:  # staging will refuse it again, with this reason, as the verdict
        sha256 = f"refused: {err}"
    except OSError as err:
        raise FetchError(f"cannot read {folder.name}: {err.strerror}") from err
    return Fetched(team.name, kind, folder, commit, sha256, round(time.monotonic() - started, 3))


def _environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_LFS_SKIP_SMUDGE="1", GIT_CONFIG_NOSYSTEM="1",
               GIT_ASKPASS="/bin/false", SSH_ASKPASS="/bin/false")
    return env


GIT_SAFETY = ["-c", "core.hooksPath=/dev/null", "-c", "protocol.file.allow=always", "-c", "core.fsmonitor=false",
              "-c", "filter.lfs.required=false", "-c", "filter.lfs.smudge=", "-c", "filter.lfs.process=",
              "-c", "submodule.recurse=false", "-c", "advice.detachedHead=false"]


def _git(arguments: list[str], cwd: Path | None, timeout: float, watch: Path | None = None,
         max_bytes: int | None = None) -> str:
    """Run git; kill it past `timeout` seconds, or once `watch` grows past `max_bytes`."""
    process = subprocess.Popen(["git", *GIT_SAFETY, *arguments], cwd=cwd, env=_environment(),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    too_big = threading.Event()

    def watchdog() -> None:
        while process.poll() is None:
            if watch is not None and max_bytes is not None and _size(watch) > max_bytes:
                too_big.set()
                process.kill()
                return
            time.sleep(0.5)

    guard = threading.Thread(target=watchdog, daemon=True)
    guard.start()
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise FetchError(f"git {arguments[0]} took longer than {timeout:g} s") from None
    if too_big.is_set():
        raise FetchError(f"the repository grew past {max_bytes} bytes while being fetched")
    if process.returncode != 0:
        last = next((line for line in reversed(err.strip().splitlines()) if line.strip()), "")
        raise FetchError(f"git {arguments[0]} failed: {last[:300]}")
    return out.strip()


def _size(path: Path) -> int:
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except OSError:
                pass
    return total


def _git_checkout(source: str, ref: str | None, folder: Path, timeout: float, max_bytes: int,
                  before: datetime | None = None) -> str:
    """A shallow checkout of `ref` (default: the remote's HEAD) in `folder`; returns the commit.
    With `before`: the last commit before that time, among the latest FINAL_DEPTH."""
    deadline = time.monotonic() + timeout
    remaining = lambda: max(deadline - time.monotonic(), 1.0)  # noqa: E731 - one budget for all steps
    depth = str(FINAL_DEPTH if before else 1)
    fetched = False
    if (folder / ".git").is_dir():
        try:
            if _git(["remote", "get-url", "origin"], folder, remaining()) != source:
                raise FetchError("a different origin")
            _git(["fetch", "--depth", depth, "--no-tags", "--force", "origin", ref or "HEAD"], folder, remaining(),
                 folder, max_bytes)
            _git(["checkout", "--force", "--detach", "FETCH_HEAD"], folder, remaining())
            fetched = True
        except FetchError:
            remove_tree(folder)  # start again from a fresh clone
    elif folder.exists():
        remove_tree(folder)
    if not fetched:
        folder.parent.mkdir(parents=True, exist_ok=True)
        arguments = ["clone", "--depth", depth, "--no-tags", "--single-branch", "--no-recurse-submodules"]
        if ref:
            arguments += ["--branch", ref]
        try:
            _git([*arguments, "--", source, str(folder)], None, remaining(), folder, max_bytes)
        except FetchError:
            if folder.exists():
                remove_tree(folder)
            raise
    if before is not None:
        commit = _git(["rev-list", "-1", f"--before={before.isoformat()}", "HEAD"], folder, remaining())
        if not commit:
            raise FetchError(f"no commit before the deadline ({before.isoformat()}) among the last {FINAL_DEPTH}")
        _git(["checkout", "--force", "--detach", commit], folder, remaining())
    _git(["clean", "-ffdxq"], folder, remaining())
    return _git(["rev-parse", "HEAD"], folder, remaining())


def _git_commit(folder: Path) -> str | None:
    """The commit of a local folder that happens to be a git work tree (for the record only)."""
    if not (folder / ".git").exists() or shutil.which("git") is None:
        return None
    try:
        return _git(["rev-parse", "HEAD"], folder, 10)
    except FetchError:
        return None
