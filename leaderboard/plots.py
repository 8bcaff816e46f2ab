"""Small inline SVG plots (no plotting library, no JavaScript) that read well with one point or a hundred:
markers carry short numbers and a legend below names them (labels never overlap), axes get padded
ranges and a few round tick values (never "1.22 … 1.22")."""

from __future__ import annotations

import math
from html import escape

WIDTH, HEIGHT, LEFT, BOTTOM, TOP, RIGHT = 440, 300, 56, 40, 12, 12
PALETTE = ["#1f5fa8", "#c4470f", "#2e7d32", "#b3261e", "#6a3d9a", "#795548", "#ad1457", "#455a64", "#827717",
           "#00838f"]


def nice_ticks(low: float, high: float, count: int = 5, min_step: float = 0.0,
               clear: bool = False) -> tuple[float, float, list[float]]:
    """A padded range and round tick values covering [low, high]; a single value gets room around it.
    `min_step`: no finer ticks (whole days); `clear`: no data point on the frame (a point on the
    axis reads as the axis), so the range reaches a step beyond the data on a side it touches."""
    if not (math.isfinite(low) and math.isfinite(high)):
        low, high = 0.0, 1.0
    if high - low < 1e-12:
        pad = max(abs(low) * 0.05, 0.01, min_step)
        low, high = low - pad, high + pad
    raw = max((high - low) / max(count - 1, 1), min_step)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw - 1e-12)
    first, last = math.floor(low / step + 1e-9) * step, math.ceil(high / step - 1e-9) * step
    if clear and low - first < step * 0.05:
        first -= step
    if clear and last - high < step * 0.05:
        last += step
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
    for tick in x_ticks:  # a label at the right edge ends there (centred, it was clipped)
        anchor = "end" if sx(tick) > WIDTH - RIGHT - 15 else "middle"
        grid += (f'<line x1="{sx(tick):.1f}" y1="{TOP}" x2="{sx(tick):.1f}" y2="{HEIGHT - BOTTOM}" stroke="#e3e3e3"/>'
                 f'<text x="{sx(tick):.1f}" y="{HEIGHT - BOTTOM + 14}" font-size="10" text-anchor="{anchor}">'
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
    placed = spread([(sx(x), sy(y)) for _, _, x, y, _ in points])
    for i, ((mark, name, x, y, baseline), (px, py)) in enumerate(zip(points, placed)):
        number = i + 1
        colour = "#8a8a8a" if baseline else PALETTE[i % len(PALETTE)]
        leader = (f'<line x1="{sx(x):.1f}" y1="{sy(y):.1f}" x2="{px:.1f}" y2="{py:.1f}" stroke="{colour}"/>'
                  f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2" fill="{colour}"/>'
                  if (px, py) != (sx(x), sy(y)) else "")
        body += (f'<g><title>{escape(name)}: {x:.3f}, {y:.3f}</title>{leader}'
                 f'<circle cx="{px:.1f}" cy="{py:.1f}" r="7" fill="{colour}" fill-opacity="0.9"/>'
                 f'<text x="{px:.1f}" y="{py + 3.5:.1f}" font-size="9" fill="#fff" text-anchor="middle">'
                 f'{number}</text></g>')
        legend.append(f"{escape(name)} <small class=\"muted\">(rank {escape(mark)}; {x:.3f}, {y:.3f})</small>")
    if not points:
        body = f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" font-size="12">no scored runs yet</text>'
    return _figure(_frame(title, x_label, y_label, body, axis, axis), legend)


MARKER_GAP = 15.0  # pixels between numbered markers' centres (radius 7)


def spread(positions: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Where to draw each numbered marker: at its point, or, when that would cover an earlier
    marker, at the nearest free place on rings around it (a thin line leads back to the point)."""
    placed: list[tuple[float, float]] = []
    for x, y in positions:
        spot = (x, y)
        ring = 0
        while any(math.dist(spot, other) < MARKER_GAP for other in placed) and ring < 12:
            ring += 1
            candidates = [(x + ring * MARKER_GAP * math.cos(a), y + ring * MARKER_GAP * math.sin(a))
                          for a in (2 * math.pi * k / (6 * ring) for k in range(6 * ring))]
            inside = [c for c in candidates if LEFT + 7 <= c[0] <= WIDTH - RIGHT - 7 and TOP + 7 <= c[1] <= HEIGHT - BOTTOM - 7]
            free = [c for c in inside if all(math.dist(c, other) >= MARKER_GAP for other in placed)]
            if free:
                spot = free[0]
        placed.append(spot)
    return placed


def lines(series: dict[str, list[tuple[float, float]]], title: str, x_label: str, y_label: str,
          whole_x: bool = False) -> str:
    """series: name -> [(x, y)], e.g. FID over days since the first run (`whole_x`: whole ticks)."""
    xs = [x for pts in series.values() for x, _ in pts] or [0.0]
    ys = [y for pts in series.values() for _, y in pts] or [0.0]
    if whole_x:  # whole ticks between the data, half a unit of room each side (no "day -1")
        low, high = math.floor(min(xs)), math.ceil(max(xs))
        ticks = [t for t in nice_ticks(low, high, min_step=1.0)[2] if low <= t <= high] or [low]
        x_axis = (min(xs) - 0.5, max(xs) + 0.5, ticks)
    else:
        x_axis = nice_ticks(min(xs), max(xs), clear=True)
    y_axis = nice_ticks(min(ys), max(ys), clear=True)
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
    y_axis = nice_ticks(0.0, top * 1.15)  # room for the legend above the tallest bar
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
    if reference:  # what the dashed outline is
        legend_x = WIDTH - RIGHT - 150
        body += (f'<rect x="{legend_x}" y="{TOP + 6}" width="12" height="9" fill="#1f5fa8"/>'
                 f'<text x="{legend_x + 16}" y="{TOP + 14}" font-size="10">samples</text>'
                 f'<rect x="{legend_x + 66}" y="{TOP + 6}" width="12" height="9" fill="none" stroke="#b3261e" '
                 f'stroke-dasharray="3"/><text x="{legend_x + 82}" y="{TOP + 14}" font-size="10">MNIST test</text>')
    x_axis = (0.0, 1.0, [])
    return _frame(title, "", "share", body, x_axis, y_axis)
