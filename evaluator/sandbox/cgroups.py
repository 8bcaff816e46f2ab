"""A per-run cgroup (v1 or v2) holding memory and pids limits, and killing what is left."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


class Cgroup:
    """Memory + pids limits for one run. `available()` says whether this machine allows it."""

    def __init__(self, name: str, memory_bytes: int, pids: int) -> None:
        self.name = name
        self.memory_bytes = memory_bytes
        self.pids = pids
        self.v2 = (ROOT / "cgroup.controllers").exists()
        if self.v2:
            self.dirs = {"unified": ROOT / name}
        else:
            self.dirs = {"memory": ROOT / "memory" / name, "pids": ROOT / "pids" / name}

    @staticmethod
    def available() -> bool:
        if os.geteuid() != 0:
            return False
        if (ROOT / "cgroup.controllers").exists():
            controllers = (ROOT / "cgroup.controllers").read_text().split()
            return {"memory", "pids"} <= set(controllers) and os.access(ROOT, os.W_OK)
        return all(os.access(ROOT / c, os.W_OK) for c in ("memory", "pids"))

    def create(self) -> None:
        for path in self.dirs.values():
            path.mkdir()
        if self.v2:
            unified = self.dirs["unified"]
            (unified / "memory.max").write_text(str(self.memory_bytes))
            if (unified / "memory.swap.max").exists():
                (unified / "memory.swap.max").write_text("0")
            (unified / "pids.max").write_text(str(self.pids))
        else:
            memory = self.dirs["memory"]
            (memory / "memory.limit_in_bytes").write_text(str(self.memory_bytes))
            if (memory / "memory.memsw.limit_in_bytes").exists():
                (memory / "memory.memsw.limit_in_bytes").write_text(str(self.memory_bytes))
            (self.dirs["pids"] / "pids.max").write_text(str(self.pids))

    def enter(self) -> None:
        """Move the calling process in (used in the child before exec)."""
        pid = str(os.getpid())
        for path in self.dirs.values():
            (path / "cgroup.procs").write_text(pid)

    def processes(self) -> list[int]:
        pids: set[int] = set()
        for path in self.dirs.values():
            try:
                pids |= {int(p) for p in (path / "cgroup.procs").read_text().split()}
            except OSError:
                pass
        return sorted(pids)

    def oom_killed(self) -> bool:
        try:
            if self.v2:
                events = (self.dirs["unified"] / "memory.events").read_text()
            else:
                events = (self.dirs["memory"] / "memory.oom_control").read_text()
                if int((self.dirs["memory"] / "memory.failcnt").read_text() or 0) > 0 \
                        and "oom_kill " not in events:
                    return True
        except OSError:
            return False
        for line in events.splitlines():
            key, _, value = line.partition(" ")
            if key in ("oom_kill", "oom") and value.strip().isdigit() and int(value) > 0:
                return True
        return False

    def peak_memory(self) -> int | None:
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        path = self.dirs["unified" if self.v2 else "memory"] / name
        try:
            return int(path.read_text())
        except (OSError, ValueError):
            return None

    def kill_all(self, timeout_s: float = 5.0) -> bool:
        """SIGKILL every process in the group until it is empty; True when empty."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pids = self.processes()
            if not pids:
                return True
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        return not self.processes()

    def remove(self) -> None:
        for path in self.dirs.values():
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)
