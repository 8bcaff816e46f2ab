"""Errors the evaluator reports to users, each mapped to a documented exit code."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of the `evaluate` command (documented in the README)."""

    OK = 0
    INTERNAL_ERROR = 1
    USAGE_ERROR = 2
    INVALID_SAMPLES = 3
    DATA_NOT_FOUND = 4
    WEIGHTS_ERROR = 5
    SUBMISSION_FAILED = 6
    SANDBOX_UNAVAILABLE = 7
    INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as shells report it


class EvaluatorError(Exception):
    """An expected failure with a message meant for the user (never a traceback)."""

    exit_code: ExitCode = ExitCode.INTERNAL_ERROR


class DataNotFoundError(EvaluatorError):
    """MNIST (or another required data file) is not where we looked."""

    exit_code = ExitCode.DATA_NOT_FOUND


class WeightsError(EvaluatorError):
    """Feature-network weights are missing or do not match their recorded hash."""

    exit_code = ExitCode.WEIGHTS_ERROR


class InvalidSamplesError(EvaluatorError):
    """The samples folder failed validation; carries the full report."""

    exit_code = ExitCode.INVALID_SAMPLES

    def __init__(self, report: "object") -> None:
        self.report = report
        super().__init__(str(report))
