"""Each concurrent run holds a uid of its own, released when the run ends."""

from __future__ import annotations

import threading

import pytest

from evaluator.sandbox import identity


@pytest.fixture
def lock_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(identity, "LOCK_DIRS", (tmp_path / "locks",))
    return tmp_path / "locks"


def test_concurrent_holders_get_distinct_uids(lock_dir):
    held, release = [], threading.Event()
    ready = threading.Barrier(9)

    def hold():
        with identity.sandbox_uid() as uid:
            held.append(uid)
            ready.wait()
            release.wait()

    threads = [threading.Thread(target=hold) for _ in range(8)]
    for thread in threads:
        thread.start()
    ready.wait()
    assert len(set(held)) == 8 and min(held) == identity.uid_base()
    release.set()
    for thread in threads:
        thread.join()
    with identity.sandbox_uid() as uid:  # every lock was released
        assert uid == identity.uid_base()


def test_the_base_is_configurable(lock_dir, monkeypatch):
    monkeypatch.setenv(identity.UID_BASE_ENV, "5000000")
    with identity.sandbox_uid() as uid:
        assert uid == 5_000_000


def test_running_out_of_uids_is_an_error(lock_dir, monkeypatch):
    monkeypatch.setattr(identity, "SLOTS", 1)
    with identity.sandbox_uid():
        with pytest.raises(identity.NoFreeIdentity):
            with identity.sandbox_uid():
                pass
