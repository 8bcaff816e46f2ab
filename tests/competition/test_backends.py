"""The local backend's scheduling: N tasks at once, each GPU slot handed to one task at a time; and a
task never outlives the round that started it."""

from __future__ import annotations

import _thread
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from competition import backends
from competition.backends import Reporter, die_with, run_local
from competition.config import CompetitionConfig
from competition.round import Round
from tests.competition.conftest import write_config

FAKE_TASK = textwrap.dedent("""
    import json, os, sys, time
    round_dir, team = sys.argv[2], sys.argv[4]
    time.sleep(0.5)
    result = os.path.join(round_dir, "logs", team + ".result")
    open(result, "w").write("{}")
    marker = {"team": team, "verdict": "OK", "reason": os.environ.get("CUDA_VISIBLE_DEVICES", "none"),
              "result": result, "seconds": {"evaluate": 0.5}}
    json.dump(marker, open(os.path.join(round_dir, "done", team + ".json"), "w"))
""")


class Recorder(Reporter):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.markers: dict[str, dict] = {}
        self.failures: dict[str, str] = {}

    def finished(self, team, marker):
        with self.lock:
            self.markers[team] = marker

    def failed(self, team, reason):
        with self.lock:
            self.failures[team] = reason


def open_round(tmp_path, monkeypatch, teams: list[str], task_source: str) -> Round:
    """A round over folders `teams`, whose tasks run `task_source` instead of the evaluator."""
    for name in teams:
        (tmp_path / name).mkdir()
        (tmp_path / name / "generate.py").write_text(f"# {name}\n")
    config = CompetitionConfig.load(write_config(tmp_path, [(n, n, None) for n in teams]))
    fake = tmp_path / "fake_task.py"
    fake.write_text(task_source)
    monkeypatch.setattr(backends, "python_command", lambda: [sys.executable, str(fake)])
    run = Round(config)
    run.open()
    return run


def test_gpu_slots_and_failed_tasks(tmp_path, monkeypatch):
    teams = [f"t{i}" for i in range(6)]
    run = open_round(tmp_path, monkeypatch, teams, FAKE_TASK)
    fake = tmp_path / "fake_task.py"
    try:
        pending = run.plan()
        assert pending == teams
        recorder = Recorder()
        run_local(run, pending[:4], 2, recorder, gpus=["0", "1"])
        assert sorted(recorder.markers) == teams[:4]
        assert {m["reason"] for m in recorder.markers.values()} == {"0", "1"}
        fake.write_text("import sys; print('boom'); sys.exit(3)\n")  # a task that dies without a marker
        run_local(run, pending[4:], 2, recorder)
        assert set(recorder.failures) == {"t4", "t5"} and "status 3: boom" in recorder.failures["t4"]
        states = run.state().teams
        assert [states[t].state for t in teams] == ["done"] * 4 + ["failed"] * 2
    finally:
        run.close()


SLEEPING_TASK = textwrap.dedent("""
    import os, sys, time
    round_dir, team = sys.argv[2], sys.argv[4]
    open(os.path.join(round_dir, "logs", team + ".pid"), "w").write(str(os.getpid()))
    time.sleep(60)
""")


class InterruptOnStart(Recorder):
    """Ctrl-C at the moment a given team starts: the window between its "started" event and its task."""

    def __init__(self, team: str) -> None:
        super().__init__()
        self.team = team

    def started(self, team, where=""):
        if team == self.team:
            _thread.interrupt_main()  # what SIGINT does: KeyboardInterrupt in the round's main thread
            time.sleep(0.5)  # let the main thread handle it before this task starts


def test_an_interrupt_leaves_no_team_running_and_no_task_alive(tmp_path, monkeypatch, ctrl_c_delivered):
    teams = ["t0", "t1", "t2", "t3"]
    run = open_round(tmp_path, monkeypatch, teams, SLEEPING_TASK)
    try:
        pending = run.plan()
        with pytest.raises(KeyboardInterrupt):
            run_local(run, pending, 2, InterruptOnStart("t1"))
        events = [(e["event"], e.get("team")) for e in run.journal.events()]
        started = {team for event, team in events if event == "started"}
        assert started == {"t0", "t1"}  # t2, t3 never started: the round stopped first
        assert {team for event, team in events if event == "interrupted"} == started
        states = run.state().teams
        assert all(states[t].state == "pending" for t in teams)  # the same command runs them all again
        for team in started:  # a task that had started is gone with the round
            pid_file = run.round_dir / "logs" / f"{team}.pid"
            if pid_file.exists():
                pid = int(pid_file.read_text())
                with pytest.raises(ProcessLookupError):
                    os.kill(pid, 0)
    finally:
        run.close()


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
