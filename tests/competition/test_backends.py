"""The local backend's task processes: a task never outlives the round that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from competition.backends import die_with


def test_a_task_whose_round_is_already_gone_ends_before_it_runs(tmp_path):
    marker = tmp_path / "ran"
    program = [sys.executable, "-c", f"open({str(marker)!r}, 'w').write('ran')"]
    gone = subprocess.run(program, preexec_fn=die_with(os.getpid() + 10_000_000))  # no such parent
    assert gone.returncode == -signal.SIGKILL and not marker.exists()
    alive = subprocess.run(program, preexec_fn=die_with(os.getpid()))
    assert alive.returncode == 0 and marker.read_text() == "ran"


def test_a_task_dies_with_its_round(tmp_path):
    # The "round" starts a task that would sleep for a minute, prints its pid and is killed -9.
    round_code = (
        "import os, subprocess, sys, time\n"
        "from competition.backends import die_with\n"
        "task = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
        " preexec_fn=die_with(os.getpid()), start_new_session=True)\n"
        "print(task.pid, flush=True)\n"
        "time.sleep(60)\n")
    round_process = subprocess.Popen([sys.executable, "-c", round_code], stdout=subprocess.PIPE, text=True)
    task_pid = int(round_process.stdout.readline())
    round_process.kill()
    round_process.wait()
    deadline = time.monotonic() + 10
    while not ended(task_pid):
        if time.monotonic() > deadline:
            os.kill(task_pid, signal.SIGKILL)
            raise AssertionError("the task outlived its round")
        time.sleep(0.05)


def ended(pid: int) -> bool:
    """No such process, or a dead one that its new parent has not reaped yet."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
