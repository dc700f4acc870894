"""Formats for people: currency, percent, scores, dates, arrows."""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest

from ui import format as fmt


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "$0"),
        (999, "$999"),
        (1_000, "$1K"),
        (1_234, "$1.2K"),
        (45_000, "$45K"),
        (1_234_567, "$1.2M"),
        (123_456_789, "$123M"),
        (2_500_000_000, "$2.5B"),
        (-3_400, "-$3.4K"),
        (None, "—"),
        (math.nan, "—"),
    ],
)
def test_currency_compact(value: float | None, expected: str) -> None:
    assert fmt.currency(value) == expected


def test_currency_in_full() -> None:
    assert fmt.currency(1_234_567.4, compact=False) == "$1,234,567"


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        (0.123, {}, "12.3%"),
        (1, {}, "100.0%"),
        (0.5, {"digits": 0}, "50%"),
        (12.5, {"share": False}, "12.5%"),
        (None, {}, "—"),
    ],
)
def test_percent(value: float | None, kwargs: dict, expected: str) -> None:
    assert fmt.percent(value, **kwargs) == expected


def test_scores_and_changes() -> None:
    assert fmt.score(72.44) == "72.4"
    assert fmt.score(None) == "—"
    assert fmt.signed(3.21) == "+3.2"
    assert fmt.signed(-0.5) == "-0.5"
    assert fmt.signed(0.04) == "±0.0"
    assert fmt.number(12345.6) == "12,346"


@pytest.mark.parametrize(
    ("change", "expected"),
    [(3.0, "▲"), (1.0, "▲"), (0.99, "▶"), (-0.99, "▶"), (-1.0, "▼"), (None, "—")],
)
def test_arrow_has_a_flat_band(change: float | None, expected: str) -> None:
    assert fmt.arrow(change) == expected


def test_trend_text() -> None:
    assert fmt.trend(-4.0) == "▼ -4.0"


def test_dates() -> None:
    assert fmt.day(date(2026, 10, 5)) == "5 Oct 2026"
    assert fmt.day("2026-01-31") == "31 Jan 2026"
    assert fmt.day(None) == "—"
    assert fmt.timestamp(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02 03:04"


def test_plural() -> None:
    assert fmt.plural(1, "account") == "1 account"
    assert fmt.plural(2_000, "account") == "2,000 accounts"
    assert fmt.plural(2, "entry", "entries") == "2 entries"


def test_markdown_escaping_keeps_text_literal() -> None:
    assert fmt.md("**bold** [x](http://e.vil) :material/home: <b>") == (
        r"\*\*bold\*\* \[x\]\(http\://e\.vil\) \:material/home\: \<b\>"
    )
    assert fmt.md("Acme Ltd") == "Acme Ltd"
