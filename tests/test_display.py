"""Team text on the terminal: literal, with every control character made visible."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from evaluator.display import label, team_text, visible


@pytest.mark.parametrize("raw,shown", [
    ("\x1b]52;c;cHduZWQ=\x07", "\\x1b]52;c;cHduZWQ=\\x07"),
    ("\x1b[2J\x1b[32mOK", "\\x1b[2J\\x1b[32mOK"),
    ("\x9b2J", "\\x9b2J"),
    ("a\u202eb\u200bc\ufeff", "a\\u202eb\\u200bc\\ufeff"),
    ("line\nnext\ttab\r", "line\\nnext tab\\x0d"),
])
def test_controls_are_made_visible(raw, shown):
    assert visible(raw) == shown


def test_multiline_keeps_newlines_only():
    assert visible("a\nb\x1b", multiline=True) == "a\nb\\x1b"


@pytest.mark.parametrize("text", ["[/]", "[bold red]OK[/bold red]", "[link=https://x]y[/link]", "[/", "\\[x]"])
def test_markup_is_printed_literally(text):
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, color_system="truecolor")
    console.print(team_text(text))
    console.print(label("flag: ", "bold yellow", text))
    output = buffer.getvalue()
    assert output.count(text) == 2


def test_tables_off_a_terminal_are_not_cut_at_80_columns(monkeypatch, capsys):
    """A status table written to a log file keeps its reason column whole."""
    from rich.table import Table

    from evaluator.display import OFF_TERMINAL_WIDTH, make_console

    monkeypatch.delenv("COLUMNS", raising=False)
    table = Table("team", "reason")
    table.add_row("team-a", "generated and scored, " + "x" * 90)
    make_console().print(table)
    assert "x" * 90 in capsys.readouterr().out
    assert make_console().width == OFF_TERMINAL_WIDTH
    monkeypatch.setenv("COLUMNS", "100")
    assert make_console().width == 100  # the organiser's own setting wins
