"""Rosters of small team folders and git repositories for round tests (N samples, short limits)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest

from evaluator.sandbox.runner import bubblewrap

REPO = Path(__file__).resolve().parents[2]
SAMPLES = 64
needs_sandbox = pytest.mark.skipif(bubblewrap() is None, reason="bubblewrap is not installed")


@pytest.fixture
def ctrl_c_delivered():
    """Ctrl-C raises KeyboardInterrupt here and in the rounds this test starts, even under a shell
    that started the tests in the background: such a shell ignores SIGINT, Python then installs no
    handler, and an interrupt test would see its round finish instead (measured with `make test &`)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # a child's preexec_fn: Python's default
    signal.signal(signal.SIGINT, previous)


def kit(folder: Path, note: str = "") -> Path:
    shutil.copytree(REPO / "submission", folder, ignore=shutil.ignore_patterns("samples"))
    if note:
        (folder / "NOTE.txt").write_text(note)  # another submission hash, the same generator
    return folder


def slow(folder: Path, seconds: float) -> Path:
    """The kit, sleeping first (to interrupt a round while it runs)."""
    kit(folder)
    script = (folder / "generate.py").read_text()
    (folder / "generate.py").write_text(script.replace("def main() -> None:\n",
                                                       f"def main() -> None:\n    import time\n    time.sleep({seconds})\n"))
    return folder


def git_repository(source: Path, bare: Path) -> Path:
    """A bare repository holding `source` on branch main."""
    run = lambda *args, cwd=source: subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)  # noqa: E731
    run("init", "-q", "-b", "main")
    run("add", "-A")
    run("-c", "user.email=t@example.org", "-c", "user.name=t", "commit", "-qm", "submission")
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(bare)], check=True, capture_output=True)
    return bare


def write_config(folder: Path, teams: list[tuple[str, str, str | None]], extra: str = "") -> Path:
    lines = [textwrap.dedent(extra), f"[limits]\nsamples = {SAMPLES}\ntimeout = 120\nmemory = \"2G\"\n"]
    for name, source, ref in teams:
        lines.append(f'[[teams]]\nname = "{name}"\nsource = "{source}"\n' + (f'ref = "{ref}"\n' if ref else ""))
    path = folder / "competition.toml"
    path.write_text("\n".join(lines))
    return path
