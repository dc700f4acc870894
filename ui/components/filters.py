"""The sidebar filters shared by every page.

``show(options)`` renders them (app.py calls it once per run, in the sidebar) and returns a
:class:`Filters`; pages call :func:`current` to read the same filters without rendering them.
Each widget owns its session-state key (``filter_*``): the default is set once, a value that is
no longer an option (the data changed) is dropped quietly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

import polars as pl
import streamlit as st

from ui import format as fmt
from ui import state


class RenewalWindow(StrEnum):
    ANY = "any"
    DAYS_90 = "90"
    DAYS_180 = "180"
    DAYS_365 = "365"
    PAST = "past"

    @property
    def label(self) -> str:
        return {
            "any": "Any time",
            "90": "Next 90 days",
            "180": "Next two quarters",
            "365": "Next 12 months",
            "past": "Renewal date passed",
        }[self.value]


# The multiselect filters: (session key, account column, label).
ATTRIBUTE_FILTERS: tuple[tuple[str, str, str], ...] = (
    ("filter_segment", "segment", "Segment"),
    ("filter_region", "region", "Region"),
    ("filter_csm", "csm", "CSM"),
    ("filter_stage", "lifecycle_stage", "Lifecycle stage"),
)
PRODUCT_KEY = "filter_product"
GRADE_KEY = "filter_grade"
RENEWAL_KEY = "filter_renewal"
ALL_KEYS = (
    *(k for k, _, _ in ATTRIBUTE_FILTERS),
    PRODUCT_KEY,
    GRADE_KEY,
    RENEWAL_KEY,
)


@dataclass(frozen=True)
class FilterOptions:
    """What the filters offer: the values present in the data."""

    as_of_dates: Sequence[date]  # ascending
    versions: Sequence[tuple[str, str]]  # (key, label); the first is the default
    attributes: Mapping[str, Sequence[str]] = field(default_factory=dict)  # column -> values
    products: Sequence[str] = ()
    grades: Sequence[str] = ()  # low -> high


@dataclass(frozen=True)
class Filters:
    """The filters in force. Empty tuples mean "everything"."""

    as_of: date | None = None
    version: str = ""
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (column, values)
    products: tuple[str, ...] = ()
    grades: tuple[str, ...] = ()
    renewal: RenewalWindow = RenewalWindow.ANY

    @property
    def active(self) -> bool:
        """Whether any filter narrows the portfolio (the as-of date and version do not)."""
        return bool(
            any(v for _, v in self.attributes)
            or self.products
            or self.grades
            or self.renewal is not RenewalWindow.ANY
        )

    def describe(self) -> str:
        """``Segment: SMB · Grade: Red`` (for captions and empty states)."""
        parts = []
        labels = {col: label for _, col, label in ATTRIBUTE_FILTERS}
        for col, values in self.attributes:
            if values:
                parts.append(f"{labels.get(col, col)}: {', '.join(values)}")
        if self.products:
            parts.append(f"Product: {', '.join(self.products)}")
        if self.grades:
            parts.append(f"Grade: {', '.join(self.grades)}")
        if self.renewal is not RenewalWindow.ANY:
            parts.append(f"Renewal: {self.renewal.label.lower()}")
        return " · ".join(parts) if parts else "all accounts"

    def apply(
        self,
        frame: pl.DataFrame,
        *,
        product_accounts: pl.DataFrame | None = None,
        grade_col: str = "grade",
    ) -> pl.DataFrame:
        """Keep the rows of ``frame`` (one per account, with account attributes and, when a
        grade filter is set, a grade) that pass every filter. ``product_accounts``
        (``account_id``, ``product``) is needed for the product filter."""
        out = frame
        for col, values in self.attributes:
            if values and col in out.columns:
                out = out.filter(pl.col(col).cast(pl.Utf8).is_in(list(values)))
        if self.products and product_accounts is not None:
            keep = (
                product_accounts.filter(pl.col("product").is_in(list(self.products)))
                .select("account_id")
                .unique()
            )
            out = out.join(keep, on="account_id", how="semi")
        if self.grades and grade_col in out.columns:
            out = out.filter(pl.col(grade_col).is_in(list(self.grades)))
        if self.renewal is not RenewalWindow.ANY and "renewal_date" in out.columns:
            ref = self.as_of or date.today()
            rd = pl.col("renewal_date")
            if self.renewal is RenewalWindow.PAST:
                out = out.filter(rd < ref)
            else:
                out = out.filter(
                    (rd >= ref) & (rd <= ref + timedelta(days=int(self.renewal.value)))
                )
        return out


def _clean(key: str, options: Sequence[str]) -> None:
    """Drop stored values that are no longer options."""
    value = st.session_state.get(key)
    if isinstance(value, list):
        kept = [v for v in value if v in options]
        if kept != value:
            st.session_state[key] = kept


def _clear() -> None:
    for key in ALL_KEYS:
        st.session_state.pop(key, None)


def show(options: FilterOptions) -> Filters:
    """Render the filters (in the current container: the sidebar) and return them."""
    sb = st
    dates = list(options.as_of_dates)[::-1]  # newest first
    pending = st.session_state.pop(state.PENDING_AS_OF, None)
    if pending in dates:
        st.session_state[state.AS_OF] = pending
    if dates:
        if state.get_as_of() not in dates:
            st.session_state[state.AS_OF] = dates[0]
        sb.selectbox(
            "As of",
            dates,
            key=state.AS_OF,
            format_func=fmt.day,
            help="The date the scores are computed at (a weekly snapshot).",
        )
    version_keys = [k for k, _ in options.versions]
    version_labels = dict(options.versions)
    if version_keys:
        if st.session_state.get(state.SCORECARD_VERSION) not in version_keys:
            st.session_state[state.SCORECARD_VERSION] = version_keys[0]
        sb.selectbox(
            "Scorecard",
            version_keys,
            key=state.SCORECARD_VERSION,
            format_func=lambda k: version_labels.get(k, k),
            help="The active scorecards, or a saved version to look at the portfolio through.",
        )
    narrowing = current(options)
    with sb.expander("Filters" + (" (on)" if narrowing.active else ""), expanded=narrowing.active):
        for key, col, label in ATTRIBUTE_FILTERS:
            values = list(options.attributes.get(col, ()))
            if not values:
                continue
            _clean(key, values)
            st.multiselect(label, values, key=key, placeholder="All")
        if options.products:
            _clean(PRODUCT_KEY, list(options.products))
            st.multiselect(
                "Product",
                list(options.products),
                key=PRODUCT_KEY,
                placeholder="All",
                help="Accounts that hold any of these products.",
            )
        st.selectbox(
            "Renewal window",
            list(RenewalWindow),
            key=RENEWAL_KEY,
            format_func=lambda w: RenewalWindow(w).label,
            help="Renewal date relative to the as-of date.",
        )
        if options.grades:
            _clean(GRADE_KEY, list(options.grades))
            st.multiselect("Grade", list(options.grades), key=GRADE_KEY, placeholder="All")
        st.button(
            "Clear filters", key="filter_clear", on_click=_clear, disabled=not narrowing.active
        )
    return current(options)


def current(options: FilterOptions | None = None) -> Filters:
    """The filters from session state (what :func:`show` rendered this run)."""
    as_of = state.get_as_of()
    if as_of is None and options is not None and options.as_of_dates:
        as_of = options.as_of_dates[-1]
    version = st.session_state.get(state.SCORECARD_VERSION)
    if not isinstance(version, str) and options is not None and options.versions:
        version = options.versions[0][0]
    attrs = tuple(
        (col, tuple(st.session_state.get(key) or ())) for key, col, _ in ATTRIBUTE_FILTERS
    )
    renewal_raw = st.session_state.get(RENEWAL_KEY, RenewalWindow.ANY)
    try:
        renewal = RenewalWindow(renewal_raw)
    except ValueError:
        renewal = RenewalWindow.ANY
    return Filters(
        as_of=as_of,
        version=version if isinstance(version, str) else "",
        attributes=attrs,
        products=tuple(st.session_state.get(PRODUCT_KEY) or ()),
        grades=tuple(st.session_state.get(GRADE_KEY) or ()),
        renewal=renewal,
    )
