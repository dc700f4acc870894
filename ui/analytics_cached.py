"""Cached adapters for the analytics pages (Backtest, Drivers, Optimizer).

Scoring every past renewal is the long part: it is done once per (data source, data version,
scorecard fingerprint, horizon) and kept with ``st.cache_resource`` (the frames are shared, not
copied: nothing mutates them). The tables computed from those scored renewals are cheap and
cached per filter. The optimizer reports progress, so its results live in a small
process-wide memo (``st.cache_resource`` of a dict) filled outside Streamlit's cache
machinery, where a progress bar may be updated.

Cache keys are small strings: ``src``, ``dv`` (see :mod:`ui.cached`), a scorecard key (the
sidebar choice, or ``draft:<fingerprint>``), the horizon and a filter key. The scorecard object
rides along as an ``_underscored`` argument, which Streamlit does not hash.

The only write, :func:`save_draft`, checks the editor role on the server first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl
import streamlit as st

from engine import store
from engine.analytics import load_inputs, observations
from engine.backtest import BacktestResult, backtest_observations
from engine.drivers import DriversResult, drivers_from_observations
from engine.optimize import OptimizeResult, optimize_observations
from engine.scorecard import Scorecard
from ui import cached
from ui.auth import Role, require_role
from ui.components.filters import Filters

#: The optimizer suggestion handed from the Optimizer page to the Backtest page.
OPTIMIZER_YAML = "optimizer_draft_yaml"


@dataclass(frozen=True)
class Scored:
    """Renewals scored ``horizon`` days before, for one scorecard choice."""

    obs: pl.DataFrame
    unscored: int
    cards: dict[str, Scorecard]
    default: str
    label: str
    activities: pl.DataFrame
    from_history: bool


def _con(src: str) -> Any:
    return cached._con(src)  # ui.cached's connection helper (sample or database)


def scorecard_arg(src: str, dv: str, choice: str) -> Any:
    """What :func:`engine.analytics.load_inputs` takes for a sidebar choice."""
    if choice == "active":
        return None
    if choice.startswith("v") and choice[1:].isdigit():
        return int(choice[1:])
    return cached.scorecards(src, dv, choice)  # the files: a whole set, not stored


@st.cache_resource(show_spinner=False, max_entries=6)
def scored(src: str, dv: str, key: str, horizon: int, _scorecard: Any) -> Scored:
    """Every past renewal with its score ``horizon`` days before (stored history when the
    scorecards are stored versions with full history, else scored on the fly)."""
    inputs = load_inputs(_con(src), _scorecard)
    obs, unscored = observations(inputs, horizon_days=horizon)
    return Scored(
        obs,
        unscored,
        inputs.cards,
        inputs.default,
        inputs.label,
        inputs.activities,
        inputs.history is not None,
    )


def filtered(data: Scored, filters: Filters, products: pl.DataFrame | None) -> pl.DataFrame:
    """The scored renewals of the accounts that pass the sidebar's attribute and product
    filters (the grade, renewal-window and date filters do not apply to past renewals)."""
    only = Filters(attributes=filters.attributes, products=filters.products)
    return only.apply(data.obs, product_accounts=products)


def filter_key(filters: Filters) -> str:
    return repr((filters.attributes, filters.products))


_lock = threading.Lock()


@st.cache_resource(show_spinner=False)
def _memo() -> OrderedDict[tuple[Any, ...], Any]:
    return OrderedDict()


def _remember(key: tuple[Any, ...], compute: Callable[[], Any], size: int = 12) -> Any:
    memo = _memo()
    with _lock:
        if key in memo:
            memo.move_to_end(key)
            return memo[key]
    value = compute()
    with _lock:
        memo[key] = value
        while len(memo) > size:
            memo.popitem(last=False)
    return value


def backtest(
    data: Scored, cache_key: tuple[Any, ...], obs: pl.DataFrame, horizon: int
) -> BacktestResult:
    return _remember(
        ("backtest", *cache_key),
        lambda: backtest_observations(
            obs,
            data.cards,
            unscored=data.unscored,
            horizon_days=horizon,
            default=data.default,
            bootstrap=200,
        ),
    )


def drivers(data: Scored, cache_key: tuple[Any, ...], obs: pl.DataFrame) -> DriversResult:
    acts = data.activities if data.activities.height else None
    return _remember(
        ("drivers", *cache_key),
        lambda: drivers_from_observations(obs, data.cards, acts, default=data.default),
    )


def optimize(
    data: Scored,
    cache_key: tuple[Any, ...],
    obs: pl.DataFrame,
    *,
    target: str,
    progress: Callable[[float, str], None] | None = None,
) -> OptimizeResult:
    return _remember(
        ("optimize", target, *cache_key),
        lambda: optimize_observations(
            obs, data.cards, target=target, default=data.default, bootstrap=30, progress=progress
        ),
    )


def cached_optimize(cache_key: tuple[Any, ...], target: str) -> OptimizeResult | None:
    """The optimizer result for these keys if it was computed already (no work)."""
    with _lock:
        return _memo().get(("optimize", target, *cache_key))


def save_draft(src: str, yaml_text: str, *, comment: str) -> int:
    """Store a suggested scorecard as a **draft** version (never activated). Editors only,
    checked here on the server whatever the page showed."""
    user = require_role(Role.EDITOR)
    con = _con(src)
    try:
        return store.save_scorecard_version(
            con, yaml_text, author=user.username, comment=comment, status="draft"
        )
    finally:
        cached.invalidate()


def labels(cards: Mapping[str, Scorecard]) -> dict[str, str]:
    return {cid: (c.name or cid) for cid, c in cards.items()}
