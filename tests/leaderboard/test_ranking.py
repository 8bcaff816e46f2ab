"""Ranking rules."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from competition.config import CompetitionConfig
from leaderboard.ranking import build_rows, load_runs
from tests.leaderboard.conftest import write_result


def table(results, **settings):
    return [(row.team, row.rank, row.run.metric("mnist.fid")) for row in
            build_rows(load_runs(results), CompetitionConfig(**settings))]


def test_best_run_per_team_lower_fid_first_baseline_unranked_failed_last(results):
    assert table(results) == [("beta", 1, 2.0), ("vanilla", None, 2.5), ("alpha", 2, 3.0), ("gamma", None, None)]


def test_latest_selection(results):
    assert ("alpha", 2, 4.0) in table(results, selection="latest")


def test_higher_is_better_metric(results):
    rows = table(results, rank_by="mnist.recall")
    assert [team for team, rank, _ in rows if rank] == ["alpha", "beta"]  # recall 0.55 vs 0.3


def test_ties_go_to_the_earlier_submission(tmp_path):
    root = tmp_path / "r"
    write_result(root, "late", "2026-11-05T10:00:00", fid=1.0)
    write_result(root, "early", "2026-11-04T10:00:00", fid=1.0)
    assert [(team, rank) for team, rank, _ in table(root)] == [("early", 1), ("late", 2)]


def test_deadline_excludes_later_runs(results):
    deadline = datetime(2026, 11, 1, 23, 0, tzinfo=timezone.utc)
    rows = table(results, deadline=deadline)
    assert ("alpha", 2, 5.0) in rows  # only the 1 Nov run counts


def test_failed_team_is_shown_with_its_verdict(results):
    rows = build_rows(load_runs(results), CompetitionConfig())
    gamma = next(row for row in rows if row.team == "gamma")
    assert gamma.rank is None and gamma.run.verdict == "TIMEOUT" and gamma.note == "no successful run"


def test_config_from_toml(tmp_path):
    path = tmp_path / "competition.toml"
    path.write_text('title = "Test cup"\nrank_by = "mnist.recall"\nselection = "latest"\n'
                    'metrics = ["mnist.fid"]\ndeadline = 2026-12-01T00:00:00Z\n[decimals]\n"mnist.fid" = 1\n')
    config = CompetitionConfig.load(path)
    assert config.metrics == ["mnist.recall", "mnist.fid"] and config.decimals_for("mnist.fid") == 1
    assert config.deadline.year == 2026
    path.write_text('rank = "x"\n')
    with pytest.raises(ValueError, match="unknown setting"):
        CompetitionConfig.load(path)
    with pytest.raises(ValueError, match="selection"):
        CompetitionConfig(selection="worst")


def test_rule_violations_follow_the_policy(tmp_path):
    from tests.leaderboard.conftest import write_result

    results = tmp_path / "results"
    write_result(results, "clean", "2026-11-01T10:00:00", fid=3.0)
    write_result(results, "cheat", "2026-11-01T10:00:00", fid=1.0, flags=("rule_violation",))
    write_result(results, "mixed", "2026-11-01T10:00:00", fid=0.5, flags=("rule_violation",))
    write_result(results, "mixed", "2026-11-02T10:00:00", fid=4.0)
    runs = load_runs(results)
    unranked = {row.team: row for row in build_rows(runs, CompetitionConfig())}
    assert unranked["cheat"].rank is None and "rule violation" in unranked["cheat"].note
    assert unranked["clean"].rank == 1 and unranked["mixed"].rank == 2  # its clean run, 4.0
    assert unranked["mixed"].run.metric("mnist.fid") == 4.0
    rows = build_rows(runs, CompetitionConfig(rule_violation="disqualify"))
    cheat = next(row for row in rows if row.team == "cheat")
    assert cheat.rank is None and cheat.note == "disqualified: rule violation" and rows[-1] is cheat
