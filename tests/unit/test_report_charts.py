"""The report's charts: what a reader of the SVG and the PNG gets."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest
from matplotlib.image import imread

from ivr.analytics.charts import funnel_chart, wait_by_hour_chart
from ivr.analytics.report import ReportBuilder
from test_report import SEOUL, SINCE, UNTIL, day_report

SVG = "{http://www.w3.org/2000/svg}"


def texts(svg: bytes) -> list[str]:
    return [t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text")]


def test_the_funnel_names_every_node_and_every_way_out():
    report = day_report()
    svg = funnel_chart(report)
    shown = texts(svg)
    assert {s.node for s in report.funnel} <= set(shown)
    assert {"reached", "hang-up", "timeout", "invalid key", "to an agent", "queued, no agent"} <= set(shown)
    assert "Funnel: flow main, 2026-11-02" in shown
    assert svg == funnel_chart(report)                  # the same bytes for the same report


def test_the_wait_chart_has_every_hour_and_its_legend():
    shown = texts(wait_by_hour_chart(day_report()))
    assert {f"{h:02d}" for h in range(24)} <= set(shown)
    assert {"mean", "median", "90th percentile", "calls that waited"} <= set(shown)
    assert "Wait in line by hour (Asia/Seoul): flow main, 2026-11-02" in shown


@pytest.mark.parametrize("chart", [funnel_chart, wait_by_hour_chart])
def test_png_is_an_image(chart):
    png = chart(day_report(), "png")
    image = imread(io.BytesIO(png), format="png")
    assert image.shape[1] == 900 and image.shape[0] >= 250


def test_charts_of_an_empty_report_say_so():
    empty = ReportBuilder("main", SINCE, UNTIL, SEOUL).report()
    assert "no calls" in texts(funnel_chart(empty))
    assert "nobody waited" in texts(wait_by_hour_chart(empty))


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="svg or png"):
        funnel_chart(day_report(), "jpeg")  # type: ignore[arg-type]
