"""A round's journal: one JSON line per event, appended under a file lock and synced to disk.

The journal is the round's memory across Ctrl-C, `kill -9` and reboots: replaying it says which
teams are done, which were running (they are run again), and which are pending. A line torn by a
crash is ignored when read, and cut off before the next append. The lock (filelock) makes
concurrent appenders safe; it also marks the round as held, so that two `competition round`
processes never drive the same round.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from evaluator.results import utc_now


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock = FileLock(str(self.path) + ".lock")

    def append(self, event: str, **fields) -> dict:
        record = {"time": utc_now(), "event": event, **fields}
        line = json.dumps(record, default=str) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            with os.fdopen(fd, "r+b") as handle:
                _cut_torn_tail(handle)
                handle.seek(0, os.SEEK_END)
                handle.write(line.encode())
                handle.flush()
                os.fsync(handle.fileno())
        return record

    def events(self) -> list[dict]:
        if not self.path.exists():
            return []
        records = []
        with open(self.path) as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:  # a line torn by a crash mid-write
                    continue
                if isinstance(record, dict) and "event" in record:
                    records.append(record)
        return records


def _cut_torn_tail(handle, chunk: int = 65536) -> None:
    """Drop a last line that a crash left without its newline, so the next event starts a line of
    its own (appended to the torn one, it would be lost with it)."""
    end = handle.seek(0, os.SEEK_END)
    if end == 0:
        return
    handle.seek(end - 1)
    if handle.read(1) == b"\n":
        return
    position = end
    while position > 0:
        start = max(position - chunk, 0)
        handle.seek(start)
        block = handle.read(position - start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            handle.truncate(start + newline + 1)
            return
        position = start
    handle.truncate(0)


# What a team's latest event says about it.
STATES = {"planned": "pending", "fetch_failed": "failed", "skipped": "skipped", "started": "running",
          "submitted": "running", "finished": "done", "failed": "failed", "lost": "pending",
          "interrupted": "pending"}


@dataclass
class TeamState:
    name: str
    state: str = "pending"
    verdict: str | None = None
    reason: str = ""
    result: str | None = None
    key: str | None = None
    commit: str | None = None
    attempts: int = 0
    resubmitted: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # per step: fetch, evaluate, ...
    job: str | None = None
    standing: str | None = None  # ranked | unranked | disqualified | failed, of the result it refers to
    flags: list[str] = field(default_factory=list)
    evaluated_in: str | None = None  # the round whose evaluation the result is (a skip refers to an older one)
    previous_verdict: str | None = None  # a skipped team's verdict in that evaluation


@dataclass
class RoundState:
    round_id: str
    finished: bool = False
    teams: dict[str, TeamState] = field(default_factory=dict)
    started: str | None = None
    ended: str | None = None

    @classmethod
    def replay(cls, round_id: str, events: list[dict]) -> "RoundState":
        state = cls(round_id)
        for record in events:
            event = record["event"]
            if event == "round_started":
                state.started = record["time"]
            elif event == "round_finished":
                state.finished, state.ended = True, record["time"]
            team_name = record.get("team")
            if not team_name:
                continue
            team = state.teams.setdefault(team_name, TeamState(team_name))
            team.state = STATES.get(event, team.state)
            if event == "planned":
                team.key, team.commit = record.get("key"), record.get("commit")
                team.seconds["fetch"] = record.get("seconds", 0.0)
            elif event in ("started", "submitted"):
                team.attempts += 1
                team.job = record.get("job")
            elif event == "lost":
                team.resubmitted += 1
            elif event in ("finished", "skipped", "failed", "fetch_failed"):
                team.verdict = record.get("verdict")
                team.reason = record.get("reason", "")
                team.result = record.get("result")
                team.seconds.update(record.get("seconds") or {})
                team.standing, team.flags = record.get("standing"), list(record.get("flags") or [])
                team.evaluated_in = record.get("evaluated_in")
                team.previous_verdict = record.get("previous_verdict")
        return state

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for team in self.teams.values():
            counts[team.state] = counts.get(team.state, 0) + 1
        return counts
