"""Turn a sandboxed run and the validation of its output into one verdict with a reason.

Every verdict rests on evidence the team's printed output cannot fake: SANDBOX_ERROR on our own
channels (runner.py), TIMEOUT on our clock, OUT_OF_MEMORY on the kernel's memory-cgroup counter,
CRASH on the exit status, NEEDS_GPU on the exception object that ended the program (recorded by the
bootstrap: raised inside torch's CUDA initialisation or by torch.load restoring a CUDA tensor).
Text the program printed is quoted in reasons, never used to decide them.
"""

from __future__ import annotations

import signal
from enum import Enum

from evaluator.sandbox.runner import RunOutcome


class Verdict(str, Enum):
    OK = "OK"
    TIMEOUT = "TIMEOUT"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    CRASH = "CRASH"
    NEEDS_GPU = "NEEDS_GPU"
    INVALID_OUTPUT = "INVALID_OUTPUT"
    REFUSED = "REFUSED"  # the folder cannot be run as submitted (a link, too many files, too deep)
    INSTALL_FAILED = "INSTALL_FAILED"  # the opt-in install of the team's missing packages failed
    SANDBOX_ERROR = "SANDBOX_ERROR"  # the evaluation environment failed: not the team's doing


GPU_FIXES = {
    "cuda_call": "the code uses CUDA unconditionally: fall back to the CPU, e.g. "
                 "device = 'cuda' if torch.cuda.is_available() else 'cpu' (or ask for a --gpu run)",
    "cuda_checkpoint": "a checkpoint saved on a GPU is loaded without map_location: use "
                       "torch.load(path, map_location=device)",
}


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _where(exception: dict) -> str:
    line = exception.get("team_line")
    if not isinstance(line, dict):
        return ""
    code = str(line.get("code") or "").strip()
    return f"{str(line.get('file'))[:100]}:{line.get('line')}" + (f" `{code[:160]}`" if code else "")


def classify(outcome: RunOutcome, gpu: bool, timeout_s: float,
             program: dict | None = None) -> tuple[Verdict, str] | None:
    """The verdict of the run itself, or None when it exited 0 (then the output decides).

    `program` is the bootstrap's record of how the team's program ended (`outcome.json`).
    """
    if outcome.setup_error:
        return Verdict.SANDBOX_ERROR, outcome.setup_error
    if outcome.timed_out:
        return Verdict.TIMEOUT, f"still running after {timeout_s:g} s; the whole process tree was killed"
    if outcome.oom_killed:
        return Verdict.OUT_OF_MEMORY, "killed by the kernel for exceeding the memory limit"
    if outcome.exit_code == 0:
        return None
    exception = (program or {}).get("exception")
    exception = exception if isinstance(exception, dict) else {}
    kind = exception.get("cuda")
    if not gpu and kind in GPU_FIXES:
        where = _where(exception)
        return Verdict.NEEDS_GPU, (f"{GPU_FIXES[kind]}; raised at {where}" if where else GPU_FIXES[kind])
    rlimit_memory = str(outcome.limits_in_force.get("memory", "")).startswith("RLIMIT_AS")
    if rlimit_memory and exception.get("type") == "MemoryError":
        return Verdict.OUT_OF_MEMORY, "MemoryError under the memory limit (enforced as RLIMIT_AS)"
    if outcome.signal is not None:
        return Verdict.CRASH, f"killed by {_signal_name(outcome.signal)}"
    if exception.get("type"):
        where = _where(exception)
        message = str(exception.get("message") or "")[:200]
        text = f"{str(exception['type'])[:80]}: {message}" if message else str(exception["type"])[:80]
        return Verdict.CRASH, f"exit code {outcome.exit_code}: {text}" + (f" (at {where})" if where else "")
    last = next((line for line in reversed(outcome.log_tail.strip().splitlines()) if line.strip()), "")
    return Verdict.CRASH, f"exit code {outcome.exit_code}" + (f": {last[:200]}" if last else "")
