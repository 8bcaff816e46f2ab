"""The journal after a crash mid-write: the torn line is cut, the next event is kept."""

from __future__ import annotations

import json

from competition.journal import Journal, RoundState


def test_an_event_after_a_torn_line_is_not_lost(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append("round_started")
    journal.append("started", team="a")
    with open(journal.path, "ab") as handle:  # a crash in the middle of writing a line
        handle.write(b'{"time": "2026-01-01T00:00:00+00:00", "event": "fini')
    journal.append("finished", team="a", verdict="OK")
    lines = journal.path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1])
    assert RoundState.replay("r", journal.events()).teams["a"].state == "done"


def test_a_torn_first_line_and_a_long_torn_line_are_cut(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    journal.path.write_bytes(b'{"event": "round_sta')
    journal.append("round_started")
    assert [e["event"] for e in journal.events()] == ["round_started"]
    with open(journal.path, "ab") as handle:
        handle.write(b"x" * 200_000)  # longer than one read block
    journal.append("started", team="b")
    assert [e["event"] for e in journal.events()] == ["round_started", "started"]
    assert journal.path.read_bytes().count(b"\n") == 2
