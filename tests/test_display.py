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
