"""The analytics' inputs read from the store: a thin adapter for the command line and the pages.

The analytics themselves (:mod:`engine.backtest`, :mod:`engine.drivers`, :mod:`engine.optimize`)
work on Polars frames and never touch the database. This module reads those frames and decides
which scorecards to use:

- no scorecard given: the active version of every stored scorecard;
- a version number: that version in place of its namesake among the active ones (any status);
- a YAML file or a :class:`~engine.scorecard.Scorecard`: it replaces its namesake (or the
  default scorecard), and nothing is stored: a draft is backtested without writing anything.

When every scorecard used is a stored version with a snapshot at every stored snapshot date,
the stored ``score_history`` is used instead of scoring on the fly (the same numbers, faster).
Otherwise scores are computed on the fly at the stored snapshot dates (the weekly grid), or at
the metric dates when nothing is stored, so a draft and the active set are read on the same
dates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from engine import store
from engine.backtest import scorecard_set
from engine.problems import InputError, Problem
from engine.scorecard import Scorecard, load_scorecard, parse_scorecard_yaml

DEFAULT = "default"
_NO_METRICS = pl.DataFrame(
    schema={"account_id": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64, "as_of": pl.Date}
)


@dataclass
class AnalyticsInputs:
    """Everything the analytics read, as frames. ``history`` is set when stored scores of
    exactly these scorecard versions can be used; ``metrics`` is read only when it is not."""

    accounts: pl.DataFrame
    renewals: pl.DataFrame
    activities: pl.DataFrame
    product_arr: pl.DataFrame
    manual_overrides: pl.DataFrame
    cards: dict[str, Scorecard]
    default: str
    label: str
    versions: dict[str, int] | None = None
    history: pl.DataFrame | None = None
    snapshot_dates: list[Any] = field(default_factory=list)
    con: Any = field(default=None, repr=False)
    _metrics: pl.DataFrame | None = field(default=None, repr=False)

    @property
    def metrics(self) -> pl.DataFrame:
        if self._metrics is None:
            self._metrics = (
                store.load_metric_values(self.con) if self.con is not None else _NO_METRICS
            )
        return self._metrics

    def fingerprint(self) -> str:
        return "+".join(f"{k}:{c.fingerprint()}" for k, c in sorted(self.cards.items()))


def open_db(path: str | Path) -> Any:
    """A cursor on an existing database; an :class:`InputError` when there is none (reading
    must not create an empty database as a side effect)."""
    p = Path(path)
    if str(path) != ":memory:" and not p.is_file():
        raise InputError(
            [
                Problem(
                    str(p),
                    "no database here: run `python -m engine demo --db PATH` or "
                    "`python -m engine import` first",
                )
            ]
        )
    return store.cursor(p)


def resolve_scorecards(
    con: Any, scorecard: str | int | Path | Scorecard | Mapping[str, Scorecard] | None = None
) -> tuple[dict[str, Scorecard], str, dict[str, int] | None, str]:
    """``(cards, default, versions, label)`` for a scorecard choice (see the module docs); a
    mapping is a whole set used as it is. ``versions`` is None when a card is not a stored
    version."""
    active_versions = store.active_scorecard_versions(con)
    active = {
        sid: parse_scorecard_yaml(v.yaml, default_id=sid) for sid, v in active_versions.items()
    }
    numbers: dict[str, int] | None = {sid: v.version for sid, v in active_versions.items()}
    label = "active scorecards"
    if scorecard is None:
        if not active:
            raise InputError(
                "no scorecard is stored in the database: pass --scorecard FILE, or store one "
                "(python -m engine demo, or the designer)"
            )
        cards = active
    elif isinstance(scorecard, Mapping):
        cards = dict(scorecard)
        numbers, label = None, "scorecard files"
    elif isinstance(scorecard, Scorecard):
        cards = scorecard_set(scorecard, active, default=DEFAULT)
        numbers, label = None, f"draft {scorecard.name or scorecard.id}"
    elif isinstance(scorecard, int) or (isinstance(scorecard, str) and scorecard.isdigit()):
        version = store.get_scorecard_version(con, int(scorecard))
        card = parse_scorecard_yaml(version.yaml, default_id=version.scorecard_id)
        cards = scorecard_set(card, active, default=DEFAULT)
        key = version.scorecard_id if version.scorecard_id in cards else DEFAULT
        numbers = dict(numbers or {})
        numbers[key] = version.version
        label = f"version {version.version} ({version.scorecard_id}, {version.status})"
    else:
        path = Path(scorecard)
        if not path.is_file():
            raise InputError([Problem(str(path), "not a scorecard version number nor a YAML file")])
        card = load_scorecard(path)
        cards = scorecard_set(card, active, default=DEFAULT)
        numbers, label = None, f"file {path.name}"
    default = DEFAULT if DEFAULT in cards else sorted(cards)[0]
    return cards, default, numbers, label


def stored_history(
    con: Any, cards: dict[str, Scorecard], versions: dict[str, int] | None
) -> pl.DataFrame | None:
    """Stored scores of exactly ``versions`` when each has a snapshot at every stored
    snapshot date (a version backfilled over the whole weekly grid)."""
    if not versions or set(versions) != set(cards):
        return None
    snaps = store.snapshots(con)
    grid = set(snaps.get_column("as_of").to_list())
    if not grid:
        return None
    for v in versions.values():
        dates = set(snaps.filter(pl.col("scorecard_version") == v).get_column("as_of").to_list())
        if dates != grid:
            return None
    groups = list(dict.fromkeys(g.id for c in cards.values() for g in c.groups))
    measures = list(dict.fromkeys(m.id for c in cards.values() for _, m in c.measures))
    frame = store.load_scores(
        con, versions=list(versions.values()), group_ids=groups, measure_ids=measures
    )
    if frame.height == 0:
        return None
    return frame.rename({"scorecard_id": "scorecard"}).drop("scorecard_version")


def load_inputs(
    con: Any,
    scorecard: str | int | Path | Scorecard | Mapping[str, Scorecard] | None = None,
    *,
    use_history: bool = True,
) -> AnalyticsInputs:
    """Read the frames and resolve the scorecards for a backtest, drivers or optimize run."""
    cards, default, versions, label = resolve_scorecards(con, scorecard)
    history = stored_history(con, cards, versions) if use_history else None
    return AnalyticsInputs(
        accounts=store.load_accounts(con),
        renewals=store.load_renewals(con),
        activities=store.load_activities(con),
        product_arr=store.load_products(con),
        manual_overrides=store.load_manual_overrides(con),
        cards=cards,
        default=default,
        label=label,
        versions=versions,
        history=history,
        snapshot_dates=list(store.snapshot_dates(con)),
        con=con,
    )


def observations(inputs: AnalyticsInputs, *, horizon_days: int = 90) -> tuple[pl.DataFrame, int]:
    """Scored renewals of ``inputs`` (stored history when usable, else on the fly)."""
    from engine.backtest import renewal_observations

    if inputs.history is not None:
        return renewal_observations(
            inputs.accounts,
            _NO_METRICS,
            inputs.renewals,
            inputs.cards,
            horizon_days=horizon_days,
            default=inputs.default,
            history=inputs.history,
        )
    return renewal_observations(
        inputs.accounts,
        inputs.metrics,
        inputs.renewals,
        inputs.cards,
        horizon_days=horizon_days,
        default=inputs.default,
        manual_overrides=inputs.manual_overrides if inputs.manual_overrides.height else None,
        product_arr=inputs.product_arr if inputs.product_arr.height else None,
        snapshot_dates=inputs.snapshot_dates or None,
    )
