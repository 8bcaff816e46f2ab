"""Where a round's evaluations run: `local` (N task processes at once, GPU slots) or `slurm` (a job
array). Both start the same `competition task`; the round process alone writes the journal.
"""

from __future__ import annotations

import ctypes
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from competition import slurm
from competition.round import Round, python_command


class Reporter:
    """What a backend tells the organiser; the CLI shows it as rich progress or plain lines."""

    def started(self, team: str, where: str = "") -> None:
        pass

    def finished(self, team: str, marker: dict) -> None:
        pass

    def failed(self, team: str, reason: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass


def read_marker(round_dir: Path, team: str) -> dict | None:
    path = round_dir / "done" / f"{team}.json"
    try:
        marker = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and Path(str(marker.get("result", ""))).is_file() else None


def clear_marker(round_dir: Path, team: str) -> None:
    try:
        (round_dir / "done" / f"{team}.json").unlink()
    except FileNotFoundError:
        pass


def record_outcome(run: Round, team: str, reporter: Reporter, failure: str) -> None:
    """Journal a task's end: its marker if it wrote one, else `failure`."""
    marker = read_marker(run.round_dir, team)
    if marker is not None:
        run.journal.append("finished", team=team, verdict=marker["verdict"], reason=marker["reason"],
                           result=marker["result"], seconds=marker.get("seconds"), standing=marker.get("standing"),
                           flags=marker.get("flags") or [], evaluated_in=run.round_dir.name)
        reporter.finished(team, marker)
    else:
        run.journal.append("failed", team=team, verdict="TASK_FAILED", reason=failure)
        reporter.failed(team, failure)


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def die_with(parent: int) -> Callable[[], None]:
    """A preexec_fn: in the task's process, before exec, ask the kernel to kill it when `parent` (the
    round) dies. If the round died already, between the fork and this call, the signal would never
    come (the task has been handed to another parent): the task then ends at once. That window is
    real: a round killed just as it started a task left the task to publish a second result next to
    the resumed round's (tests/competition/test_round.py)."""
    def arm() -> None:
        try:
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
    return arm


def run_local(run: Round, teams: list[str], jobs: int, reporter: Reporter, gpus: list[str] | None = None) -> None:
    """Evaluate `teams`, `jobs` at a time, as task processes of this one."""
    jobs = max(jobs, 1)
    slots: queue.Queue[str | None] = queue.Queue()
    for index in range(jobs):  # each running task holds a slot; GPUs are shared round-robin
        slots.put(gpus[index % len(gpus)] if gpus else None)
    # A team is in `active` from its "started" event until one side owns its outcome: the worker
    # (the task ended) or the interrupt handler (the round stops). Both decide under `lock`, so a
    # Ctrl-C between "started" and the task's start, or while a task ends, still leaves the team
    # "interrupted" (run again) or with its outcome, never "running" for good.
    active: dict[str, subprocess.Popen | None] = {}
    lock = threading.Lock()
    stopping = threading.Event()

    def evaluate(team: str) -> None:
        slot = slots.get()
        try:
            with lock:
                if stopping.is_set():
                    return
                clear_marker(run.round_dir, team)
                run.journal.append("started", team=team, backend="local", gpu=slot, pid=os.getpid())
                active[team] = None
            env = dict(os.environ)
            if slot is not None:
                env["CUDA_VISIBLE_DEVICES"] = slot
            reporter.started(team, f"GPU {slot}" if slot is not None else "")
            log = run.round_dir / "logs" / f"{team}.log"
            with open(log, "ab") as output:
                # Its own session: a terminal's Ctrl-C reaches the round alone, which stops its tasks
                # and journals them; the task never records a failure of its own for it.
                process = subprocess.Popen([*python_command(), "task", str(run.round_dir), "--team", team],
                                           stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                           env=env, preexec_fn=die_with(os.getpid()), start_new_session=True)
                with lock:
                    if team in active:
                        active[team] = process
                    else:  # the round stopped while the task was starting
                        process.kill()
                code = process.wait()
            with lock:
                owned = team in active  # absent: the interrupt handler journalled it
                active.pop(team, None)
            if owned:
                record_outcome(run, team, reporter, f"the task exited with status {code}: {_last_line(log)}")
        finally:
            slots.put(slot)

    pool = ThreadPoolExecutor(max_workers=jobs)
    futures = [pool.submit(evaluate, team) for team in teams]
    try:
        for future in futures:
            while not future.done():
                time.sleep(0.2)
            future.result()
    except BaseException:
        stopping.set()
        with lock:
            for team, process in active.items():
                if process is not None:
                    process.kill()
                run.journal.append("interrupted", team=team)
            active.clear()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


ARRAY_SCRIPT = """#!/bin/bash
# One task of round {round_id}: team number $SLURM_ARRAY_TASK_ID of {tasks}.
exec {python} task {round_dir} --tasks {tasks} --index "$SLURM_ARRAY_TASK_ID"
"""


def run_slurm(run: Round, teams: list[str], reporter: Reporter) -> None:
    """Evaluate `teams` as a Slurm job array; poll until every task ended; resubmit lost tasks once."""
    if not slurm.available():
        raise slurm.SlurmError("sbatch, squeue and scontrol are not on PATH: is this a Slurm login node?")
    settings = run.config.slurm
    inflight = _inflight(run)  # tasks submitted by an earlier process of this round, still to collect
    to_submit = [team for team in teams if team not in inflight]
    resubmitted: dict[str, int] = {name: team.resubmitted for name, team in run.state().teams.items()}
    try:
        while to_submit or inflight:
            if to_submit:
                inflight.update(_submit(run, to_submit, settings))
                to_submit = []
            time.sleep(settings.poll)
            by_job: dict[str, dict[int, str]] = {}
            for team, (job, index) in inflight.items():
                by_job.setdefault(job, {})[index] = team
            for job, tasks in by_job.items():
                states = slurm.array_status(job)
                for index, team in tasks.items():
                    status = states.get(index, slurm.TaskStatus("UNKNOWN"))
                    if status.state in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED",
                                        "REQUEUED", "RESIZING"):
                        if status.state == "PENDING" and status.reason not in ("", "None", "Priority"):
                            reporter.note(f"{team}: pending ({status.reason})")
                        continue
                    del inflight[team]
                    output = run.round_dir / "slurm" / f"{job}_{index}.out"
                    lost = status.state in slurm.LOST_STATES or (
                        status.state == "UNKNOWN" and read_marker(run.round_dir, team) is None)
                    if lost and resubmitted.get(team, 0) < 1:
                        resubmitted[team] = resubmitted.get(team, 0) + 1
                        run.journal.append("lost", team=team, job=f"{job}_{index}", state=status.state)
                        reporter.note(f"{team}: task {job}_{index} lost ({status.state}); resubmitted once")
                        to_submit.append(team)
                    elif status.state == "TIMEOUT":
                        _fail(run, team, reporter, f"killed by Slurm at its time limit ({settings.time}), "
                                                   f"task {job}_{index}")
                    elif lost:
                        _fail(run, team, reporter, f"task {job}_{index} lost again ({status.state}) after one "
                                                   f"resubmission")
                    else:
                        record_outcome(run, team, reporter, f"task {job}_{index} ended {status.state} "
                                                            f"{status.exit_code}: {_last_line(output)}".strip())
    except KeyboardInterrupt:
        reporter.note("interrupted: the submitted tasks go on in Slurm; the same command collects them")
        raise


