"""A real one-node Slurm (munged, slurmctld, slurmd) on this machine, as root, for tests and the
round benchmark: the config is slurm.conf.in beside this file, every path in a scratch folder."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMPLATE = Path(__file__).with_name("slurm.conf.in")
TOOLS = ("slurmctld", "slurmd", "munged", "mungekey", "sbatch", "squeue", "scontrol", "sinfo")


def tool(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def installed() -> bool:
    return all(shutil.which(t) or os.path.exists(f"/usr/sbin/{t}") for t in TOOLS)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 4000


@contextmanager
def one_node_slurm(folder: Path) -> Iterator[dict]:
    """Start the cluster; yields {"env": environment pointing Slurm's commands at it, "host": node}."""
    folder.mkdir(parents=True, exist_ok=True)
    for sub in ("spool", "state"):
        (folder / sub).mkdir(exist_ok=True)
    host = subprocess.run(["hostname", "-s"], capture_output=True, text=True, check=True).stdout.strip()
    config = TEMPLATE.read_text()
    for name, value in {"HOST": host, "CPUS": os.cpu_count() or 1, "DIR": folder,
                        "CTLD_PORT": _free_port(), "SLURMD_PORT": _free_port(),
                        "MEMORY": min(int(_memory_mb() * 0.8), 16000)}.items():
        config = config.replace(f"@{name}@", str(value))
    (folder / "slurm.conf").write_text(config)
    env = {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")}
    subprocess.run([tool("mungekey"), "-c", "-f", "-k", str(folder / "munge.key")], check=True, capture_output=True)
    subprocess.run([tool("munged"), "--force", f"--socket={folder}/munge.socket",
                    f"--key-file={folder}/munge.key", f"--pid-file={folder}/munged.pid",
                    f"--log-file={folder}/munged.log", f"--seed-file={folder}/munged.seed"], check=True)
    try:
        subprocess.run([tool("slurmctld"), "-f", str(folder / "slurm.conf")], check=True, env=env)
        subprocess.run([tool("slurmd"), "-f", str(folder / "slurm.conf")], check=True, env=env)
        deadline = time.monotonic() + 60
        while "idle" not in subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                                           env=env).stdout:
            if time.monotonic() > deadline:
                log = (folder / "slurmctld.log").read_text()[-2000:] if (folder / "slurmctld.log").exists() else ""
                raise RuntimeError(f"the one-node Slurm did not come up: {log}")
            time.sleep(1)
        yield {"env": env, "host": host, "folder": folder}
    finally:
        subprocess.run(["scancel", "--full", "--user", "root"], env=env, capture_output=True)
        for pid_file in ("slurmd.pid", "slurmctld.pid", "munged.pid"):
            try:
                os.kill(int((folder / pid_file).read_text()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        time.sleep(1)
