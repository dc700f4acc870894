"""Formatting for people: currency, percent, scores, dates and trend arrows.

Pure functions (no Streamlit). ``None`` and NaN print as an em dash so that a missing value is
visible, never a misleading zero.
"""

from __future__ import annotations

import math
from datetime import date, datetime

DASH = "—"
CURRENCY_SYMBOL = "$"


def _missing(x: object) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def currency(x: float | int | None, *, compact: bool = True, symbol: str = CURRENCY_SYMBOL) -> str:
    """``1234567`` -> ``$1.2M`` (compact) or ``$1,234,567``. Negative amounts keep their sign
    in front of the symbol: ``-$3.4K``."""
    if _missing(x):
        return DASH
    assert x is not None
    sign = "-" if x < 0 else ""
    v = abs(float(x))
    if not compact:
        return f"{sign}{symbol}{v:,.0f}"
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if v >= limit:
            scaled = v / limit
            text = f"{scaled:.1f}".removesuffix(".0") if scaled < 100 else f"{scaled:.0f}"
            return f"{sign}{symbol}{text}{suffix}"
    return f"{sign}{symbol}{v:,.0f}"


def percent(x: float | None, *, digits: int = 1, share: bool = True) -> str:
    """A share 0-1 (``share=True``) or a number already in percent -> ``12.3%``."""
    if _missing(x):
        return DASH
    assert x is not None
    v = float(x) * 100 if share else float(x)
    return f"{v:.{digits}f}%"


def score(x: float | None, *, digits: int = 1) -> str:
    """A 0-100 score with one decimal: ``72.4``."""
    if _missing(x):
        return DASH
    assert x is not None
    return f"{float(x):.{digits}f}"


def signed(x: float | None, *, digits: int = 1, unit: str = "") -> str:
    """A change with its sign: ``+3.2``, ``-0.5``, ``±0.0``."""
    if _missing(x):
        return DASH
    assert x is not None
    v = round(float(x), digits)
    if v == 0:
        return f"±{0:.{digits}f}{unit}"
    return f"{v:+.{digits}f}{unit}"


def number(x: float | int | None, *, digits: int = 0) -> str:
    """``12345.6`` -> ``12,346``."""
    if _missing(x):
        return DASH
    assert x is not None
    return f"{float(x):,.{digits}f}"


def day(d: date | datetime | str | None) -> str:
    """``2026-10-05`` -> ``5 Oct 2026``."""
    if d is None or d == "":
        return DASH
    if isinstance(d, str):
        d = date.fromisoformat(d[:10])
    return f"{d.day} {d.strftime('%b %Y')}"


def timestamp(t: datetime | None) -> str:
    """``2026-10-05 14:03`` (minutes; the store keeps seconds)."""
    if t is None:
        return DASH
    return t.strftime("%Y-%m-%d %H:%M")


FLAT_BAND = 1.0  # points: a smaller change is "flat"


def arrow(change: float | None, *, flat: float = FLAT_BAND) -> str:
    """Trend arrow of a score change: ``▲`` up, ``▼`` down, ``▶`` flat (|change| < ``flat``
    points), an em dash when unknown."""
    if _missing(change):
        return DASH
    assert change is not None
    if change >= flat:
        return "▲"
    if change <= -flat:
        return "▼"
    return "▶"


def trend(change: float | None, *, flat: float = FLAT_BAND) -> str:
    """``▲ +3.2`` / ``▼ -4.0`` / ``▶ +0.4``."""
    if _missing(change):
        return DASH
    return f"{arrow(change, flat=flat)} {signed(change)}"


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 account``, ``3 accounts``."""
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


_MD_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$:")


def md(text: object) -> str:
    """User or data text made literal inside Streamlit markdown (headers, captions, alerts,
    button labels): every markdown character is backslash-escaped, so a name like
    ``[click](http://x)`` or ``**x**`` shows as typed. HTML is never enabled anyway."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in str(text))
