"""The two charts of docs/benchmarks.md, as small SVG files written without a plotting library:
page time against the number of rows (log scale), and the callback backlog drained over time."""

import math
from pathlib import Path

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 640, 360, 70, 170, 30, 50
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def _svg(title, body, x_label, y_label):
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'font-family="sans-serif" font-size="12">\n'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>\n'
        f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="14">{title}</text>\n'
        f'<text x="{LEFT + (WIDTH - LEFT - RIGHT) / 2}" y="{HEIGHT - 10}" '
        f'text-anchor="middle">{x_label}</text>\n'
        f'<text x="16" y="{TOP + (HEIGHT - TOP - BOTTOM) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {TOP + (HEIGHT - TOP - BOTTOM) / 2})">{y_label}</text>\n'
        f"{body}</svg>\n"
    )


def _axes(x_ticks, y_ticks):
    """Axis lines with their tick labels: [(position in px, label)] for each axis."""
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    parts = [
        f'<line x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="black"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="black"/>',
    ]
    for x, label in x_ticks:
        parts.append(f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{label}</text>')
    for y, label in y_ticks:
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>'
        )
    return "\n".join(parts) + "\n"


def _scale(low, high, start, end):
    span = (high - low) or 1
    return lambda value: start + (value - low) / span * (end - start)


def _nice_ticks(high, count=5):
    step = 10 ** math.floor(math.log10(high / count or 1)) if high > 0 else 1
    for factor in (1, 2, 5, 10):
        if high / (step * factor) <= count:
            step *= factor
            break
    return [step * n for n in range(int(high / step) + 2)]


def lines(title, series, x_label, y_label, log_x=False):
    """A line chart of `series` {name: [(x, y)]}, with a legend on the right."""
    xs = [x for points in series.values() for x, _ in points]
    ys = [y for points in series.values() for _, y in points]
    fx = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    to_x = _scale(fx(min(xs)), fx(max(xs)), LEFT, WIDTH - RIGHT)
    y_ticks = _nice_ticks(max(ys))
    to_y = _scale(0, y_ticks[-1], HEIGHT - BOTTOM, TOP)
    if log_x:
        x_ticks = [(to_x(fx(x)), f"{x:,}") for x in sorted(set(xs))]
    else:
        x_ticks = [(to_x(x), f"{x:g}") for x in _nice_ticks(max(xs)) if x <= max(xs)]
    body = _axes(x_ticks, [(to_y(y), f"{y:g}") for y in y_ticks])
    for n, (name, points) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        path = " ".join(f"{to_x(fx(x)):.1f},{to_y(y):.1f}" for x, y in points)
        body += f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>\n'
        if len(points) < 20:
            for x, y in points:
                body += (
                    f'<circle cx="{to_x(fx(x)):.1f}" cy="{to_y(y):.1f}" r="3" fill="{colour}"/>\n'
                )
        legend_y = TOP + 10 + 18 * n
        body += (
            f'<rect x="{WIDTH - RIGHT + 12}" y="{legend_y - 8}" width="12" height="4" '
            f'fill="{colour}"/><text x="{WIDTH - RIGHT + 30}" y="{legend_y}">{name}</text>\n'
        )
    return _svg(title, body, x_label, y_label)


def write(path: Path, svg: str) -> None:
    path.write_text(svg, encoding="utf-8")
