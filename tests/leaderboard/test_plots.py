"""The inline plots with one point, five identical points and a hundred: nothing sits on an axis,
no numbered marker hides another, no tick label is cut, every outline has a legend."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

from leaderboard import plots

SVG = "{http://www.w3.org/2000/svg}"


def svg_of(figure: str) -> ElementTree.Element:
    return ElementTree.fromstring(re.search(r"<svg.*</svg>", figure, re.S).group(0))


def markers(root: ElementTree.Element) -> list[tuple[float, float]]:
    """Centres of the numbered markers (radius 7)."""
    return [(float(c.get("cx")), float(c.get("cy"))) for c in root.iter(f"{SVG}circle") if c.get("r") == "7"]


def frame(root: ElementTree.Element) -> tuple[float, float, float, float]:
    rect = next(r for r in root.iter(f"{SVG}rect") if r.get("fill") == "none")
    x, y = float(rect.get("x")), float(rect.get("y"))
    return x, y, x + float(rect.get("width")), y + float(rect.get("height"))


CASES = {
    "one point": [(0.61, 0.42)],
    "five identical points": [(0.7, 0.6)] * 5,
    "a hundred points": list(zip(*np.random.default_rng(0).uniform(0.55, 0.8, (2, 100)))),
}


@pytest.mark.parametrize("case", CASES)
def test_numbered_markers_never_cover_each_other(case):
    points = [(str(i + 1), f"team {i}", x, y, False) for i, (x, y) in enumerate(CASES[case])]
    root = svg_of(plots.scatter(points, "P/R", "precision", "recall"))
    placed = markers(root)
    assert len(placed) == len(points)
    left, top, right, bottom = frame(root)
    assert all(left <= x <= right and top <= y <= bottom for x, y in placed)
    if len(points) <= 5:  # a cluster: every number readable
        assert min(math.dist(a, b) for i, a in enumerate(placed) for b in placed[:i]) >= plots.MARKER_GAP \
            if len(placed) > 1 else True
    else:  # a crowd in a corner: almost all apart
        close = sum(1 for i, a in enumerate(placed) for b in placed[:i] if math.dist(a, b) < plots.MARKER_GAP)
        assert close <= len(points) // 10


@pytest.mark.parametrize("case", CASES)
def test_no_point_sits_on_an_axis_and_day_ticks_are_whole(case):
    series = {f"team {i % 3}": [] for i in range(len(CASES[case]))}
    for i, (x, y) in enumerate(CASES[case]):
        series[f"team {i % 3}"].append((0.0 if case == "one point" else x * 10, 20 * y))
    root = svg_of(plots.lines(series, "FID over time", "days since the first run", "FID", whole_x=True))
    left, top, right, bottom = frame(root)
    for circle in root.iter(f"{SVG}circle"):
        x, y = float(circle.get("cx")), float(circle.get("cy"))
        assert left + 1 < x < right - 1 and top + 1 < y < bottom - 1
    labels = [t for t in root.iter(f"{SVG}text") if t.get("font-size") == "10" and
              float(t.get("y")) > bottom + 6]  # x tick labels
    assert labels and all(t.text.isdigit() for t in labels)  # whole days, none before the first
    rightmost = max(labels, key=lambda t: float(t.get("x")))
    assert float(rightmost.get("x")) < float(root.get("width")) - 10 or rightmost.get("text-anchor") == "end"


def test_the_histograms_outline_has_a_legend():
    figure = plots.bars([0.1] * 10, [str(d) for d in range(10)], [0.1] * 10, "digits")
    assert "MNIST test" in figure and "samples" in figure
