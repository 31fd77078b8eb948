"""The metrics page's statistics and its server-rendered chart (no database)."""

from __future__ import annotations

import datetime as dt

from verify_service.leads.chart import bar_chart
from verify_service.leads.metrics import median, minutes, percentile

M = dt.timedelta(minutes=1)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.9) is None
    assert percentile([3 * M], 0.9) == 3 * M
    assert percentile([5 * M, 1 * M, 4 * M, 2 * M, 3 * M], 0.9) == 5 * M   # rank ceil(4.5) = 5
    assert percentile([i * M for i in range(1, 21)], 0.9) == 18 * M        # rank 18 of 20
    assert percentile([i * M for i in range(1, 21)], 0.5) == 10 * M


def test_median_of_an_even_count_is_the_mean_of_the_middle_two() -> None:
    assert median([]) is None
    assert median([4 * M, 1 * M, 2 * M, 10 * M]) == 3 * M


def test_durations_read_as_people_say_them() -> None:
    assert [minutes(v) for v in (None, dt.timedelta(seconds=42), 5 * M, 5.5 * M, 75 * M)] == [
        "–", "42 s", "5 min", "5 min 30 s", "1 h 15 min"]


def test_bar_chart_is_an_accessible_svg_without_styles_or_scripts() -> None:
    svg = str(bar_chart([("01 Nov", 0), ("02 Nov", 4), ("03 <b>", None), ("04 Nov", 2)], chart_id="c1",
                        title="Decisions per day", description="See the table.", unit="calls"))
    assert svg.startswith("<svg") and 'role="img"' in svg and 'aria-labelledby="c1-title c1-desc"' in svg
    assert '<title id="c1-title">Decisions per day</title>' in svg and "style" not in svg and "<script" not in svg
    assert svg.count("<rect") == 4 and "02 Nov: 4 calls" in svg and "03 &lt;b&gt;: no data" in svg
    heights = [float(part.split('"')[0]) for part in svg.split('height="')[1:]]
    assert heights[1] == max(heights) and heights[3] == heights[1] / 2 and heights[0] == heights[2] == 1.0
