"""The report's charts as Vega-Lite (altair) rendered to SVG by vl-convert: the drift over the
last nights, and the funnel. Both libraries are imported here, when a chart is drawn, never when
the code location loads (benchmarks/bench_report.py measures what they cost)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

COLORS = {"open": "#4f6bed", "new": "#e8833a", "resolved": "#3aa76d", "bar": "#7b8ce0"}
FONT = "Helvetica, Arial, sans-serif"
WIDTH = 560


def trend_svg(points: Sequence[Any], label: Callable[[datetime], str] | None = None) -> str:
    """Two panels over the last runs: open findings (line), and below it the findings each run
    opened (orange, up) and resolved (green, down)."""
    import altair as alt

    label = label or (lambda moment: moment.strftime("%m-%d %H:%M"))
    order = [label(p.run_at) for p in points]
    rows = [
        {"run": label(p.run_at), "open": p.open, "new": p.new, "resolved": -p.resolved, "gone": p.resolved}
        for p in points
    ]
    data = alt.Data(values=rows)
    # day over clock, as two label lines; the upper panel shares the lower one's axis
    axis = alt.Axis(labelAngle=0, labelExpr="split(datum.label, ' ')", labelPadding=4)
    x = alt.X("run:O", sort=order, title=None, axis=axis)
    top_x = alt.X("run:O", sort=order, title=None, axis=alt.Axis(labels=False, ticks=False))
    line = (
        alt.Chart(data)
        .mark_line(point=True, color=COLORS["open"], strokeWidth=2.5)
        .encode(x=top_x, y=alt.Y("open:Q", title="open"))
    )
    labels = line.mark_text(dy=-10, fontWeight="bold", color="#2b2f3a").encode(
        text=alt.Text("open:Q", format=",")
    )
    bar = min(22.0, WIDTH / max(1, len(rows)) / 2)
    scale = alt.Scale(nice=True, padding=14)
    opened = (
        alt.Chart(data)
        .mark_bar(color=COLORS["new"], size=bar)
        .encode(x=x, y=alt.Y("new:Q", title="new / resolved", scale=scale))
    )
    resolved = alt.Chart(data).mark_bar(color=COLORS["resolved"], size=bar).encode(x=x, y="resolved:Q")
    counts = (
        alt.Chart(data)
        .transform_filter("datum.new > 0")
        .mark_text(dy=-6, fontSize=10)
        .encode(x=x, y="new:Q", text=alt.Text("new:Q", format="+,"))
    )
    gone = (
        alt.Chart(data)
        .transform_filter("datum.gone > 0")
        .mark_text(dy=10, fontSize=10)
        .encode(x=x, y="resolved:Q", text=alt.Text("resolved:Q", format=","))
    )
    chart = alt.vconcat(
        (line + labels).properties(width=WIDTH, height=130),
        (opened + resolved + counts + gone).properties(width=WIDTH, height=110),
        title="Drift: open findings per night, and what each night changed",
    )
    return _svg(chart)


def funnel_svg(stages: Sequence[tuple[str, int]]) -> str:
    """Horizontal funnel bars, each with its count and its conversion from the stage before."""
    import altair as alt

    rows, previous = [], None
    for name, count in stages:
        note = f"{count:,}" + (f"  ({count / previous:.0%} of previous)" if previous else "")
        rows.append({"stage": name, "count": count, "note": note})
        previous = count or None
    data = alt.Data(values=rows)
    y = alt.Y("stage:N", sort=[name for name, _ in stages], title=None)
    bars = alt.Chart(data).mark_bar(color=COLORS["bar"]).encode(x=alt.X("count:Q", title=None), y=y)
    notes = bars.mark_text(align="left", dx=6, color="#2b2f3a").encode(text="note:N")
    chart = (bars + notes).properties(
        width=WIDTH - 120, height=34 * max(1, len(rows)), title="Funnel: all channels, all months"
    )
    return _svg(chart)


def _svg(chart: Any) -> str:
    import vl_convert

    spec = chart.configure(font=FONT, background="white").configure_view(stroke=None).to_dict()
    return str(vl_convert.vegalite_to_svg(spec))
