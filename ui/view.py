"""What every page starts from: the signed-in user, the data source and version, the sidebar
filters, the scorecards and the grade palette, and the filtered portfolio.

A page calls ``view = View.open(Role.VIEWER)`` first: that checks the role on the server (and
stops the page with an error when it is missing), then reads everything else lazily, through
the caches of :mod:`ui.cached`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from functools import cached_property

import polars as pl
import streamlit as st

from engine.scorecard import Scorecard
from ui import cached, router, state, summaries
from ui import format as fmt
from ui.auth import Role, User
from ui.components import filters as filters_component
from ui.components.filters import FilterOptions, Filters


def filter_options(src: str, dv: str) -> FilterOptions:
    """The sidebar's options from the data (cached reads only)."""
    choices = cached.scorecard_choices(src, dv)
    version = filters_component.current().version or choices[0].key
    if version not in {c.key for c in choices}:
        version = choices[0].key
    accts = cached.accounts(src, dv)
    attrs = {}
    for _, col, _ in filters_component.ATTRIBUTE_FILTERS:
        if col in accts.columns:
            attrs[col] = sorted(
                v for v in accts.get_column(col).drop_nulls().unique().to_list() if v != ""
            )
    prods = cached.products(src, dv)
    return FilterOptions(
        as_of_dates=cached.as_of_dates(src, dv),
        versions=[(c.key, c.label) for c in choices],
        attributes=attrs,
        products=sorted(prods.get_column("product").unique().to_list()) if prods.height else [],
        grades=summaries.grade_order(cached.scorecards(src, dv, version)),
    )


@dataclass
class View:
    user: User
    src: str
    dv: str
    filters: Filters = field(default_factory=Filters)

    @classmethod
    def open(cls, role: Role = Role.VIEWER) -> View:
        """Check the role (server side), then describe the data the page will show."""
        user = router.page(role)
        src = cached.source()
        dv = cached.data_version(src)
        options = filter_options(src, dv)
        return cls(user=user, src=src, dv=dv, filters=filters_component.current(options))

    # ---- scorecards and grades ------------------------------------------------------------
    @property
    def choice(self) -> str:
        choices = [c.key for c in cached.scorecard_choices(self.src, self.dv)]
        return self.filters.version if self.filters.version in choices else choices[0]

    @cached_property
    def cards(self) -> dict[str, Scorecard]:
        return cached.scorecards(self.src, self.dv, self.choice)

    @property
    def card(self) -> Scorecard:
        return cached.default_card(self.cards)

    @property
    def palette(self) -> str:
        return state.get_palette()

    @cached_property
    def colors(self) -> dict[str, str]:
        return summaries.grade_palette(self.cards, self.palette)

    @cached_property
    def order(self) -> list[str]:
        return summaries.grade_order(self.cards)

    @cached_property
    def groups(self) -> list[tuple[str, str]]:
        return summaries.groups_of(self.cards)

    @property
    def as_of(self) -> date:
        return self.filters.as_of or cached.entry_date(self.src, self.dv)

    # ---- the portfolio --------------------------------------------------------------------
    @cached_property
    def portfolio(self) -> pl.DataFrame:
        """Every account scored at the as-of date (no filter)."""
        return cached.scored(self.src, self.dv, self.as_of, self.choice)

    @cached_property
    def scored(self) -> pl.DataFrame:
        """The accounts that pass the filters, scored at the as-of date."""
        return self.filters.apply(
            self.portfolio, product_accounts=cached.products(self.src, self.dv)
        )

    @cached_property
    def history(self) -> pl.DataFrame:
        """Weekly stored scores up to the as-of date of the accounts that pass the filters:
        attribute, product and renewal filters on every account, so that accounts lost on the
        way still count at the dates they were customers; a grade filter keeps the accounts in
        those grades at the as-of date (a cohort)."""
        hist = cached.history(self.src, self.dv, self.choice)
        if hist.height == 0:
            return hist
        everyone = cached.accounts(self.src, self.dv)
        cohort = replace(self.filters, grades=()).apply(
            everyone, product_accounts=cached.products(self.src, self.dv)
        )
        if self.filters.grades:
            cohort = cohort.join(self.scored.select("account_id"), on="account_id", how="semi")
        return hist.join(cohort.select("account_id"), on="account_id", how="semi").filter(
            pl.col("as_of") <= self.as_of
        )

    # ---- page furniture -------------------------------------------------------------------
    def caption(self) -> str:
        scope = fmt.md(self.filters.describe())
        return (
            f"As of {fmt.day(self.as_of)} · {scope} · {fmt.plural(self.scored.height, 'account')}"
        )

    def header(self, title: str, subtitle: str | None = None) -> None:
        st.title(title)
        st.caption(self.caption() if subtitle is None else f"{subtitle} · {self.caption()}")
        if cached.is_sample(self.src):
            st.info(
                "You are looking at the 40-account sample (no database yet). "
                "Run `make demo` (or open the Data page) to generate the demo portfolio.",
                icon=":material/info:",
            )
        message = state.pop_flash()
        if message:
            st.success(message)

    def empty(self) -> bool:
        """Explain an empty portfolio (no data, or filters that match nothing); True when the
        page should stop there."""
        if self.portfolio.height == 0:
            st.info(
                f"No accounts are customers on {fmt.day(self.as_of)}. Pick a later date in the "
                "sidebar, or import accounts on the Data page.",
                icon=":material/inbox:",
            )
            return True
        if self.scored.height == 0:
            st.info(
                f"No account matches the filters ({fmt.md(self.filters.describe())}). "
                "Widen them in the sidebar, or press Clear filters.",
                icon=":material/filter_alt_off:",
            )
            return True
        return False
