"""A thin client for the Slurm commands a round needs: sbatch (an array), squeue, scontrol, sacct.

Plain commands rather than a wrapper library: a round needs per-task states of an array, which
only `squeue -r`, `scontrol show job` (finished tasks, while slurmctld keeps them) and `sacct`
(where accounting is configured) give, and resubmission of single indices, which is one more
`sbatch --array=` line. `SLURM_CONF` and the usual Slurm environment select the cluster.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from competition.config import SlurmSettings

FINAL_STATES = {"COMPLETED", "FAILED", "TIMEOUT", "NODE_FAIL", "BOOT_FAIL", "CANCELLED", "OUT_OF_MEMORY",
                "PREEMPTED", "DEADLINE", "REVOKED", "SPECIAL_EXIT"}
LOST_STATES = {"NODE_FAIL", "BOOT_FAIL", "PREEMPTED"}  # the task did not fail: its node did


class SlurmError(Exception):
    """A Slurm command failed (the message quotes it)."""


@dataclass
class TaskStatus:
    state: str  # PENDING, RUNNING, COMPLETED, TIMEOUT, NODE_FAIL, ... or UNKNOWN
    reason: str = ""
    exit_code: str = ""

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


def available() -> bool:
    return all(shutil.which(tool) for tool in ("sbatch", "squeue", "scontrol"))


def _run(command: list[str], timeout: float = 60.0) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SlurmError(f"{command[0]}: {err}") from err
    if done.returncode != 0:
        raise SlurmError(f"{' '.join(command[:2])} failed: {(done.stderr or done.stdout).strip()[:300]}")
    return done.stdout


def sbatch_options(settings: SlurmSettings) -> list[str]:
    options = [f"--time={settings.time}", f"--mem={settings.mem}", f"--cpus-per-task={settings.cpus_per_task}",
               "--no-requeue"]  # a task lost with its node is resubmitted by the round, once
    for flag, value in (("--partition", settings.partition), ("--account", settings.account),
                        ("--gres", settings.gres)):
        if value:
            options.append(f"{flag}={value}")
    return [*options, *settings.extra]


def submit_array(script: str, indices: list[int], name: str, output: str, settings: SlurmSettings) -> str:
    """Submit `script` as an array over `indices`; returns the array's job id."""
    array = ",".join(str(i) for i in indices)
    if settings.max_parallel:
        array += f"%{settings.max_parallel}"
    out = _run(["sbatch", "--parsable", f"--array={array}", f"--job-name={name}", f"--output={output}",
                *sbatch_options(settings), script])
    job = out.strip().split(";")[0]
    if not job.isdigit():
        raise SlurmError(f"sbatch answered {out.strip()!r}")
    return job


def array_status(job: str) -> dict[int, TaskStatus]:
    """The state of every task of array `job` that Slurm still knows about, by index."""
    states = _from_scontrol(job)  # finished tasks, while slurmctld keeps them (MinJobAge)
    states.update(_from_sacct(job))  # finished tasks, where accounting is configured
    states.update(_from_squeue(job))  # live tasks: the freshest word on them
    return states


def _from_squeue(job: str) -> dict[int, TaskStatus]:
    try:
        out = _run(["squeue", "-h", "-r", "-j", job, "-o", "%K|%T|%r"])
    except SlurmError:  # an unknown job id is an error for squeue: nothing live
        return {}
    states = {}
    for line in out.splitlines():
        index, _, rest = line.partition("|")
        state, _, reason = rest.partition("|")
        if index.strip().isdigit():
            states[int(index)] = TaskStatus(state.strip(), reason.strip())
    return states


def _from_scontrol(job: str) -> dict[int, TaskStatus]:
    try:
        out = _run(["scontrol", "show", "job", "-o", job])
    except SlurmError:
        return {}
    states = {}
    for line in out.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        index = fields.get("ArrayTaskId", "")
        if index.isdigit():
            states[int(index)] = TaskStatus(fields.get("JobState", "UNKNOWN"), fields.get("Reason", ""),
                                            fields.get("ExitCode", ""))
    return states


def _from_sacct(job: str) -> dict[int, TaskStatus]:
    if shutil.which("sacct") is None:
        return {}
    try:
        out = _run(["sacct", "-j", job, "-X", "-P", "-n", "-o", "JobID,State,ExitCode"])
    except SlurmError:  # no accounting storage on this cluster
        return {}
    states = {}
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) < 3 or "_" not in parts[0]:
            continue
        index = parts[0].split("_", 1)[1]
        if index.isdigit():
            states[int(index)] = TaskStatus(parts[1].split()[0], exit_code=parts[2])
    return states


def cancel(job: str) -> None:
    try:
        _run(["scancel", job])
    except SlurmError:
        pass
