"""`competition round`: a roster of folders and git repositories, skipping, forcing, quotas, resuming."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from competition.cli import main
from competition.journal import Journal, RoundState
from tests.competition.conftest import git_repository, kit, needs_sandbox, slow, write_config

pytestmark = needs_sandbox


def results_of(root: Path, team: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / "results" / team).glob("*/result.json"))]


def round_state(root: Path) -> RoundState:
    [folder] = sorted((root / ".competition" / "rounds").iterdir())[-1:]
    return RoundState.replay(folder.name, Journal(folder / "journal.jsonl").events())


@pytest.fixture
def env(mnist_root, cache_dir):
    return {**os.environ, "MNIST_ROOT": str(mnist_root), "EVALUATOR_CACHE": str(cache_dir)}


def competition(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "competition", *args], capture_output=True, text=True, env=env,
                          timeout=900)


def test_a_roster_of_folders_and_git_repositories(tmp_path, env):
    kit(tmp_path / "team-a")
    git_repository(kit(tmp_path / "src-b", note="b"), tmp_path / "team-b.git")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "generate.py").write_text("raise SystemExit('no samples today')\n")
    config = write_config(tmp_path, [("team-a", "team-a", None), ("team-b", "team-b.git", "main"),
                                     ("broken", "broken", None), ("ghost", "no-such-repo.git", "main")])
    first = competition(["round", str(config), "--jobs", "2"], env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "[1/3]" in first.stderr and "[3/3]" in first.stderr  # one plain line per team off a terminal
    state = round_state(tmp_path)
    assert state.finished and state.teams["team-a"].state == state.teams["team-b"].state == "done"
    assert state.teams["broken"].verdict == "CRASH" and state.teams["ghost"].verdict == "FETCH_FAILED"
    seconds = state.teams["team-a"].seconds  # the task's fixed cost beside its evaluation
    assert 0 < seconds["start-up"] < seconds["evaluate"] and "s start-up)" in first.stderr
    [b] = results_of(tmp_path, "team-b")
    assert b["verdict"] == "OK" and b["round"]["kind"] == "git" and len(b["round"]["commit"]) == 40
    assert b["generation"]["seed"] == 0 and (tmp_path / "site" / "index.html").exists()

    second = competition(["round", str(config)], env)  # nothing changed: every team skipped
    assert second.returncode == 0, second.stderr[-3000:]
    state = round_state(tmp_path)
    assert {state.teams[t].state for t in ("team-a", "team-b", "broken")} == {"skipped"}
    assert len(results_of(tmp_path, "team-a")) == 1

    (tmp_path / "team-a" / "NOTE.txt").write_text("a new submission")
    third = competition(["round", str(config), "--force", "team-b"], env)
    assert third.returncode == 0, third.stderr[-3000:]
    state = round_state(tmp_path)
    assert state.teams["team-a"].state == "done" and state.teams["team-b"].state == "done"
    assert state.teams["broken"].state == "skipped"
    assert len(results_of(tmp_path, "team-a")) == len(results_of(tmp_path, "team-b")) == 2
    status = competition(["status", str(config), "--json"], env)
    assert json.loads(status.stdout)["teams"]["team-a"]["state"] == "done"


def test_a_round_killed_halfway_finishes_every_team_exactly_once(tmp_path, env):
    teams = []
    for name in ("t1", "t2", "t3", "t4"):
        slow(tmp_path / name, 4)
        (tmp_path / name / "NOTE.txt").write_text(name)
        teams.append((name, name, None))
    config = write_config(tmp_path, teams)
    process = subprocess.Popen([sys.executable, "-m", "competition", "round", str(config), "--jobs", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    journal = None
    while process.poll() is None:  # kill -9 once one team is done and the next one is running
        rounds = tmp_path / ".competition" / "rounds"
        if journal is None and rounds.exists() and any(rounds.iterdir()):
            journal = Journal(next(rounds.iterdir()) / "journal.jsonl")
        events = [e["event"] for e in journal.events()] if journal else []
        if events.count("finished") >= 1 and events.count("started") >= 2:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.2)
    process.wait()
    state = round_state(tmp_path)
    assert not state.finished and 1 <= sum(t.state == "done" for t in state.teams.values()) < 4
    again = competition(["round", str(config), "--jobs", "2"], env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed" in again.stderr
    state = round_state(tmp_path)
    assert state.finished and all(state.teams[n].state == "done" for n, _, _ in teams)
    for name, _, _ in teams:
        assert len(results_of(tmp_path, name)) == 1, name  # evaluated exactly once
    assert not list((tmp_path / "results").glob("*/.incoming-*"))  # no partial run folder


def test_ctrl_c_stops_the_round_and_the_same_command_continues(tmp_path, env, ctrl_c_delivered):
    slow(tmp_path / "a", 30)
    kit(tmp_path / "b")
    config = write_config(tmp_path, [("a", "a", None), ("b", "b", None)])
    process = subprocess.Popen([sys.executable, "-m", "competition", "round", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=ctrl_c_delivered)
    while process.poll() is None:
        rounds = tmp_path / ".competition" / "rounds"
        if rounds.exists() and any(rounds.iterdir()) and any(
                e["event"] == "started" for e in Journal(next(rounds.iterdir()) / "journal.jsonl").events()):
            process.send_signal(signal.SIGINT)
            break
        time.sleep(0.2)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "run the same command" in err
    assert round_state(tmp_path).teams["a"].state == "pending"  # interrupted: it runs again


def test_the_quota_limits_new_submissions_a_day(tmp_path, env):
    kit(tmp_path / "a")
    config = write_config(tmp_path, [("a", "a", None)], extra="quota = 1\n")
    assert competition(["round", str(config)], env).returncode == 0
    (tmp_path / "a" / "NOTE.txt").write_text("second try today")
    assert competition(["round", str(config)], env).returncode == 0
    team = round_state(tmp_path).teams["a"]
    assert team.state == "skipped" and team.reason.startswith("quota: 1 evaluation(s) today")
    assert len(results_of(tmp_path, "a")) == 1


def test_changed_settings_are_a_new_evaluation_and_stop_a_resumed_round(tmp_path, env):
    kit(tmp_path / "a")
    config = write_config(tmp_path, [("a", "a", None)])
    assert competition(["round", str(config)], env).returncode == 0
    config.write_text(config.read_text().replace("timeout = 120", "timeout = 100"))
    assert competition(["round", str(config)], env).returncode == 0
    assert round_state(tmp_path).teams["a"].state == "done" and len(results_of(tmp_path, "a")) == 2
    journal = Journal(sorted((tmp_path / ".competition" / "rounds").iterdir())[-1] / "journal.jsonl")
    lines = journal.path.read_text().splitlines()
    journal.path.write_text("\n".join(line for line in lines if "round_finished" not in line) + "\n")
    config.write_text(config.read_text().replace("timeout = 100", "timeout = 90"))
    outcome = competition(["round", str(config)], env)
    assert outcome.returncode == 2 and "settings changed" in outcome.stderr


def test_a_secret_seed_stays_out_of_the_journal(tmp_path, env):
    kit(tmp_path / "a")
    config = write_config(tmp_path, [("a", "a", None)], extra='seed = "secret"\n')
    assert competition(["round", str(config)], env).returncode == 0
    seed = int(competition(["seed", str(config)], env).stdout)
    [result] = results_of(tmp_path, "a")
    assert result["generation"]["seed"] == seed
    rounds = tmp_path / ".competition" / "rounds"
    events = Journal(next(rounds.iterdir()) / "journal.jsonl").events()
    assert all(event.get("seed") is None for event in events if event["event"] == "round_started")
    assert oct((tmp_path / ".competition" / "seed").stat().st_mode & 0o777) == "0o600"


def test_usage_errors(tmp_path):
    bad = tmp_path / "competition.toml"
    bad.write_text('[[teams]]\nname = "a"\n')
    outcome = CliRunner().invoke(main, ["round", str(bad)])
    assert outcome.exit_code == 2 and "line 2" in outcome.output
    bad.write_text('title = "no teams"\n')
    outcome = CliRunner().invoke(main, ["round", str(bad)])
    assert outcome.exit_code == 2 and "no [[teams]]" in outcome.output


def test_the_final_round_takes_what_was_fetched_in_time_not_commit_dates(tmp_path, env):
    """A commit pushed after the deadline with a backdated date is not the final submission: the
    final round evaluates the last commit a round fetched at or before the deadline."""
    source = kit(tmp_path / "src", note="before the deadline")
    bare = git_repository(source, tmp_path / "team.git")
    on_time = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True).stdout.strip()
    config = write_config(tmp_path, [("a", "team.git", "main"), ("never-seen", "late.git", "main")],
                          extra="deadline = 2099-01-01T00:00:00Z\n")
    first = competition(["round", str(config)], env)
    assert first.returncode == 0, first.stderr[-3000:]
    time.sleep(1.1)
    deadline = datetime.now(timezone.utc).replace(microsecond=0)
    time.sleep(1.1)
    config.write_text(config.read_text().replace("2099-01-01T00:00:00Z", deadline.isoformat()))
    (source / "NOTE.txt").write_text("after the deadline")
    backdated = {**os.environ, "GIT_AUTHOR_DATE": "2020-01-01T10:00:00Z", "GIT_COMMITTER_DATE": "2020-01-01T10:00:00Z"}
    subprocess.run(["git", "-c", "user.email=t@example.org", "-c", "user.name=t", "commit", "-qam", "late"],
                   cwd=source, check=True, env=backdated)
    subprocess.run(["git", "push", "-q", str(bare), "main"], cwd=source, check=True)
    git_repository(kit(tmp_path / "late-src", note="late"), tmp_path / "late.git")  # first seen after it
    final = competition(["round", str(config)], env)
    assert final.returncode == 0, final.stderr[-3000:]
    state = round_state(tmp_path)
    assert state.teams["never-seen"].verdict == "FETCH_FAILED"
    assert "at or before the deadline" in state.teams["never-seen"].reason
    results = results_of(tmp_path, "a")
    [final_result] = [r for r in results if r["round"]["final"]]
    assert final_result["round"]["commit"] == on_time and final_result["round"]["observed_at"] <= deadline.isoformat()
    assert final_result["round"]["commit_date"] is not None  # shown, never decided on
    assert (tmp_path / "site" / "final.html").exists()
    observed = [json.loads(line) for line in (tmp_path / ".competition" / "observed.jsonl").read_text().splitlines()]
    assert [(o["team"], o["commit"]) for o in observed] == [("a", on_time)]  # the first round's fetch only


def test_a_result_is_keyed_by_what_was_staged(tmp_path, env, monkeypatch):
    """A folder changed between planning and evaluation is stored under the new code's key, so the
    next round evaluates the changed folder again instead of skipping it as unchanged."""
    from competition.config import CompetitionConfig
    from competition.round import Round
    from competition.task import run_task

    kit(tmp_path / "team-a")
    config_path = write_config(tmp_path, [("team-a", "team-a", None)])
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    round_ = Round(CompetitionConfig.load(config_path))
    round_.open()
    try:
        assert round_.plan() == ["team-a"]
        planned_key = round_.load_plan()["team-a"]["key"]
        (tmp_path / "team-a" / "NOTE.txt").write_text("changed after planning")
        marker = run_task(round_.round_dir, "team-a")
        round_.finish(tmp_path / "site")
    finally:
        round_.close()
    [result] = results_of(tmp_path, "team-a")
    assert marker["key"] == result["round"]["key"] != planned_key
    assert result["round"]["changed_since_planning"] is True
    again = competition(["round", str(config_path)], env)  # plans the changed folder: already evaluated
    assert again.returncode == 0, again.stderr[-3000:]
    assert round_state(tmp_path).teams["team-a"].state == "skipped"
    (tmp_path / "team-a" / "NOTE.txt").write_text("the old code's key must not match this either")
    third = competition(["round", str(config_path)], env)
    assert third.returncode == 0 and round_state(tmp_path).teams["team-a"].state == "done"


def test_the_rounds_reports_show_standing_flags_and_the_evaluating_round(tmp_path, env):
    """A rule-violating run is not plain "OK" in the round's line and tables; after an unchanged
    round, status shows each team's standing result and the round that evaluated it."""
    folder = kit(tmp_path / "blurry")
    script = (folder / "generate.py").read_text()
    original = "            images = self.generator(z)\n"
    assert original in script
    (folder / "generate.py").write_text(script.replace(original, (  # mirrored: not the generator's output
        "            images = torch.flip(self.generator(z).view(-1, 28, 28), dims=[2]).reshape(-1, 784)\n")))
    kit(tmp_path / "fine")
    config = write_config(tmp_path, [("blurry", "blurry", None), ("fine", "fine", None)])
    first = competition(["round", str(config)], env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "blurry: OK (unranked: rule_violation)" in first.stderr
    [first_round] = [p.name for p in (tmp_path / ".competition" / "rounds").iterdir()]
    second = competition(["round", str(config)], env)
    assert second.returncode == 0, second.stderr[-3000:]
    status = json.loads(competition(["status", str(config), "--json"], env).stdout)["teams"]
    assert status["blurry"]["state"] == "skipped" and status["blurry"]["standing"] == "unranked"
    assert status["blurry"]["flags"] == ["rule_violation"] and status["blurry"]["evaluated_in"] == first_round
    assert status["fine"]["standing"] == "ranked" and status["fine"]["previous_verdict"] == "OK"
    table = competition(["status", str(config)], {**env, "COLUMNS": "200"}).stdout
    assert "unranked" in table and "rule_violation" in table and first_round in table
