"""Small inline SVG plots (no plotting library, no JavaScript)."""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT, PAD = 420, 300, 44
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]


def _scale(values: list[float], low_px: float, high_px: float, lo=None, hi=None):
    lo = min(values) if lo is None else lo
    hi = max(values) if hi is None else hi
    span = (hi - lo) or 1.0
    return lambda v: low_px + (v - lo) / span * (high_px - low_px), lo, hi


def _frame(title: str, x_label: str, y_label: str, body: str, x_range, y_range) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
            f'<rect x="{PAD}" y="10" width="{WIDTH - PAD - 10}" height="{HEIGHT - PAD - 10}" '
            f'fill="none" stroke="#999"/>{body}'
            f'<text x="{WIDTH / 2}" y="{HEIGHT - 8}" text-anchor="middle" font-size="12">{escape(x_label)}</text>'
            f'<text x="12" y="{HEIGHT / 2}" text-anchor="middle" font-size="12" '
            f'transform="rotate(-90 12 {HEIGHT / 2})">{escape(y_label)}</text>'
            f'<text x="{PAD}" y="{HEIGHT - PAD + 14}" font-size="10">{x_range[0]:.3g}</text>'
            f'<text x="{WIDTH - 10}" y="{HEIGHT - PAD + 14}" font-size="10" text-anchor="end">{x_range[1]:.3g}</text>'
            f'<text x="{PAD - 4}" y="{HEIGHT - PAD}" font-size="10" text-anchor="end">{y_range[0]:.3g}</text>'
            f'<text x="{PAD - 4}" y="20" font-size="10" text-anchor="end">{y_range[1]:.3g}</text></svg>')


def scatter(points: list[tuple[str, float, float, bool]], title: str, x_label: str, y_label: str) -> str:
    """points: (label, x, y, is_baseline); axes fixed to [0, 1] (precision, recall)."""
    sx, *_ = _scale([0, 1], PAD, WIDTH - 10, 0, 1)
    sy, *_ = _scale([0, 1], HEIGHT - PAD, 10, 0, 1)
    baseline_style = 'fill="#999" stroke="#333" stroke-dasharray="2"'
    body = "".join(
        f'<g><title>{escape(label)}: {x:.3f}, {y:.3f}</title>'
        f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="5" '
        + (baseline_style if baseline else f'fill="{PALETTE[i % len(PALETTE)]}"')
        + f'/><text x="{sx(x) + 7:.1f}" y="{sy(y) + 4:.1f}" font-size="10">{escape(label)}</text></g>'
        for i, (label, x, y, baseline) in enumerate(points))
    return _frame(title, x_label, y_label, body, (0, 1), (0, 1))


def lines(series: dict[str, list[tuple[float, float]]], title: str, x_label: str, y_label: str) -> str:
    """series: name -> [(x, y)], e.g. FID over days since the first run."""
    xs = [x for pts in series.values() for x, _ in pts] or [0.0]
    ys = [y for pts in series.values() for _, y in pts] or [0.0]
    sx, x_lo, x_hi = _scale(xs, PAD, WIDTH - 10)
    sy, y_lo, y_hi = _scale(ys, HEIGHT - PAD, 10)
    body = ""
    for i, (name, pts) in enumerate(sorted(series.items())):
        colour = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        body += (f'<g><title>{escape(name)}</title><polyline points="{coords}" fill="none" '
                 f'stroke="{colour}" stroke-width="2"/>'
                 + "".join(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>' for x, y in pts)
                 + "</g>")
    return _frame(title, x_label, y_label, body, (x_lo, x_hi), (y_lo, y_hi))


def bars(values: list[float], labels: list[str], reference: list[float] | None, title: str) -> str:
    """A histogram (e.g. digit shares) with the reference as outlined bars."""
    top = max([*values, *(reference or []), 1e-9])
    width = (WIDTH - PAD - 10) / max(len(values), 1)
    body = ""
    for i, value in enumerate(values):
        x = PAD + i * width
        h = value / top * (HEIGHT - PAD - 20)
        body += (f'<g><title>{escape(labels[i])}: {value:.3f}</title>'
                 f'<rect x="{x + 3:.1f}" y="{HEIGHT - PAD - h:.1f}" width="{width - 6:.1f}" height="{h:.1f}" fill="#1f77b4"/></g>')
        if reference:
            rh = reference[i] / top * (HEIGHT - PAD - 20)
            body += (f'<rect x="{x + 1:.1f}" y="{HEIGHT - PAD - rh:.1f}" width="{width - 2:.1f}" height="{rh:.1f}" '
                     f'fill="none" stroke="#d62728" stroke-dasharray="3"/>')
        body += f'<text x="{x + width / 2:.1f}" y="{HEIGHT - PAD + 26}" font-size="11" text-anchor="middle">{escape(labels[i])}</text>'
    return _frame(title, "", "share", body, (0, len(values)), (0, top))
