"""Where a result stands in the ranking: ranked, unranked (shown with a badge) or disqualified.

One rule, used by `evaluate`'s summary table and by the leaderboard: a run whose fixed-generator
check found a violation, or whose samples the set-level copying test flags (they sit closer to the
reference than genuine unseen digits do), is, by `rule_violation` in competition.toml, either
listed with a badge and no rank (`unranked`, the default) or taken out of the ranking
(`disqualify`). The per-sample near-copy flag (`memorisation`) is shown, never decides.
"""

from __future__ import annotations

from enum import Enum

RULE_FLAG = "rule_violation"
COPYING_FLAG = "data_copying"
RULE_FLAGS = (RULE_FLAG, COPYING_FLAG)


class Standing(str, Enum):
    RANKED = "ranked"
    UNRANKED = "unranked"  # a rule violation under the "unranked" policy: badge, no rank
    DISQUALIFIED = "disqualified"
    FAILED = "failed"  # no scored samples


def has_rule_violation(result: dict) -> bool:
    return any(flag.get("code") in RULE_FLAGS for flag in result.get("flags", []))


def standing(result: dict, policy: str) -> Standing:
    """The standing of one result under the competition's rule-violation policy."""
    if result.get("verdict", "OK") != "OK" or result.get("status") != "ok":
        return Standing.FAILED
    if has_rule_violation(result):
        return Standing.DISQUALIFIED if policy == "disqualify" else Standing.UNRANKED
    return Standing.RANKED


def unranking_reason(result: dict) -> str:
    """Why a scored run takes no rank, in the words a table shows: the flags that cost it."""
    names = {RULE_FLAG: "rule violation", COPYING_FLAG: "data copying"}
    found = [names[flag.get("code")] for flag in result.get("flags", []) if flag.get("code") in names]
    return " and ".join(dict.fromkeys(found)) or "rule violation"

