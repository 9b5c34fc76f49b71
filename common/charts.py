"""Charts as inline SVG drawn on the server: the curves are small, so no plotting dependency and
nothing to fetch or run in the browser. Every label is escaped."""

from __future__ import annotations

import math
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 480, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 44
FRAUD_COLOUR, LEGIT_COLOUR, LINE_COLOUR = "#c0392b", "#2e7d32", "#1f5fa8"


def _svg(title: str, body: list[str], *, width: int = WIDTH, height: int = HEIGHT, css: str = "chart") -> SafeString:
    return mark_safe(
        f'<svg class="{css}" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" '
        f'font-size="11"><title>{escape(title)}</title>{"".join(body)}</svg>'
    )


def _text(x: float, y: float, text: str, *, anchor: str = "middle", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {extra}>{escape(text)}</text>'


def _axes(x_label: str, y_label: str, *, width: int = WIDTH, height: int = HEIGHT) -> list[str]:
    x0, y0, x1 = LEFT, height - BOTTOM, width - RIGHT
    return [
        f'<line x1="{x0}" y1="{TOP}" x2="{x0}" y2="{y0}" stroke="#555"/>',
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#555"/>',
        _text((x0 + x1) / 2, height - 8, x_label),
        _text(14, (TOP + y0) / 2, y_label, extra=f'transform="rotate(-90 14 {(TOP + y0) / 2:.1f})"'),
    ]


def pr_curve(recall: Sequence[float], precision: Sequence[float], *, at: tuple[float, float] | None) -> SafeString:
    """Precision against recall, with the version's operating point (its threshold) marked."""
    x0, y0 = LEFT, HEIGHT - BOTTOM
    span_x, span_y = WIDTH - RIGHT - LEFT, HEIGHT - BOTTOM - TOP

    def point(r: float, p: float) -> str:
        return f"{x0 + r * span_x:.1f},{y0 - p * span_y:.1f}"

    body = _axes("recall", "precision")
    for tick in (0, 0.25, 0.5, 0.75, 1):
        body.append(_text(x0 + tick * span_x, y0 + 14, f"{tick:g}"))
        body.append(_text(x0 - 6, y0 - tick * span_y + 4, f"{tick:g}", anchor="end"))
    if recall:
        # In threshold order, as the curve was recorded: sorting by recall would zig-zag.
        body.append(
            f'<polyline class="series" fill="none" stroke="{LINE_COLOUR}" stroke-width="2" '
            f'points="{" ".join(point(r, p) for r, p in zip(recall, precision, strict=True))}"/>'
        )
    if at is not None:
        r, p = at
        cx, cy = point(r, p).split(",")
        body.append(f'<circle cx="{cx}" cy="{cy}" r="5" fill="{FRAUD_COLOUR}"/>')
        anchor = "end" if r > 0.5 else "start"
        body.append(
            _text(
                float(cx),
                float(cy) + (16 if p > 0.5 else -9),
                f"threshold: recall {r:.2f}, precision {p:.2f}",
                anchor=anchor,
            )
        )
    return _svg("Precision-recall curve on the hold-out", body)


def histogram(
    edges: Sequence[float],
    series: dict[str, Sequence[int]],
    colours: dict[str, str],
    *,
    title: str = "Score distribution on the hold-out",
) -> SafeString:
    """Counts per score bin, one bar per series, on a log scale so that the rare frauds show."""
    x0, y0 = LEFT, HEIGHT - BOTTOM
    span_x, span_y = WIDTH - RIGHT - LEFT, HEIGHT - BOTTOM - TOP
    bins = len(edges) - 1
    top = max((c for counts in series.values() for c in counts), default=0)
    top_log = math.log10(top + 1) or 1.0
    slot = span_x / max(bins, 1)
    bar = slot / (len(series) + 1)
    body = _axes("fraud probability", "rows (log scale)")
    for i in range(0, bins + 1, max(1, bins // 4)):
        body.append(_text(x0 + i * slot, y0 + 14, f"{edges[i]:g}"))
    for power in range(int(top_log) + 1):
        y = y0 - power / top_log * span_y
        body.append(_text(x0 - 6, y + 4, f"{10**power:,}", anchor="end"))
    for s, (name, counts) in enumerate(series.items()):
        for i, count in enumerate(counts):
            if count:
                h = math.log10(count + 1) / top_log * span_y
                body.append(
                    f'<rect class="bar" x="{x0 + i * slot + (s + 0.5) * bar:.1f}" y="{y0 - h:.1f}" width="{bar:.1f}" '
                    f'height="{h:.1f}" fill="{colours[name]}"><title>{escape(name)} {edges[i]:g}-{edges[i + 1]:g}: '
                    f"{count:,}</title></rect>"
                )
    for s, name in enumerate(series):
        body.append(f'<rect x="{x0 + 10 + s * 110}" y="8" width="10" height="10" fill="{colours[name]}"/>')
        body.append(_text(x0 + 24 + s * 110, 17, name, anchor="start"))
    return _svg(title, body)


def confusion_matrix(*, tn: int, fp: int, fn: int, tp: int) -> SafeString:
    """The 2x2 matrix at the version's threshold, each cell shaded by its share of its row."""
    cell, x0, y0 = 110, 120, 40
    rows = [("legitimate", tn, fp), ("fraud", fn, tp)]
    body = [
        _text(x0 + cell, 16, "predicted"),
        _text(x0 + cell / 2, 34, "legitimate"),
        _text(x0 + 1.5 * cell, 34, "fraud"),
        _text(22, y0 + cell, "actual", extra=f'transform="rotate(-90 22 {y0 + cell})"'),
    ]
    for r, (name, negative, positive) in enumerate(rows):
        total = negative + positive or 1
        body.append(_text(x0 - 8, y0 + r * cell + cell / 2 + 4, name, anchor="end"))
        for c, count in enumerate((negative, positive)):
            colour = LEGIT_COLOUR if r == c else FRAUD_COLOUR
            opacity = 0.15 + 0.75 * count / total
            x, y = x0 + c * cell, y0 + r * cell
            body.append(
                f'<rect class="cell" x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{colour}" '
                f'fill-opacity="{opacity:.2f}" stroke="#fff"/>'
            )
            body.append(_text(x + cell / 2, y + cell / 2 + 5, f"{count:,}", extra='font-size="16" font-weight="600"'))
    return _svg("Confusion matrix on the hold-out", body, width=x0 + 2 * cell + 20, height=y0 + 2 * cell + 10)


def bars(items: Sequence[tuple[str, float]], *, title: str, signed: bool) -> SafeString:
    """Horizontal bars, one per (label, value); signed ones grow from a centre line, fraud right."""
    row, label_width = 22, 110
    width = WIDTH
    height = TOP + row * max(len(items), 1) + 10
    span = width - label_width - RIGHT
    largest = max((abs(v) for _, v in items), default=0) or 1.0
    origin = label_width + (span / 2 if signed else 0)
    scale = (span / 2 if signed else span) / largest
    body = []
    if signed:
        body.append(f'<line x1="{origin}" y1="{TOP - 6}" x2="{origin}" y2="{height - 6}" stroke="#555"/>')
        body.append(_text(origin - 6, TOP - 10, "← legitimate", anchor="end"))
        body.append(_text(origin + 6, TOP - 10, "fraud →", anchor="start"))
    for i, (label, value) in enumerate(items):
        y = TOP + i * row
        length = abs(value) * scale
        x = origin - length if value < 0 else origin
        colour = LEGIT_COLOUR if signed and value < 0 else (FRAUD_COLOUR if signed else LINE_COLOUR)
        body.append(_text(label_width - 8, y + 14, label, anchor="end"))
        body.append(
            f'<rect class="bar" x="{x:.1f}" y="{y + 3}" width="{max(length, 1):.1f}" height="{row - 6}" '
            f'fill="{colour}"><title>{escape(label)}: {value:+.4g}</title></rect>'
        )
    return _svg(title, body, width=width, height=height)


def daily_counts(
    days: Sequence[str], series: dict[str, Sequence[int]], colours: dict[str, str], *, title: str
) -> SafeString:
    """Counts per day, one bar per series, on a linear scale; at most the last 60 days."""
    days, series = list(days)[-60:], {name: list(counts)[-60:] for name, counts in series.items()}
    x0, y0 = LEFT, HEIGHT - BOTTOM
    span_x, span_y = WIDTH - RIGHT - LEFT, HEIGHT - BOTTOM - TOP
    top = max((c for counts in series.values() for c in counts), default=0) or 1
    slot = span_x / max(len(days), 1)
    bar = slot / (len(series) + 1)
    body = _axes("day (UTC)", "alerts")
    for i in range(0, len(days), max(1, len(days) // 4)):
        body.append(_text(x0 + (i + 0.5) * slot, y0 + 14, days[i][5:]))
    for fraction in (0.5, 1.0):
        body.append(_text(x0 - 6, y0 - fraction * span_y + 4, f"{top * fraction:,.0f}", anchor="end"))
    for s, (name, counts) in enumerate(series.items()):
        for i, count in enumerate(counts):
            h = count / top * span_y
            body.append(
                f'<rect class="bar" x="{x0 + i * slot + (s + 0.5) * bar:.1f}" y="{y0 - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colours[name]}">'
                f"<title>{escape(name)} {escape(days[i])}: {count:,}</title></rect>"
            )
    for s, name in enumerate(series):
        body.append(f'<rect x="{x0 + 10 + s * 150}" y="8" width="10" height="10" fill="{colours[name]}"/>')
        body.append(_text(x0 + 24 + s * 150, 17, name, anchor="start"))
    return _svg(title, body)


SERIES_COLOURS = (LINE_COLOUR, "#8e44ad", FRAUD_COLOUR, LEGIT_COLOUR, "#b7950b")


def lines(labels: Sequence[str], series: dict[str, Sequence[float | None]], *, title: str, y_label: str) -> SafeString:
    """One line per series over the same x labels (time windows); a None is a gap."""
    x0, y0 = LEFT, HEIGHT - BOTTOM
    span_x, span_y = WIDTH - RIGHT - LEFT, HEIGHT - BOTTOM - TOP
    known = [v for values in series.values() for v in values if v is not None]
    top = max(known, default=0.0) or 1.0
    step = span_x / max(len(labels) - 1, 1)
    body = _axes("window", y_label)
    for i in range(0, len(labels), max(1, len(labels) // 4)):
        # The first and last labels are anchored inwards, or they would run off the drawing.
        anchor = "start" if i == 0 else "end" if i == len(labels) - 1 else "middle"
        body.append(_text(x0 + i * step, y0 + 14, labels[i], anchor=anchor))
    for fraction in (0.5, 1.0):
        body.append(_text(x0 - 6, y0 - fraction * span_y + 4, f"{top * fraction:.3g}", anchor="end"))
    for s, (name, values) in enumerate(series.items()):
        colour = SERIES_COLOURS[s % len(SERIES_COLOURS)]
        points, segments = [], []
        for i, value in enumerate(values):
            if value is None:
                segments.append(points)
                points = []
                continue
            points.append(f"{x0 + i * step:.1f},{y0 - value / top * span_y:.1f}")
        segments.append(points)
        for segment in segments:
            if len(segment) == 1:
                x, y = segment[0].split(",")
                body.append(f'<circle cx="{x}" cy="{y}" r="2" fill="{colour}"/>')
            elif segment:
                body.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{" ".join(segment)}"/>'
                )
        body.append(f'<rect x="{x0 + 10 + s * 110}" y="8" width="10" height="10" fill="{colour}"/>')
        body.append(_text(x0 + 24 + s * 110, 17, name, anchor="start"))
    return _svg(title, body)
