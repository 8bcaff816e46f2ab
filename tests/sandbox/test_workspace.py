"""Scratch areas: removed on exit, and swept by the next run when their owner was killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from evaluator.sandbox import workspace as ws
from evaluator.sandbox.limits import Limits


def killed_workspace(root) -> tuple[int, str]:
    """A child that opens a workspace under `root` (tmpfs mounts when root), then is SIGKILLed."""
    code = ("import sys, time; from evaluator.sandbox.limits import Limits; "
            "from evaluator.sandbox.workspace import workspace\n"
            "with workspace(Limits(), sandbox=True, scratch_dir=sys.argv[1]) as space:\n"
            "    print(space.scratch, flush=True); time.sleep(600)\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE, text=True)
    scratch = child.stdout.readline().strip()
    child.send_signal(signal.SIGKILL)
    child.wait()
    return child.pid, scratch


def test_a_killed_runs_scratch_is_swept_by_the_next_and_a_live_ones_is_not(tmp_path):
    pid, stale = killed_workspace(tmp_path)
    assert os.path.isdir(stale) and (tmp_path / os.path.basename(stale) / ws.OWNER_FILE).read_text().strip() == str(pid)
    if os.geteuid() == 0:  # the killed run's caps were tmpfs mounts, left mounted
        assert os.path.ismount(os.path.join(stale, "submission"))
    orphan = tmp_path / f"{ws.PREFIX}no-owner"  # no owner file: not ours to judge
    orphan.mkdir()
    with ws.workspace(Limits(), sandbox=False, scratch_dir=str(tmp_path)) as live:
        assert not os.path.exists(stale) and orphan.is_dir()
        assert ws.sweep_stale(tmp_path) == []  # this run's own area: its owner is alive
        assert live.scratch.is_dir()
    assert not live.scratch.exists()
    assert not any(line.split()[1].startswith(str(tmp_path)) for line in open("/proc/self/mounts"))
