"""Staging a team folder: plain files only, stale output dropped, a stable hash."""

from __future__ import annotations

import os

import pytest

from evaluator.sandbox.limits import Limits, parse_size
from evaluator.sandbox.staging import StagingError, stage_submission


@pytest.fixture
def team(tmp_path):
    folder = tmp_path / "team"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "generate.py").write_text("print('hi')")
    (folder / "checkpoints" / "G.pth").write_bytes(b"\0" * 100)
    return folder


def test_copy_hash_and_permissions(team, tmp_path):
    staged = stage_submission(team, tmp_path / "scratch")
    assert (staged.directory / "checkpoints" / "G.pth").read_bytes() == b"\0" * 100
    assert staged.files == 2 and staged.bytes == 111
    assert oct(os.stat(staged.directory / "generate.py").st_mode & 0o777) == "0o644"
    again = stage_submission(team, tmp_path / "scratch2")
    assert again.sha256 == staged.sha256
    (team / "generate.py").write_text("print('changed')")
    assert stage_submission(team, tmp_path / "scratch3").sha256 != staged.sha256


def test_committed_samples_are_staged_empty(team, tmp_path):
    (team / "samples").mkdir()
    (team / "samples" / "0.png").write_bytes(b"old")
    staged = stage_submission(team, tmp_path / "scratch")
    assert staged.removed and list((staged.directory / "samples").iterdir()) == []  # as on the platform


def test_no_samples_folder_is_made_for_a_team_without_one(team, tmp_path):
    staged = stage_submission(team, tmp_path / "scratch")
    assert not (staged.directory / "samples").exists()  # generate.py makes its own


@pytest.mark.parametrize("make,message", [
    (lambda f: os.symlink("/etc/passwd", f / "link.py"), "symbolic link"),
    (lambda f: os.mkfifo(f / "pipe"), "FIFO"),
    (lambda f: os.symlink("/etc", f / "dirlink"), "symbolic link"),
])
def test_special_files_are_refused(team, tmp_path, make, message):
    make(team)
    with pytest.raises(StagingError, match=message):
        stage_submission(team, tmp_path / "scratch")


def test_oversized_files_and_folders_are_refused(team, tmp_path):
    with open(team / "big.bin", "wb") as handle:
        handle.truncate(2000)
    with pytest.raises(StagingError, match="limit per file"):
        stage_submission(team, tmp_path / "a", Limits(submission_max_file_bytes=1000))
    with pytest.raises(StagingError, match="exceeds"):
        stage_submission(team, tmp_path / "b", Limits(submission_max_bytes=1500))


def test_missing_generate_py(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(StagingError, match="generate.py"):
        stage_submission(tmp_path / "empty", tmp_path / "scratch")


@pytest.mark.parametrize("text,expected", [("512M", 512 << 20), ("4G", 4 << 30), ("1.5G", int(1.5 * (1 << 30))),
                                           ("100", 100), ("2GiB", 2 << 30)])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


def test_parse_size_rejects_garbage():
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")


def test_version_control_metadata_is_not_staged(team, tmp_path):
    (team / ".git" / "objects").mkdir(parents=True)
    (team / ".git" / "objects" / "pack").write_bytes(b"x" * 100)
    staged = stage_submission(team, tmp_path / "scratch")
    assert not (staged.directory / ".git").exists() and staged.files == 2
    assert any(".git" in note for note in staged.removed)
    assert staged.sha256 == stage_submission(team, tmp_path / "again").sha256


def test_entry_count_and_depth_are_bounded(team, tmp_path):
    for i in range(30):
        (team / f"f{i}").touch()
    with pytest.raises(StagingError, match="more than 20 files"):
        stage_submission(team, tmp_path / "a", Limits(submission_max_files=20))
    deep = team
    for _ in range(6):
        deep = deep / "d"
    deep.mkdir(parents=True)
    with pytest.raises(StagingError, match="deeper than 4 levels"):
        stage_submission(team, tmp_path / "b", Limits(submission_max_depth=4))


def test_remove_tree_handles_depth_and_permissions(tmp_path):
    from evaluator.sandbox.staging import remove_tree

    root = tmp_path / "tree"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    for _ in range(1200):  # deeper than the recursion limit, longer than PATH_MAX
        os.mkdir("d" * 60, dir_fd=fd)
        deeper = os.open("d" * 60, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = deeper
    os.close(os.open("f", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
    os.fchmod(fd, 0)
    os.close(fd)
    (root / "locked").mkdir()
    (root / "locked" / "x").touch()
    os.chmod(root / "locked", 0)
    os.symlink("/etc", root / "link")  # removed, never followed
    remove_tree(root)
    assert not root.exists() and os.path.isdir("/etc")


def test_hashing_without_copying_agrees_with_staging(team, tmp_path):
    from evaluator.sandbox.staging import hash_submission

    (team / "samples").mkdir()
    (team / "sub").mkdir()
    (team / "sub" / "w.bin").write_bytes(b"\1" * 50)
    staged = stage_submission(team, tmp_path / "scratch")
    hashed = hash_submission(team)
    assert (hashed.sha256, hashed.files, hashed.bytes) == (staged.sha256, staged.files, staged.bytes)
    assert hashed.directory == team
