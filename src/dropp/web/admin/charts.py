"""Bar charts of the admin statistics, drawn as SVG on the server: no script, no image
request, and text a screen reader can read."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

WIDTH = 600
HEIGHT = 160
AXIS = 18  # room under the bars for the first and last dates
TOP = 16  # room over them for the highest value

Shown = Callable[[int], str]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass(frozen=True)
class Chart:
    title: str
    summary: str
    bars: list[Bar]
    peak: str
    first: str
    last: str
    width: int = WIDTH
    height: int = HEIGHT
    axis: int = AXIS


def bar_chart(title: str, days: Sequence[date], values: Sequence[int], shown: Shown = str) -> Chart:
    """One bar per day, scaled to the highest; each bar's label says its day and value."""
    peak = max(values, default=0)
    slot = WIDTH / max(len(values), 1)
    room = HEIGHT - AXIS - TOP
    bars = [
        Bar(
            x=index * slot + slot * 0.15,
            y=TOP + room - (room * value / peak if peak else 0),
            width=slot * 0.7,
            height=room * value / peak if peak else 0,
            label=f"{day.isoformat()}: {shown(value)}",
        )
        for index, (day, value) in enumerate(zip(days, values, strict=True))
    ]
    total = sum(values)
    busiest = days[values.index(peak)].isoformat() if peak else None
    summary = f"{title}: {shown(total)} in {len(values)} days" + (
        f", most on {busiest} ({shown(peak)})" if busiest else ", none"
    )
    return Chart(
        title=title,
        summary=summary,
        bars=bars,
        peak=shown(peak),
        first=days[0].isoformat() if days else "",
        last=days[-1].isoformat() if days else "",
    )
