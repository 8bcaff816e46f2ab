"""Small inline SVG plots (no plotting library, no JavaScript) that read well with one point or a hundred:
markers carry short numbers and a legend below names them (labels never overlap), axes get padded
ranges and a few round tick values (never "1.22 … 1.22")."""

from __future__ import annotations

import math
from html import escape

WIDTH, HEIGHT, LEFT, BOTTOM, TOP, RIGHT = 440, 300, 56, 40, 12, 12
PALETTE = ["#1f5fa8", "#c4470f", "#2e7d32", "#b3261e", "#6a3d9a", "#795548", "#ad1457", "#455a64", "#827717",
           "#00838f"]


def nice_ticks(low: float, high: float, count: int = 5) -> tuple[float, float, list[float]]:
    """A padded range and round tick values covering [low, high]; a single value gets room around it."""
    if not (math.isfinite(low) and math.isfinite(high)):
        low, high = 0.0, 1.0
    if high - low < 1e-12:
        pad = max(abs(low) * 0.05, 0.01)
        low, high = low - pad, high + pad
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first, last = math.floor(low / step) * step, math.ceil(high / step) * step
    ticks = [first + i * step for i in range(int(round((last - first) / step)) + 1)]
    return first, last, ticks


def _tick_text(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{value:.{decimals}f}"


def _frame(title: str, x_label: str, y_label: str, body: str, x_axis, y_axis) -> str:
    (x_lo, x_hi, x_ticks), (y_lo, y_hi, y_ticks) = x_axis, y_axis
    sx, sy = _scaler(x_lo, x_hi, LEFT, WIDTH - RIGHT), _scaler(y_lo, y_hi, HEIGHT - BOTTOM, TOP)
    grid = ""
    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
    for tick in x_ticks:
        grid += (f'<line x1="{sx(tick):.1f}" y1="{TOP}" x2="{sx(tick):.1f}" y2="{HEIGHT - BOTTOM}" stroke="#e3e3e3"/>'
                 f'<text x="{sx(tick):.1f}" y="{HEIGHT - BOTTOM + 14}" font-size="10" text-anchor="middle">'
                 f'{_tick_text(tick, x_step)}</text>')
    for tick in y_ticks:
        grid += (f'<line x1="{LEFT}" y1="{sy(tick):.1f}" x2="{WIDTH - RIGHT}" y2="{sy(tick):.1f}" stroke="#e3e3e3"/>'
                 f'<text x="{LEFT - 5}" y="{sy(tick) + 3:.1f}" font-size="10" text-anchor="end">'
                 f'{_tick_text(tick, y_step)}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>{grid}'
            f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{HEIGHT - TOP - BOTTOM}" '
            f'fill="none" stroke="#8a8a8a"/>{body}'
            f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 6}" text-anchor="middle" font-size="12">'
            f'{escape(x_label)}</text>'
            f'<text x="12" y="{(TOP + HEIGHT - BOTTOM) / 2}" text-anchor="middle" font-size="12" '
            f'transform="rotate(-90 12 {(TOP + HEIGHT - BOTTOM) / 2})">{escape(y_label)}</text></svg>')


def _scaler(lo: float, hi: float, low_px: float, high_px: float):
    span = (hi - lo) or 1.0
    return lambda v: low_px + (v - lo) / span * (high_px - low_px)


def _figure(svg: str, legend: list[str]) -> str:
    items = "".join(f"<li>{item}</li>" for item in legend)
    return f"<figure>{svg}{f'<ol>{items}</ol>' if items else ''}</figure>"


def scatter(points: list[tuple[str, str, float, float, bool]], title: str, x_label: str, y_label: str) -> str:
    """points: (marker text such as a rank, name, x, y, is_baseline); axes fixed to [0, 1]."""
    axis = nice_ticks(0.0, 1.0)
    sx, sy = _scaler(0, 1, LEFT, WIDTH - RIGHT), _scaler(0, 1, HEIGHT - BOTTOM, TOP)
    body, legend = "", []
    for i, (mark, name, x, y, baseline) in enumerate(points):
        number = i + 1
        colour = "#8a8a8a" if baseline else PALETTE[i % len(PALETTE)]
        body += (f'<g><title>{escape(name)}: {x:.3f}, {y:.3f}</title>'
                 f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="7" fill="{colour}" fill-opacity="0.85"/>'
                 f'<text x="{sx(x):.1f}" y="{sy(y) + 3.5:.1f}" font-size="9" fill="#fff" text-anchor="middle">'
                 f'{number}</text></g>')
        legend.append(f"{escape(name)} <small class=\"muted\">(rank {escape(mark)}; {x:.3f}, {y:.3f})</small>")
    if not points:
        body = f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" font-size="12">no scored runs yet</text>'
    return _figure(_frame(title, x_label, y_label, body, axis, axis), legend)


def lines(series: dict[str, list[tuple[float, float]]], title: str, x_label: str, y_label: str) -> str:
    """series: name -> [(x, y)], e.g. FID over days since the first run."""
    xs = [x for pts in series.values() for x, _ in pts] or [0.0]
    ys = [y for pts in series.values() for _, y in pts] or [0.0]
    x_axis = nice_ticks(min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1.0)
    y_axis = nice_ticks(min(ys), max(ys))
    sx, sy = _scaler(x_axis[0], x_axis[1], LEFT, WIDTH - RIGHT), _scaler(y_axis[0], y_axis[1], HEIGHT - BOTTOM, TOP)
    body, legend = "", []
    for i, (name, pts) in enumerate(sorted(series.items())):
        colour = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        body += (f'<g><title>{escape(name)}</title><polyline points="{coords}" fill="none" stroke="{colour}" '
                 f'stroke-width="2"/>'
                 + "".join(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{colour}"/>' for x, y in pts)
                 + "</g>")
        legend.append(f'<span style="color:{colour}">■</span> {escape(name)}')
    if not series:
        body = f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" font-size="12">no scored runs yet</text>'
    return _figure(_frame(title, x_label, y_label, body, x_axis, y_axis), legend if len(series) > 1 else [])


def bars(values: list[float], labels: list[str], reference: list[float] | None, title: str) -> str:
    """A histogram (e.g. digit shares) with the reference as outlined bars."""
    top = max([*values, *(reference or []), 1e-9])
    y_axis = nice_ticks(0.0, top)
    sy = _scaler(y_axis[0], y_axis[1], HEIGHT - BOTTOM, TOP)
    width = (WIDTH - LEFT - RIGHT) / max(len(values), 1)
    body = ""
    for i, value in enumerate(values):
        x = LEFT + i * width
        body += (f'<g><title>{escape(labels[i])}: {value:.3f}</title><rect x="{x + 3:.1f}" y="{sy(value):.1f}" '
                 f'width="{width - 6:.1f}" height="{sy(0) - sy(value):.1f}" fill="#1f5fa8"/></g>')
        if reference:
            body += (f'<rect x="{x + 1:.1f}" y="{sy(reference[i]):.1f}" width="{width - 2:.1f}" '
                     f'height="{sy(0) - sy(reference[i]):.1f}" fill="none" stroke="#b3261e" stroke-dasharray="3"/>')
        body += (f'<text x="{x + width / 2:.1f}" y="{HEIGHT - BOTTOM + 26}" font-size="11" text-anchor="middle">'
                 f'{escape(labels[i])}</text>')
    x_axis = (0.0, 1.0, [])
    return _frame(title, "", "share", body, x_axis, y_axis)
