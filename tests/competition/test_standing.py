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
