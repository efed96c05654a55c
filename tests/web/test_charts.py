"""The admin charts' arithmetic: bars scale to the busiest day; no data draws no bar."""

from datetime import date, timedelta

from dropp.web.admin.charts import HEIGHT, bar_chart

DAYS = [date(2026, 11, 1) + timedelta(days=n) for n in range(3)]


def test_bars_scale_to_the_busiest_day_and_say_their_values() -> None:
    chart = bar_chart("Uploads per day", DAYS, [1, 4, 2])

    heights = [bar.height for bar in chart.bars]
    assert heights[1] == max(heights)
    assert heights[0] * 4 == heights[1] == heights[2] * 2
    assert all(bar.y + bar.height <= HEIGHT - chart.axis for bar in chart.bars)
    assert [bar.label for bar in chart.bars] == ["2026-11-01: 1", "2026-11-02: 4", "2026-11-03: 2"]
    assert chart.summary == "Uploads per day: 7 in 3 days, most on 2026-11-02 (4)"


def test_no_uploads_at_all_draw_flat_bars_and_say_none() -> None:
    chart = bar_chart("Uploads per day", DAYS, [0, 0, 0])

    assert [bar.height for bar in chart.bars] == [0, 0, 0]
    assert chart.summary == "Uploads per day: 0 in 3 days, none"
