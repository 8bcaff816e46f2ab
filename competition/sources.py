"""Fetch each team's submission: a local folder as it is, or a git repository cloned (or updated)
shallowly into the competition's state folder, outside any sandbox, with a time and a size limit.

Everything a roster or a repository supplies is hostile: a source and a ref are validated (no
leading `-`, `git check-ref-format`, an allowed transport) and reach git only after `--`; git runs
in a minimal environment, without the organiser's global or system configuration, with hooks, LFS
smudging and prompts off and every transport but https, ssh, git and file refused. The size limit
is enforced while git runs and measured again on what it left. Symbolic links in a repository are
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
from pathlib import Path

from competition.config import CompetitionConfig, Team
from evaluator.sandbox.limits import parse_size
from evaluator.sandbox.staging import StagingError, hash_submission, remove_tree

URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:)", re.IGNORECASE)


class FetchError(Exception):
    """The source could not be fetched (the message says why, in one line)."""


class TooLarge(FetchError):
    """What git fetched or checked out is over `[fetch] max_bytes`."""


@dataclass
class Fetched:
    team: str
    kind: str  # folder | git
    folder: Path  # what is evaluated
    commit: str | None
    sha256: str  # the submission hash staging will record (over its files)
    seconds: float
    commit_date: str | None = None  # as the repository states it: shown, never decided on


def is_git(team: Team, base: Path) -> bool:
    """A URL, a `ref`, or a path to a bare repository is git; any other folder is taken as it is."""
    if team.ref or URL.match(team.source):
        return True
    path = base / team.source
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and not (path / "generate.py").exists()


def fetch(team: Team, config: CompetitionConfig, cache: Path, observed: dict | None = None) -> Fetched:
    """The team's folder, ready to evaluate; raises FetchError.

    With `observed` (a final round: what an earlier round fetched at or before the deadline), the
    same submission: a git source at that commit, a folder only if its files still hash the same.
    """
    started = time.monotonic()
    base = config.source.parent if config.source is not None else Path.cwd()
    check_source(team.source)
    if is_git(team, base):
        source = team.source if URL.match(team.source) else str((base / team.source).resolve())
        folder = cache / team.name
        commit = _git_checkout(source, team.ref, folder, config.fetch.timeout, parse_size(config.fetch.max_bytes),
                               pinned=observed["commit"] if observed else None)
        kind, date = "git", commit_date(folder)
    else:
        folder = (base / team.source).resolve()
        if not folder.is_dir():
            raise FetchError(f"{team.source} is not a folder")
        commit, kind, date = _git_commit(folder), "folder", None
    try:
        sha256 = hash_submission(folder).sha256
    except StagingError as err:  # staging will refuse it again, with this reason, as the verdict
        sha256 = f"refused: {err}"
    except OSError as err:
        raise FetchError(f"cannot read {folder.name}: {err.strerror}") from err
    if observed is not None and kind == "folder" and sha256 != observed["sha256"]:
        raise FetchError(f"the folder changed after the deadline: its files no longer hash as they did when "
                         f"observed at {observed['time']}")
    return Fetched(team.name, kind, folder, commit, sha256, round(time.monotonic() - started, 3), date)


# Transports git may use for a team's source; every other one (ext::, fd::, http://, helpers) is
# refused by git itself through GIT_ALLOW_PROTOCOL, whatever the organiser's git configuration says.
ALLOWED_PROTOCOLS = ("https", "ssh", "git", "file")
SCP_LIKE = re.compile(r"^[\w.+-]+@[\w.-]+:")
HEX_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def check_source(source: str) -> None:
    """A roster source that git may be given: a URL over an allowed transport, `user@host:path`, or a
    local path; never something git could read as an option. Raises FetchError."""
    if not source or source.startswith("-") or any(ord(c) < 0x20 or ord(c) == 0x7f for c in source):
        raise FetchError(f"source {source[:80]!r} is not a repository URL or path")
    helper = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)::", source)  # git's <transport>::<address> form
    if helper:
        raise FetchError(f"source {source[:80]!r}: the {helper[1]} transport is not allowed "
                         f"(only {', '.join(ALLOWED_PROTOCOLS)})")
    scheme = URL.match(source)
    if scheme and not SCP_LIKE.match(source):
        name = source.split(":", 1)[0].lower()
        if name not in ALLOWED_PROTOCOLS:
            raise FetchError(f"source {source[:80]!r}: the {name} transport is not allowed "
                             f"(only {', '.join(ALLOWED_PROTOCOLS)})")
        host = source.split("://", 1)[1] if "://" in source else ""
        if host.startswith("-") or host.split("@", 1)[-1].startswith("-"):
            raise FetchError(f"source {source[:80]!r}: a host may not begin with '-'")


def check_ref(ref: str) -> None:
    """A branch or tag name as git itself defines one (`git check-ref-format`), never an option."""
    if not ref or ref.startswith("-") or not all(0x20 < ord(c) < 0x7f for c in ref):
        raise FetchError(f"ref {ref[:80]!r} is not a branch or tag name")
    done = subprocess.run([_git_binary(), "check-ref-format", f"refs/heads/{ref}"], env=_environment(),
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    if done.returncode != 0:
        raise FetchError(f"ref {ref[:80]!r} is not a valid branch or tag name (git check-ref-format)")


def _git_binary() -> str:
    found = shutil.which("git")
    if found is None:
        raise FetchError("git is not installed (apt-get install git)")
    return found


def _environment() -> dict[str, str]:
    """A minimal environment: nothing of the organiser's shell but PATH, HOME and an ssh agent."""
    env = {"PATH": f"{os.path.dirname(_git_binary())}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/"),
           "LANG": "C", "LC_ALL": "C",
           "GIT_TERMINAL_PROMPT": "0", "GIT_LFS_SKIP_SMUDGE": "1", "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_ASKPASS": "/bin/false", "SSH_ASKPASS": "/bin/false",
           "GIT_ALLOW_PROTOCOL": ":".join(ALLOWED_PROTOCOLS), "GIT_PROTOCOL_FROM_USER": "0"}
    if os.environ.get("SSH_AUTH_SOCK"):
        env["SSH_AUTH_SOCK"] = os.environ["SSH_AUTH_SOCK"]
    return env


