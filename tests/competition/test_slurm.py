"""`competition round --backend slurm` against a real one-node Slurm (slurmctld, slurmd, munged),
started here as root on the config in tests/competition/slurm/: never a mock.

One round, four teams: two quick ones; one whose task is lost when the node fails while it runs
(resubmitted once, then evaluated); one that outlives Slurm's time limit (reported as killed by
Slurm). The node is drained before it fails, so the resubmitted tasks wait, pending, until the
test resumes the node.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from competition.journal import Journal, RoundState
from tests.competition.conftest import kit, needs_sandbox, slow, write_config

TEMPLATE = Path(__file__).with_name("slurm") / "slurm.conf.in"
TOOLS = ("slurmctld", "slurmd", "munged", "mungekey", "sbatch", "squeue", "scontrol", "sinfo")
pytestmark = [needs_sandbox,
              pytest.mark.skipif(os.geteuid() != 0, reason="the Slurm daemons are started as root"),
              pytest.mark.skipif(not all(shutil.which(t) or os.path.exists(f"/usr/sbin/{t}") for t in TOOLS),
                                 reason="Slurm (slurm-wlm) and munge are not installed")]


def _tool(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 4000


@pytest.fixture(scope="module")
def slurm_env(tmp_path_factory):
    """A running one-node cluster; yields the environment that points Slurm's commands at it."""
    folder = tmp_path_factory.mktemp("slurm")
    for sub in ("spool", "state"):
        (folder / sub).mkdir()
    host = subprocess.run(["hostname", "-s"], capture_output=True, text=True, check=True).stdout.strip()
    config = TEMPLATE.read_text()
    for name, value in {"HOST": host, "CPUS": os.cpu_count() or 1, "DIR": folder,
                        "CTLD_PORT": _free_port(), "SLURMD_PORT": _free_port(),
                        "MEMORY": min(int(_memory_mb() * 0.8), 16000)}.items():
        config = config.replace(f"@{name}@", str(value))
    (folder / "slurm.conf").write_text(config)
    env = {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")}
    subprocess.run([_tool("mungekey"), "-c", "-k", str(folder / "munge.key")], check=True, capture_output=True)
    subprocess.run([_tool("munged"), "--force", f"--socket={folder}/munge.socket",
                    f"--key-file={folder}/munge.key", f"--pid-file={folder}/munged.pid",
                    f"--log-file={folder}/munged.log", f"--seed-file={folder}/munged.seed"], check=True)
    subprocess.run([_tool("slurmctld"), "-f", str(folder / "slurm.conf")], check=True, env=env)
    subprocess.run([_tool("slurmd"), "-f", str(folder / "slurm.conf")], check=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=env).stdout
            if "idle" in states:
                break
            time.sleep(1)
        else:
            pytest.fail(f"the test cluster did not come up: {(folder / 'slurmctld.log').read_text()[-2000:]}")
        yield {"env": env, "host": host, "folder": folder}
    finally:
        subprocess.run(["scancel", "--full", "--user", "root"], env=env, capture_output=True)
        for pid_file in ("slurmd.pid", "slurmctld.pid", "munged.pid"):
            try:
                os.kill(int((folder / pid_file).read_text()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        time.sleep(1)


def _node(slurm_env, state: str) -> None:
    subprocess.run(["scontrol", "update", f"nodename={slurm_env['host']}", f"state={state}",
                    *(["reason=round-test"] if state in ("drain", "down") else [])],
                   check=True, env=slurm_env["env"], capture_output=True)


def _running_indices(slurm_env, job: str) -> set[int]:
    out = subprocess.run(["squeue", "-h", "-r", "-j", job, "-o", "%K %T"], capture_output=True, text=True,
                         env=slurm_env["env"]).stdout
    return {int(i) for i, s in (line.split() for line in out.splitlines()) if s == "RUNNING" and i.isdigit()}


def test_a_round_on_slurm_survives_a_node_failure_a_drain_and_a_time_limit(tmp_path, slurm_env, mnist_root,
                                                                             cache_dir):
    kit(tmp_path / "quick-1", note="1")
    kit(tmp_path / "quick-2", note="2")
    slow(tmp_path / "victim", 25)
    slow(tmp_path / "sleeper", 400)
    config = write_config(tmp_path, [(n, n, None) for n in ("quick-1", "quick-2", "victim", "sleeper")],
                          extra='[slurm]\ntime = "1"\nmem = "1000M"\ncpus_per_task = 1\npoll = 2\n')
    config.write_text(config.read_text().replace("timeout = 120", "timeout = 600"))
    env = {**slurm_env["env"], "MNIST_ROOT": str(mnist_root), "EVALUATOR_CACHE": str(cache_dir)}
    process = subprocess.Popen([sys.executable, "-m", "competition", "round", str(config), "--backend", "slurm"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    rounds = tmp_path / ".competition" / "rounds"

    def events() -> list[dict]:
        folders = list(rounds.iterdir()) if rounds.exists() else []
        return Journal(folders[0] / "journal.jsonl").events() if folders else []

    try:
        deadline = time.monotonic() + 300
        job = None
        while time.monotonic() < deadline and process.poll() is None:
            submitted = {e["team"]: e["job"] for e in events() if e["event"] == "submitted"}
            if "victim" in submitted:
                job = submitted["victim"].split("_")[0]
                if {2, 3} <= _running_indices(slurm_env, job):  # the victim and the sleeper run
                    break
            time.sleep(1)
        assert job is not None and process.poll() is None, "the victim's task never ran"
        _node(slurm_env, "drain")  # no new task may start here...
        _node(slurm_env, "down")  # ...and the running ones are lost with the node
        while time.monotonic() < deadline and sum(e["event"] == "lost" for e in events()) < 2:
            time.sleep(1)
        time.sleep(8)  # the resubmitted tasks wait on the drained node
        _node(slurm_env, "resume")
        out, err = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err[-3000:]
    folder = next(rounds.iterdir())
    state = RoundState.replay(folder.name, Journal(folder / "journal.jsonl").events())
    assert state.finished
    for name in ("quick-1", "quick-2", "victim"):
        assert state.teams[name].state == "done" and state.teams[name].verdict == "OK", (name, state.teams[name])
    assert state.teams["victim"].resubmitted == 1
    sleeper = state.teams["sleeper"]
    assert sleeper.state == "failed" and "time limit" in sleeper.reason
    assert "pending (" in err  # the drained node was reported while the tasks waited
    for name in ("quick-1", "quick-2", "victim"):
        [path] = (tmp_path / "results" / name).glob("*/result.json")
        assert json.loads(path.read_text())["verdict"] == "OK"
    assert (tmp_path / "site" / "index.html").exists()
