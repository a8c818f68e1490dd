"""Server-side SVG bar chart of the amount collected per day, one chart per currency (never two currencies on one
axis). Plain SVG markup, no JavaScript, no external assets. Geometry in integer arithmetic (no float near an
amount): bar height = amount × plot height // the period's largest day."""

from __future__ import annotations

from datetime import date, timedelta
from xml.sax.saxutils import escape

from paytrust.money import format_display

WIDTH = 760
HEIGHT = 220
LEFT = 110  # room for the y-axis labels
RIGHT = 10
TOP = 12
BOTTOM = 34
PLOT_W = WIDTH - LEFT - RIGHT
PLOT_H = HEIGHT - TOP - BOTTOM


def _attr(value: object) -> str:
    return escape(str(value), {'"': "&quot;"})


def daily_bar_chart(*, currency: str, days: list[date], values: dict[date, int]) -> str:
    """An SVG (string) with one bar per day in `days` (missing days are 0), a y axis from 0 to the largest day and
    the first, middle and last dates on the x axis. Each bar has a <title> with its day and amount."""
    count = max(len(days), 1)
    peak = max([values.get(day, 0) for day in days] + [0])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="daily-chart" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{_attr(currency)} collected per day">',
        f"<title>{escape(currency)} collected per day</title>",
        f'<line x1="{LEFT}" y1="{TOP + PLOT_H}" x2="{LEFT + PLOT_W}" y2="{TOP + PLOT_H}" stroke="#888"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + PLOT_H}" stroke="#888"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end" font-size="11">'
        f"{escape(format_display(peak, currency))}</text>",
        f'<text x="{LEFT - 6}" y="{TOP + PLOT_H}" text-anchor="end" font-size="11">'
        f"{escape(format_display(0, currency))}</text>",
    ]
    for index, day in enumerate(days):
        amount = values.get(day, 0)
        x0 = LEFT + index * PLOT_W // count
        x1 = LEFT + (index + 1) * PLOT_W // count
        height = amount * PLOT_H // peak if peak else 0
        if amount and height == 0:
            height = 1  # a day with money is never invisible
        width = max(x1 - x0 - (1 if x1 - x0 > 2 else 0), 1)
        parts.append(
            f'<rect x="{x0}" y="{TOP + PLOT_H - height}" width="{width}" height="{height}" fill="#417690">'
            f"<title>{escape(day.isoformat())}: {escape(format_display(amount, currency))}</title></rect>"
        )
    if days:
        for index in sorted({0, len(days) // 2, len(days) - 1}):
            x = LEFT + index * PLOT_W // count + (PLOT_W // count) // 2
            anchor = "start" if index == 0 else ("end" if index == len(days) - 1 and index else "middle")
            parts.append(
                f'<text x="{x}" y="{HEIGHT - 12}" text-anchor="{anchor}" font-size="11">'
                f"{escape(days[index].isoformat())}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def period_days(first: date, last: date) -> list[date]:
    """Every date from first to last inclusive."""
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
