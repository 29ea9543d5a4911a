"""Charts of a journey report, as SVG or PNG bytes (matplotlib, the Agg backend).

No pyplot and no global figure state: each chart is its own ``Figure`` drawn on its own Agg
canvas, so charts can be drawn from any thread (the wallboard draws today's); only the saving
is one at a time (it sets matplotlib's SVG settings).  An SVG of the
same report is the same bytes each time (fixed hash salt, no date in the metadata); its
texts stay text (node names can be searched and read aloud).
"""

from __future__ import annotations

import datetime as dt
import io
import threading
from typing import Literal
from zoneinfo import ZoneInfo

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ivr.analytics.report import Report

__all__ = ["Format", "funnel_chart", "wait_by_hour_chart"]

Format = Literal["svg", "png"]

_REACHED = "#c9d3df"
_EXITS = (("hangup", "hang-up", "#d9534f"), ("timeout", "timeout", "#f0ad4e"),
          ("invalid", "invalid key", "#8e6bbf"), ("agent", "to an agent", "#3c9d5d"),
          ("unanswered", "queued, no agent", "#9fd3ae"))


# The SVG settings are matplotlib's global ones, set around each save: one save at a time.
_SAVING = threading.Lock()


def _save(fig: Figure, fmt: Format) -> bytes:
    if fmt not in ("svg", "png"):
        raise ValueError(f"a chart is svg or png, not {fmt!r}")
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    with _SAVING, matplotlib.rc_context({"svg.hashsalt": "ivr", "svg.fonttype": "none"}):
        fig.savefig(buf, format=fmt, dpi=100,
                    metadata={"Date": None} if fmt == "svg" else {"Software": None})
    return buf.getvalue()


def _title(report: Report, what: str) -> str:
    first = report.since.astimezone(_tz(report)).date()
    last = (report.until - _TICK).astimezone(_tz(report)).date()
    days = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
    return f"{what}: flow {report.flow}, {days}"


def _tz(report: Report) -> dt.tzinfo:
    try:
        return ZoneInfo(report.timezone)
    except (ValueError, LookupError):
        return dt.timezone.utc


_TICK = dt.timedelta(microseconds=1)


def funnel_chart(report: Report, fmt: Format = "svg") -> bytes:
    """One bar per node of the funnel (in the report's order, the first at the top): the calls
    that reached it, and over it those that left it by hang-up, timeout, invalid key, to an
    agent and to a queue where no agent answered."""
    nodes = report.funnel
    fig = Figure(figsize=(9, max(2.5, 0.32 * len(nodes) + 1.4)), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(_title(report, "Funnel"), loc="left", fontsize=11)
    if not nodes:
        ax.text(0.5, 0.5, "no calls", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return _save(fig, fmt)
    ys = list(range(len(nodes)))
    ax.barh(ys, [s.reached for s in nodes], color=_REACHED, label="reached", height=0.8)
    left = [0] * len(nodes)
    for field, label, color in _EXITS:
        widths = [s.queued - s.agent if field == "unanswered" else getattr(s, field) for s in nodes]
        ax.barh(ys, widths, left=left, color=color, label=label, height=0.5)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_yticks(ys, [s.node for s in nodes], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("calls")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, fmt)


def wait_by_hour_chart(report: Report, fmt: Format = "svg") -> bytes:
    """The wait in line by the hour of the day the calls started (the center's time): the mean
    as bars, the median and the 90th percentile as lines, the calls that waited on the right."""
    hours = list(range(24))
    waits = report.wait_by_hour
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(_title(report, f"Wait in line by hour ({report.timezone})"), loc="left", fontsize=11)
    ax.bar(hours, [w.mean or 0 for w in waits], color="#5b8def", label="mean")
    ax.plot(hours, [w.median if w.median is not None else float("nan") for w in waits],
            color="#222222", marker=".", label="median")
    ax.plot(hours, [w.p90 if w.p90 is not None else float("nan") for w in waits],
            color="#d9534f", marker=".", linestyle="--", label="90th percentile")
    ax.set_xticks(hours, [f"{h:02d}" for h in hours], fontsize=8)
    ax.set_xlim(-0.6, 23.6)
    ax.set_xlabel("hour of the day")
    ax.set_ylabel("seconds")
    ax.grid(axis="y", alpha=0.3)
    calls = ax.twinx()
    calls.plot(hours, [w.count for w in waits], color="#888888", linewidth=1, label="calls that waited")
    calls.set_ylabel("calls", color="#888888")
    calls.set_ylim(bottom=0)
    calls.yaxis.set_major_locator(MaxNLocator(integer=True))
    lines = ax.get_legend_handles_labels()
    more = calls.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=8)
    if not any(w.count for w in waits):
        ax.text(0.5, 0.5, "nobody waited", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, fmt)