GIT_SAFETY = ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false",
              "-c", "filter.lfs.required=false", "-c", "filter.lfs.smudge=", "-c", "filter.lfs.process=",
              "-c", "submodule.recurse=false", "-c", "advice.detachedHead=false",
              "-c", "gc.auto=0", "-c", "maintenance.auto=false"]


def _git(arguments: list[str], cwd: Path | None, timeout: float, watch: Path | None = None,
         max_bytes: int | None = None) -> str:
    """Run git; kill it past `timeout` seconds or once `watch` grows past `max_bytes`, and measure
    `watch` again when git is done (a fast fetch finishes between two looks of the watchdog)."""
    process = subprocess.Popen([_git_binary(), *GIT_SAFETY, *arguments], cwd=cwd, env=_environment(),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    too_big = threading.Event()

    def watchdog() -> None:
        while process.poll() is None:
            if watch is not None and max_bytes is not None and _size(watch) > max_bytes:
                too_big.set()
                process.kill()
                return
            time.sleep(0.2)

    guard = threading.Thread(target=watchdog, daemon=True)
    guard.start()
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise FetchError(f"git {arguments[0]} took longer than {timeout:g} s") from None
    guard.join()
    if too_big.is_set() or (watch is not None and max_bytes is not None and _size(watch) > max_bytes):
        raise TooLarge(f"the repository is larger than the {max_bytes:,}-byte limit ([fetch] max_bytes)")
    if process.returncode != 0:
        last = next((line for line in reversed(err.strip().splitlines()) if line.strip()), "")
        raise FetchError(f"git {arguments[0]} failed: {last[:300]}")
    return out.strip()


def _size(path: Path) -> int:
    """Bytes under `path` as stored: every file, the repository's own objects included."""
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except OSError:
                pass
    return total


def _git_checkout(source: str, ref: str | None, folder: Path, timeout: float, max_bytes: int,
                  pinned: str | None = None) -> str:
    """A shallow checkout of `ref` (default: the remote's HEAD) in `folder`; returns the commit.
    With `pinned` (a commit this harness observed earlier), that commit, from the checkout's own
    objects if it still holds them, else fetched by its hash."""
    check_source(source)
    if ref is not None:
        check_ref(ref)
    if pinned is not None and not HEX_COMMIT.fullmatch(pinned):
        raise FetchError(f"the recorded commit {pinned[:80]!r} is not a commit hash")
    deadline = time.monotonic() + timeout
    remaining = lambda: max(deadline - time.monotonic(), 1.0)  # noqa: E731 - one budget for all steps
    if pinned is not None and (folder / ".git").is_dir():
        try:
            if _git(["remote", "get-url", "origin"], folder, remaining()) == source:
                _git(["checkout", "--force", "--detach", pinned], folder, remaining(), folder, max_bytes)
                return _finish_checkout(folder, remaining)
        except FetchError:
            pass  # not held any more: fetch it by hash below
    wanted = pinned or ref or "HEAD"
    fetched = False
    if (folder / ".git").is_dir():
        try:
            if _git(["remote", "get-url", "origin"], folder, remaining()) != source:
                raise FetchError("a different origin")
            _git(["fetch", "--depth", "1", "--no-tags", "--force", "origin", "--", wanted], folder, remaining(),
                 folder, max_bytes)
            _git(["checkout", "--force", "--detach", "FETCH_HEAD"], folder, remaining(), folder, max_bytes)
            fetched = True
        except TooLarge:
            remove_tree(folder)
            raise
        except FetchError:
            remove_tree(folder)  # start again from a fresh clone
    elif folder.exists():
        remove_tree(folder)
    if not fetched:
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            if pinned is None:
                arguments = ["clone", "--depth", "1", "--no-tags", "--single-branch", "--no-recurse-submodules"]
                if ref:
                    arguments.append(f"--branch={ref}")
                _git([*arguments, "--", source, str(folder)], None, remaining(), folder, max_bytes)
            else:
                _git(["init", "-q", "--", str(folder)], None, remaining())
                _git(["remote", "add", "origin", "--", source], folder, remaining())
                _git(["fetch", "--depth", "1", "--no-tags", "origin", "--", pinned], folder, remaining(),
                     folder, max_bytes)
                _git(["checkout", "--force", "--detach", "FETCH_HEAD"], folder, remaining(), folder, max_bytes)
        except FetchError:
            if folder.exists():
                remove_tree(folder)
            raise
    commit = _finish_checkout(folder, remaining)
    if pinned is not None and commit != pinned:
        raise FetchError(f"the repository no longer holds commit {pinned}")
    return commit


def _finish_checkout(folder: Path, remaining) -> str:
    _git(["clean", "-ffdxq"], folder, remaining())
    commit = _git(["rev-parse", "--verify", "HEAD^{commit}"], folder, remaining())
    # Keep every observed commit reachable, so that a final round can check it out again.
    _git(["update-ref", f"refs/observed/{commit}", commit], folder, remaining())
    return commit


def commit_date(folder: Path) -> str | None:
    """The committer date of HEAD, as the team's repository states it: shown, never decided on."""
    try:
        return _git(["log", "-1", "--format=%cI", "HEAD"], folder, 30) or None
    except FetchError:
        return None


def _git_commit(folder: Path) -> str | None:
    """The commit of a local folder that happens to be a git work tree (for the record only)."""
    if not (folder / ".git").exists() or shutil.which("git") is None:
        return None
    try:
        return _git(["rev-parse", "HEAD"], folder, 10)
    except FetchError:
        return None
