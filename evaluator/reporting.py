"""Progress hooks of the pipeline, in a module of their own so that the command line can name them
without importing torch (`evaluate --help` answers before any heavy import)."""

from __future__ import annotations

from typing import Callable


class Reporter:
    """Progress hooks; the CLI plugs rich in, library users get silence."""

    def stage(self, name: str, total: int | None = None) -> Callable[[int], None]:
        return lambda advance=1: None

    def done(self, name: str, seconds: float, note: str = "") -> None:
        pass
