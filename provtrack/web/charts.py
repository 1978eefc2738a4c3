"""Charts of the metrics page, drawn on the server as SVG: horizontal bars (cycle time, fallout rate),
columns (throughput per day) and lines (open orders by state over time). Each function computes the
geometry in a fixed viewBox; the template draws it, with a table of the same figures beside it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 640
LABEL = 190
ROW = 26
PLOT_HEIGHT = 180
PALETTE = ("#2563eb", "#f59e0b", "#dc2626", "#059669", "#7c3aed", "#0891b2", "#be185d", "#4b5563")


@dataclass(frozen=True, slots=True)
class HBar:
    y: float
    x: float
    width: float
    series: int
    title: str


@dataclass(frozen=True, slots=True)
class HBarRow:
    label: str
    y: float
    bars: list[HBar]


@dataclass(frozen=True, slots=True)
class HBarChart:
    width: int
    height: float
    label_width: int
    rows: list[HBarRow]
    series: list[str]
    colours: tuple[str, ...]
    axis: list[tuple[float, str]]


def hbars(
    rows: Sequence[tuple[str, Sequence[float]]],
    series: Sequence[str],
    *,
    unit: str = "",
    fmt: str = "{:.0f}",
    scale_max: float | None = None,
) -> HBarChart:
    """One row per label, one bar per series value, on a shared scale starting at 0."""
    top = max([v for _, values in rows for v in values] + [scale_max or 0.0, 1e-9])
    plot = WIDTH - LABEL - 60
    per_series = (ROW - 8) / max(len(series), 1)
    out = []
    for i, (label, values) in enumerate(rows):
        y = 20 + i * ROW
        bars = [
            HBar(
                round(y + 4 + s * per_series, 1),
                LABEL,
                round(max(value / top * plot, 1.0), 1),
                s,
                f"{label} {series[s]}: {fmt.format(value)}{unit}",
            )
            for s, value in enumerate(values)
        ]
        out.append(HBarRow(label, y, bars))
    axis = [(LABEL + plot * f, fmt.format(top * f) + unit) for f in (0, 0.5, 1)]
    return HBarChart(WIDTH, 28 + len(rows) * ROW, LABEL, out, list(series), PALETTE, axis)


@dataclass(frozen=True, slots=True)
class Column:
    x: float
    y: float
    width: float
    height: float
    label: str
    title: str


@dataclass(frozen=True, slots=True)
class ColumnChart:
    width: int
    height: int
    columns: list[Column]
    baseline: float
    top_label: str
    labels: list[tuple[float, str]]


def columns(points: Sequence[tuple[str, float]], *, what: str) -> ColumnChart:
    """Vertical columns, one per point (days), labelled below every few columns."""
    top = max([v for _, v in points] + [1.0])
    plot_width = WIDTH - 50
    step = plot_width / max(len(points), 1)
    base = 20 + PLOT_HEIGHT
    out = []
    for i, (label, value) in enumerate(points):
        h = round(value / top * PLOT_HEIGHT, 1)
        out.append(
            Column(
                round(40 + i * step + step * 0.1, 1),
                round(base - h, 1),
                round(max(step * 0.8, 1), 1),
                h,
                label,
                f"{label}: {value:.0f} {what}",
            )
        )
    every = max(1, len(points) // 8)
    labels = [(round(40 + i * step + step / 2, 1), p[0][5:]) for i, p in enumerate(points) if i % every == 0]
    return ColumnChart(WIDTH, int(base + 24), out, base, f"{top:.0f}", labels)


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    colour: str
    points: str  # SVG polyline points
    last: float


@dataclass(frozen=True, slots=True)
class LineChart:
    width: int
    height: int
    lines: list[Line]
    baseline: float
    top_label: str
    labels: list[tuple[float, str]]


def lines(times: Sequence[str], series: dict[str, Sequence[float]]) -> LineChart:
    """One line per series over shared instants (ISO text, labelled by day and hour)."""
    top = max([v for values in series.values() for v in values] + [1.0])
    plot_width = WIDTH - 60
    step = plot_width / max(len(times) - 1, 1)
    base = 20 + PLOT_HEIGHT
    out = []
    for n, (name, values) in enumerate(series.items()):
        points = " ".join(
            f"{40 + i * step:.1f},{base - v / top * PLOT_HEIGHT:.1f}" for i, v in enumerate(values)
        )
        out.append(Line(name, PALETTE[n % len(PALETTE)], points, values[-1] if values else 0))
    every = max(1, len(times) // 6)
    labels = [
        (round(40 + i * step, 1), t[5:16].replace("T", " ")) for i, t in enumerate(times) if i % every == 0
    ]
    return LineChart(WIDTH, int(base + 24), out, base, f"{top:.0f}", labels)
