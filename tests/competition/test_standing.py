"""The rule-violation policy: ranked, unranked with a badge, or disqualified."""

from __future__ import annotations

from competition.standing import Standing, standing

OK = {"verdict": "OK", "status": "ok", "flags": []}
VIOLATION = {**OK, "flags": [{"code": "rule_violation", "message": "fixed generator: ..."}]}


def test_standing_follows_the_policy():
    assert standing(OK, "unranked") is Standing.RANKED
    assert standing(VIOLATION, "unranked") is Standing.UNRANKED
    assert standing(VIOLATION, "disqualify") is Standing.DISQUALIFIED
    assert standing({**OK, "flags": [{"code": "memorisation", "message": ""}]}, "disqualify") is Standing.RANKED
    assert standing({"verdict": "CRASH", "status": "generation_failed", "flags": []}, "unranked") is Standing.FAILED


def test_a_data_copying_flag_costs_what_a_rule_violation_costs():
    from competition.standing import unranking_reason

    copying = {**OK, "flags": [{"code": "data_copying", "message": "C_T -28.7"}]}
    assert standing(copying, "unranked") is Standing.UNRANKED
    assert standing(copying, "disqualify") is Standing.DISQUALIFIED
    assert unranking_reason(copying) == "data copying"
    both = {**OK, "flags": VIOLATION["flags"] + copying["flags"]}
    assert unranking_reason(both) == "rule violation and data copying"
