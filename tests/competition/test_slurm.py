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
import subprocess
import sys
import time

import pytest

from competition.journal import Journal, RoundState
from tests.competition.conftest import kit, needs_sandbox, slow, write_config
from tests.competition.slurm import cluster

pytestmark = [needs_sandbox,
              pytest.mark.skipif(os.geteuid() != 0, reason="the Slurm daemons are started as root"),
              pytest.mark.skipif(not cluster.installed(), reason="Slurm (slurm-wlm) and munge are not installed")]


@pytest.fixture(scope="module")
def slurm_env(tmp_path_factory):
    """A running one-node cluster; yields the environment that points Slurm's commands at it."""
    with cluster.one_node_slurm(tmp_path_factory.mktemp("slurm")) as running:
        yield running


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
