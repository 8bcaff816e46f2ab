"""Fetching team sources with real git repositories: hostile refs and sources never reach git as
options, only the allowed transports run, and the size limit holds however fast the fetch is."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from competition.config import CompetitionConfig, ConfigError, FetchSettings, Team
from competition.sources import FetchError, _environment, fetch
from tests.competition.conftest import git_repository, kit

pytestmark = pytest.mark.skipif(subprocess.run(["git", "--version"], capture_output=True).returncode != 0,
                                reason="git is not installed")


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def config_for(tmp_path: Path, max_bytes: str = "2G") -> CompetitionConfig:
    path = tmp_path / "competition.toml"
    path.write_text("")
    return CompetitionConfig(fetch=FetchSettings(timeout=60, max_bytes=max_bytes), source=path)


def hostile_branch(bare: Path, marker: Path) -> str:
    """A branch whose name is an option of `git fetch` that runs a command: valid in the repository
    (update-ref takes it), refused by `git branch`."""
    name = f"--upload-pack=touch${{IFS}}{marker};git-upload-pack"
    commit = git("rev-parse", "main", cwd=bare)
    git("update-ref", f"refs/heads/{name}", commit, cwd=bare)
    return name


def test_a_ref_that_is_an_option_never_runs(tmp_path):
    bare = git_repository(kit(tmp_path / "src"), tmp_path / "team.git")
    marker = tmp_path / "PWNED"
    ref = hostile_branch(bare, marker)
    roster = tmp_path / "roster.toml"
    roster.write_text(f'[[teams]]\nname = "a"\nsource = "team.git"\nref = "{ref}"\n')
    with pytest.raises(ConfigError, match="line 4.*may not begin with '-'"):
        CompetitionConfig.load(roster)
    config, cache = config_for(tmp_path), tmp_path / "cache"
    first = fetch(Team("a", "team.git", "main"), config, cache)  # a checkout exists: the update path next
    assert len(first.commit) == 40
    for attempt in (ref, "-u", f"main --upload-pack=touch {marker}"):
        with pytest.raises(FetchError, match="not a (valid )?branch or tag name"):
            fetch(Team("a", "team.git", attempt), config, cache)
        with pytest.raises(FetchError):
            fetch(Team("b", "team.git", attempt), config, cache)  # the clone path
    assert not marker.exists()


@pytest.mark.parametrize("source", ["ext::sh -c touch% /tmp/pwned-ext", "http://127.0.0.1:9/team.git",
                                    "fd::3", "-oProxyCommand=touch /tmp/pwned@host:repo",
                                    "ssh://-oProxyCommand=touch%20/tmp/pwned/repo"])
def test_only_the_allowed_transports_run(tmp_path, source):
    with pytest.raises(FetchError, match="not allowed|not a repository|may not begin"):
        fetch(Team("a", source, "main"), config_for(tmp_path), tmp_path / "cache")
    assert not Path("/tmp/pwned-ext").exists() and not Path("/tmp/pwned").exists()


def test_git_refuses_other_transports_even_when_configured_around(tmp_path, monkeypatch):
    """GIT_ALLOW_PROTOCOL is git's own guard: a URL that slips past the roster check (here ext::
    through a rewriting rule in the organiser's global configuration) is still refused by git."""
    rewrite = tmp_path / "gitconfig"
    rewrite.write_text('[url "ext::sh -c touch% /tmp/pwned-rewrite% #"]\n    insteadOf = https://rewrite.example/\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(rewrite))
    with pytest.raises(FetchError):
        fetch(Team("a", "https://rewrite.example/team.git", "main"), config_for(tmp_path), tmp_path / "cache")
    assert not Path("/tmp/pwned-rewrite").exists()


def test_git_runs_in_a_minimal_environment(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cret")
    monkeypatch.setenv("GIT_SSH_COMMAND", "touch /tmp/pwned-ssh")
    monkeypatch.setenv("LD_PRELOAD", "/tmp/evil.so")
    env = _environment()
    assert "s3cret" not in env.values() and "GIT_SSH_COMMAND" not in env and "LD_PRELOAD" not in env
    assert env["GIT_ALLOW_PROTOCOL"] == "https:ssh:git:file" and env["GIT_CONFIG_GLOBAL"] == os.devnull
    assert set(env) <= {"PATH", "HOME", "LANG", "LC_ALL", "SSH_AUTH_SOCK", "GIT_TERMINAL_PROMPT",
                        "GIT_LFS_SKIP_SMUDGE", "GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL", "GIT_ASKPASS",
                        "SSH_ASKPASS", "GIT_ALLOW_PROTOCOL", "GIT_PROTOCOL_FROM_USER"}


@pytest.mark.parametrize("content", ["random", "zeros"])
def test_the_size_limit_holds_however_fast_the_fetch(tmp_path, content):
    """3 MB of random bytes (a fast fetch of a pack as big as the files) and 20 MB of zeros (a pack
    of a few kB that checks out 20 MB) both break a 1 MB limit; the checkout is removed."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "generate.py").write_text("print('hello')\n")
    size = 3_000_000 if content == "random" else 20_000_000
    (source / "blob.bin").write_bytes(os.urandom(size) if content == "random" else bytes(size))
    git_repository(source, tmp_path / "team.git")
    cache = tmp_path / "cache"
    with pytest.raises(FetchError, match="larger than the 1,000,000-byte limit"):
        fetch(Team("a", "team.git", "main"), config_for(tmp_path, "1000000"), cache)
    assert not (cache / "a").exists()
    small = fetch(Team("a", "team.git", "main"), config_for(tmp_path, "100M"), cache)
    (source / "blob.bin").write_bytes(os.urandom(size) if content == "random" else bytes(size * 2))
    git("add", "-A", cwd=source)
    git("-c", "user.email=t@example.org", "-c", "user.name=t", "commit", "-qm", "bigger", cwd=source)
    git("push", "-q", str(tmp_path / "team.git"), "main", cwd=source)
    with pytest.raises(FetchError, match="larger than"):  # the update path measures too
        fetch(Team("a", "team.git", "main"), config_for(tmp_path, f"{int(size * 1.5)}"), cache)
    assert len(small.commit) == 40 and not (cache / "a").exists()


def test_an_observed_commit_is_checked_out_again_after_a_force_push(tmp_path):
    source = kit(tmp_path / "src", note="first")
    bare = git_repository(source, tmp_path / "team.git")
    config, cache = config_for(tmp_path), tmp_path / "cache"
    first = fetch(Team("a", "team.git", "main"), config, cache)
    (source / "NOTE.txt").write_text("rewritten")
    git("-c", "user.email=t@example.org", "-c", "user.name=t", "commit", "-qa", "--amend", "-m", "rewritten",
        cwd=source)
    git("push", "-qf", str(bare), "main", cwd=source)
    second = fetch(Team("a", "team.git", "main"), config, cache)
    assert second.commit != first.commit
    again = fetch(Team("a", "team.git", "main"), config, cache, observed={"commit": first.commit, "time": "t"})
    assert again.commit == first.commit and (again.folder / "NOTE.txt").read_text() == "first"
    assert again.sha256 == first.sha256
    with pytest.raises(FetchError, match="not a commit hash"):
        fetch(Team("a", "team.git", "main"), config, cache, observed={"commit": "--output=/tmp/x", "time": "t"})