def _fail(run: Round, team: str, reporter: Reporter, reason: str) -> None:
    run.journal.append("failed", team=team, verdict="TASK_FAILED", reason=reason)
    reporter.failed(team, reason)


def _inflight(run: Round) -> dict[str, tuple[str, int]]:
    """Teams whose latest event is a Slurm submission: (job, index) to keep polling."""
    inflight = {}
    for name, team in run.state().teams.items():
        if team.state == "running" and team.job and "_" in team.job:
            job, index = team.job.split("_", 1)
            inflight[name] = (job, int(index))
    return inflight


def _submit(run: Round, teams: list[str], settings) -> dict[str, tuple[str, int]]:
    batch = len(list((run.round_dir / "slurm").glob("tasks-*.json")))
    tasks = run.round_dir / "slurm" / f"tasks-{batch}.json"
    tasks.write_text(json.dumps(teams) + "\n")
    script = run.round_dir / "slurm" / f"array-{batch}.sh"
    python = " ".join([settings.python or sys.executable, "-m", "competition"])
    script.write_text(ARRAY_SCRIPT.format(round_id=run.round_dir.name, tasks=tasks, python=python,
                                          round_dir=run.round_dir))
    script.chmod(0o755)
    for team in teams:
        clear_marker(run.round_dir, team)
    job = slurm.submit_array(str(script), list(range(len(teams))), f"mnist-round-{run.round_dir.name}",
                             str(run.round_dir / "slurm" / "%A_%a.out"), settings)
    submitted = {}
    for index, team in enumerate(teams):
        run.journal.append("submitted", team=team, backend="slurm", job=f"{job}_{index}")
        submitted[team] = (job, index)
    return submitted
