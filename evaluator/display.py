"""Text that comes from a team is data: never markup, never terminal control.

A team controls its stdout/stderr, its file and tensor names, its requirement lines and any text
that an error message quotes. Printed through rich's markup, a stray `[/]` raised inside the error
handler and stopped a whole batch; printed raw, escape sequences wrote the clipboard, cleared the
screen or faked a green "OK". Everything that may carry such text goes through `team_text`, which
builds a rich `Text` (never parsed as markup) with every control and invisible formatting character
shown as a visible escape such as `\\x1b`.
"""

from __future__ import annotations

import os
import re
import unicodedata

from rich.console import Console
from rich.text import Text

OFF_TERMINAL_WIDTH = 160  # rich's 80 columns cut the reason column of a status table in a log file

# C0 controls except tab/newline, DEL, C1 controls; plus the invisible formatting characters that
# reorder or hide text (bidirectional overrides and isolates, zero-width characters, the BOM).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_LINE_BREAKS = re.compile("[\n\t]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: object, multiline: bool = False) -> str:
    """`text` with control characters written out; newlines kept only when `multiline`."""
    value = _CONTROL.sub(_escape, str(text))
    if not multiline:
        value = _LINE_BREAKS.sub(lambda m: "\\n" if m.group() == "\n" else " ", value)
    # Other format characters (category Cf) that the pattern does not name: shown too.
    return "".join(ch if unicodedata.category(ch) != "Cf" else f"\\u{ord(ch):04x}" for ch in value)


def team_text(text: object, style: str | None = None, multiline: bool = False) -> Text:
    """A rich Text for untrusted text: rendered literally, controls made visible."""
    return Text(visible(text, multiline), style=style or "")


def label(prefix: str, style: str, text: object, multiline: bool = False) -> Text:
    """`prefix` in `style` (our own words), then the untrusted `text`."""
    return Text.assemble((prefix, style), team_text(text, multiline=multiline))


def make_console(stderr: bool = False, **options) -> Console:
    """A rich Console; off a terminal (a pipe, a log file) with no COLUMNS set, tables get
    OFF_TERMINAL_WIDTH columns instead of rich's 80, so no cell is cut."""
    if not Console(stderr=stderr).is_terminal and "COLUMNS" not in os.environ:
        options.setdefault("width", OFF_TERMINAL_WIDTH)
    return Console(stderr=stderr, **options)
