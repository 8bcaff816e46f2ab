"""Turn a sandboxed run and the validation of its output into one verdict with a reason."""

from __future__ import annotations

import re
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
    SANDBOX_ERROR = "SANDBOX_ERROR"


# What torch prints when code insists on CUDA on a machine (or sandbox) without it.
NEEDS_GPU_PATTERNS = re.compile(
    r"Torch not compiled with CUDA enabled|Found no NVIDIA driver|"
    r"torch\.cuda\.is_available\(\) is False|CUDA driver initialization failed|"
    r"No CUDA GPUs are available|no CUDA-capable device|CUDA error: no kernel image|"
    r"NVIDIA driver on your system is too old|Cannot access accelerator device")
MEMORY_PATTERNS = re.compile(r"\bMemoryError\b|Cannot allocate memory|DefaultCPUAllocator: can't allocate")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def classify(outcome: RunOutcome, gpu: bool, timeout_s: float) -> tuple[Verdict, str] | None:
    """The verdict of the run itself, or None when it exited 0 (then the output decides)."""
    if outcome.sandbox_error:
        return Verdict.SANDBOX_ERROR, outcome.sandbox_error
    if outcome.timed_out:
        return Verdict.TIMEOUT, f"still running after {timeout_s:g} s; the whole process tree was killed"
    if outcome.oom_killed or (outcome.exit_code not in (0, None) and MEMORY_PATTERNS.search(outcome.log_tail)):
        return Verdict.OUT_OF_MEMORY, "killed for exceeding the memory limit"
    if outcome.exit_code == 0:
        return None
    if not gpu and NEEDS_GPU_PATTERNS.search(outcome.log_tail):
        return Verdict.NEEDS_GPU, "the code requires CUDA; run with --gpu, or load with map_location"
    if outcome.signal is not None:
        return Verdict.CRASH, f"killed by {_signal_name(outcome.signal)}"
    last = next((line for line in reversed(outcome.log_tail.strip().splitlines()) if line.strip()), "")
    return Verdict.CRASH, f"exit code {outcome.exit_code}" + (f": {last[:200]}" if last else "")
