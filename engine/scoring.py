"""Scoring: metric values -> measures -> groups -> overall -> overrides -> grade.

Everything is a Polars expression over a wide frame with one row per scored unit (an account,
or an account's product). The semantics are documented in ``docs/scoring.md``; in short:

- The latest value on or before the as-of date counts. A value older than the measure's
  ``validity_days`` is stale: dropped (``stale: exclude``) or used and flagged (``keep``).
- Measure score = map(value), clamped to 0-100. Unknown levels count as missing.
- Group and overall scores are weighted means under the missing policy:
  ``renormalize`` (over present parts), ``zero`` (missing parts score 0), ``fixed`` (weights
  never rescale: sum(w * s over present) / sum(all w); the unit is flagged incomplete).
  A unit with no measure value at all has no score.
- Overrides are evaluated on pre-override values and applied in file order; manual overrides
  apply last, to the company. The grade is the band of the final score (an edge belongs to
  the higher band).
- Products: company-level values apply to every product of the account, product values to
  their product. Product scores roll up by ``arr_weighted`` / ``mean`` / ``worst``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

import numpy as np
import polars as pl

from engine import latest
from engine.conditions import (
    RAW_SCORE,
    age_col,
    attributes_read,
    change_col,
    changes,
    condition_expr,
    level_col,
    metrics_read,
    value_col,
)
from engine.scorecard import (
    Action,
    ActionType,
    BandsMap,
    Category,
    LevelsMap,
    LinearMap,
    Measure,
    MissingPolicy,
    Scheme,
    Scorecard,
    StalePolicy,
)

KEY = ["account_id", "product"]
OUTPUT_BASE = [
    "account_id",
    "product",
    "scorecard",
    "score",
    "raw_score",
    "grade",
    "outcomes_score",
    "experience_score",
    "missing",
    "stale",
    "overrides",
    "incomplete",
]


@dataclass(frozen=True)
class ScoreDetail:
    """``company``: one row per account; ``products``: one row per scored unit (product is
    null for accounts scored at company level); ``contributions``: one row per unit and
    measure with its effective weight in the company's raw overall (sums to the raw score)."""

    company: pl.DataFrame
    products: pl.DataFrame
    contributions: pl.DataFrame


# --------------------------------------------------------------------------- public API


def score(
    accounts: pl.DataFrame,
    metrics: pl.DataFrame,
    scorecards: Scorecard | Mapping[str, Scorecard],
    as_of: date,
    *,
    default: str = "default",
    manual_overrides: pl.DataFrame | None = None,
    product_arr: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Score every account at ``as_of``: one row per account (see docs/contracts.md)."""
    return _run(
        accounts, metrics, scorecards, as_of, default, manual_overrides, product_arr, detail=False
    ).company


def score_detail(
    accounts: pl.DataFrame,
    metrics: pl.DataFrame,
    scorecards: Scorecard | Mapping[str, Scorecard],
    as_of: date,
    *,
    default: str = "default",
    manual_overrides: pl.DataFrame | None = None,
    product_arr: pl.DataFrame | None = None,
) -> ScoreDetail:
    """Like :func:`score`, plus product rows and per-measure contributions."""
    return _run(
        accounts, metrics, scorecards, as_of, default, manual_overrides, product_arr, detail=True
    )


def assign(
    accounts: pl.DataFrame, scorecards: Mapping[str, Scorecard], default: str = "default"
) -> pl.Series:
    """The scorecard id per account: the default scorecard's assignment rules in order, the
    first match wins; the default catches the rest."""
    card = scorecards[default]
    expr: pl.Expr = pl.lit(default)
    if card.assignment:
        chain: Any = None
        for rule in card.assignment:
            cond = condition_expr(rule.when)
            chain = (
                pl.when(cond).then(pl.lit(rule.scorecard))
                if chain is None
                else chain.when(cond).then(pl.lit(rule.scorecard))
            )
        assert chain is not None
        expr = chain.otherwise(pl.lit(default))
    if not card.assignment:
        return pl.Series("scorecard", [default] * accounts.height, dtype=pl.Utf8)
    return accounts.select(expr.alias("scorecard")).to_series()


def grade_expr(score: pl.Expr, scheme: Scheme) -> pl.Expr:
    """Band label of a score; an edge belongs to the higher band. Numeric scheme without
    bands: the rounded score as text."""
    if not scheme.bands:
        return pl.when(score.is_not_null()).then(score.round(0).cast(pl.Int64).cast(pl.Utf8))
    bands = scheme.bands
    chain: Any = pl.when(score.is_null()).then(pl.lit(None, dtype=pl.Utf8))
    for band in bands[:-1]:
        chain = chain.when(score < band.below).then(pl.lit(band.label))
    return chain.otherwise(pl.lit(bands[-1].label))


def map_expr(m: Measure, value: pl.Expr, level: pl.Expr) -> pl.Expr:
    """The 0-100 score of a measure's raw value (null when it cannot be scored)."""
    mp = m.map
    if isinstance(mp, LinearMap):
        pts = sorted(mp.points)
        (x0, y0), yn = pts[0], pts[-1][1]
        chain: Any = pl.when(value.is_null()).then(pl.lit(None, dtype=pl.Float64))
        chain = chain.when(value <= x0).then(pl.lit(float(y0)))
        for (xa, ya), (xb, yb) in pairwise(pts):
            if xb == xa:
                continue
            slope = (yb - ya) / (xb - xa)
            chain = chain.when(value <= xb).then(ya + (value - xa) * slope)
        out = chain.otherwise(pl.lit(float(yn)))
    elif isinstance(mp, BandsMap):
        chain = pl.when(value.is_null()).then(pl.lit(None, dtype=pl.Float64))
        for step in mp.steps:
            if step.max is None:
                chain = chain.when(value.is_not_null()).then(pl.lit(float(step.score)))
            else:
                chain = chain.when(value <= step.max).then(pl.lit(float(step.score)))
        out = chain.otherwise(pl.lit(float(mp.steps[-1].score)))
    else:
        assert isinstance(mp, LevelsMap)
        text = level.str.strip_chars().str.to_lowercase()
        chain = pl.when(pl.lit(False)).then(pl.lit(None, dtype=pl.Float64))
        for lv in mp.levels:
            hit = text == lv.label.strip().lower()
            if lv.value is not None:
                hit = hit.fill_null(False) | (value == lv.value).fill_null(False)
            chain = chain.when(hit.fill_null(False)).then(pl.lit(float(lv.score)))
        out = chain.otherwise(pl.lit(None, dtype=pl.Float64))
    # round away float noise so a value on a point scores exactly that point's score
    return out.clip(0.0, 100.0).round(9)


def apply_action(current: pl.Expr, action: Action, scheme: Scheme) -> pl.Expr:
    """The score after one override action."""
    match action.type:
        case ActionType.SET:
            return pl.lit(float(action.value))
        case ActionType.CAP:
            return pl.min_horizontal(current, pl.lit(float(action.value)))
        case ActionType.GRADE:
            for label, lower, upper in scheme.band_edges():
                if label == action.value:
                    # the last band reaches 100; others stop just inside their upper edge
                    top = 100.0 if upper >= 100.0 else upper - min(1.0, (upper - lower) / 2)
                    return current.clip(lower, top)
            raise ValueError(f"grade {action.value!r} is not a band of the scheme")


# --------------------------------------------------------------------------- pipeline


def _run(
    accounts: pl.DataFrame,
    metrics: pl.DataFrame,
    scorecards: Scorecard | Mapping[str, Scorecard],
    as_of: date,
    default: str,
    manual_overrides: pl.DataFrame | None,
    product_arr: pl.DataFrame | None,
    *,
    detail: bool,
) -> ScoreDetail:
    cards = _as_mapping(scorecards, default)
    assigned = assigned_accounts(accounts, cards, default)
    needed = sorted(_needed_metrics(cards.values()))
    wide = _wide_values(metrics, needed, as_of, ages=detail or _reads_ages(cards.values()))
    wide = _add_change_bases(wide, metrics, cards.values(), as_of)
    units = assigned.join(wide, on="account_id", how="left")
    return _score_prepared(units, cards, as_of, manual_overrides, product_arr, detail=detail)


def assigned_accounts(
    accounts: pl.DataFrame, cards: Mapping[str, Scorecard], default: str = "default"
) -> pl.DataFrame:
    """``accounts`` with text ids, a null column for every attribute a scorecard reads that
    the frame lacks, and the ``scorecard`` assigned."""
    accounts = accounts.with_columns(pl.col("account_id").cast(pl.Utf8))
    for attr in sorted(_attributes_read(cards.values()) - set(accounts.columns)):
        accounts = accounts.with_columns(pl.lit(None, dtype=pl.Utf8).alias(attr))
    return accounts.with_columns(assign(accounts, cards, default))


def attributes_read_by(cards: Mapping[str, Scorecard]) -> list[str]:
    """The account attributes any assignment rule or override of ``cards`` reads."""
    return sorted(_attributes_read(cards.values()))


def score_units(
    units: pl.DataFrame,
    cards: Mapping[str, Scorecard],
    as_of: date,
    *,
    manual_overrides: pl.DataFrame | None = None,
    product_arr: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The frame of :func:`score` from units already prepared: one row per (``account_id``,
    ``product``) with its ``scorecard`` (assigned), the account attributes the scorecards read,
    and per metric read the columns ``value_col``, ``level_col`` and ``age_col`` of
    :mod:`engine.conditions` (``change_col`` for change windows) holding the latest value on or
    before ``as_of`` and its age in days. ``account_id`` may be of any type, the same in
    ``manual_overrides`` and ``product_arr``; rows come out sorted by it. For callers that
    find the latest values faster than :func:`score` can (the weekly backfill)."""
    return _score_prepared(units, cards, as_of, manual_overrides, product_arr, detail=False).company


def _score_prepared(
    units: pl.DataFrame,
    cards: Mapping[str, Scorecard],
    as_of: date,
    manual_overrides: pl.DataFrame | None,
    product_arr: pl.DataFrame | None,
    *,
    detail: bool,
) -> ScoreDetail:
    unit_frames, contrib_frames = [], []
    # lists travel as one mask each when every scorecard's flags fit in one
    masks = not detail and all(
        max(len(c.overrides), len(c.measures)) <= _MASK_BITS for c in cards.values()
    )
    for card_id in units.get_column("scorecard").unique().sort().to_list():
        part = units.filter(pl.col("scorecard") == card_id)  # faster than partition_by here
        scored, contrib = _score_units(part, cards[card_id], as_of, detail=detail, masks=masks)
        unit_frames.append(scored)
        if detail:
            contrib_frames.append(contrib)
    unit_scores = pl.concat(unit_frames, how="diagonal_relaxed") if unit_frames else _empty()
    company = _finish_lists(_roll_up(unit_scores, cards, product_arr), cards)
    company = _apply_manual(company, cards, manual_overrides, as_of)
    company = _order(company, cards, drop_product=True)
    if not detail:
        return ScoreDetail(company, unit_scores.clear(), pl.DataFrame())
    contributions = (
        pl.concat(contrib_frames, how="diagonal_relaxed") if contrib_frames else pl.DataFrame()
    )
    contributions = _rollup_contributions(contributions, unit_scores, cards, product_arr)
    return ScoreDetail(company, _order(unit_scores, cards, drop_product=False), contributions)


def _as_mapping(
    scorecards: Scorecard | Mapping[str, Scorecard], default: str
) -> dict[str, Scorecard]:
    if isinstance(scorecards, Scorecard):
        return {default: scorecards}
    cards = dict(scorecards)
    if default not in cards:
        if len(cards) == 1:
            return {default: next(iter(cards.values()))}
        raise ValueError(f"no default scorecard {default!r} among {sorted(cards)}")
    return cards


def _needed_metrics(cards: object) -> set[str]:
    out: set[str] = set()
    for card in cards:  # type: ignore[attr-defined]
        out |= card.metrics
        for o in card.overrides:
            out |= metrics_read(o.when)
    return out


def _reads_ages(cards: object) -> bool:
    """Whether any staleness or expiry rule reads the age of a value."""
    return any(
        any(m.validity_days is not None for _, m in card.measures)
        or any(o.expires_after_days is not None for o in card.overrides)
        for card in cards  # type: ignore[attr-defined]
    )


def _attributes_read(cards: object) -> set[str]:
    out: set[str] = set()
    for card in cards:  # type: ignore[attr-defined]
        for rule in [*card.assignment, *card.overrides]:
            out |= attributes_read(rule.when)
    return out


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema={"account_id": pl.Utf8, "product": pl.Utf8, "scorecard": pl.Utf8})


def _wide_values(
    metrics: pl.DataFrame, needed: list[str], as_of: date, *, ages: bool = True
) -> pl.DataFrame:
    """One row per (account_id, product) unit with value, level and age per needed metric
    (ages null when ``ages`` is false: nothing reads them).

    The latest value on or before ``as_of`` counts (two on that date: the first row).
    Company-level values (product null) apply to each product unit of their account unless
    the product has its own value (which wins even when older). A unit's level is its latest
    level, from the same rule over the rows that have one. See :mod:`engine.latest`."""
    rows = _value_rows(metrics, needed, as_of)
    metric = rows.get_column("_metric").to_numpy()
    keep = metric >= 0
    level_keep = None
    if "level" in rows.columns:
        level_keep = keep & rows.get_column("level").is_not_null().to_numpy()
    if not needed or not keep.any():
        found = latest.LatestValues(
            np.zeros(0, dtype=np.int64),
            0,
            np.zeros((len(needed), 0)),
            np.zeros((len(needed), 0), dtype=np.int64) if ages else None,
            None,
        )
    else:
        found = latest.latest_values(
            rows.get_column("account_id"),
            rows.get_column("product") if "product" in rows.columns else None,
            metric,
            rows.get_column("_day").to_numpy(),
            rows.get_column("value").to_numpy(),  # null is NaN here
            len(needed),
            keep,
            level_keep if level_keep is not None and level_keep.any() else None,
            days=ages,
        )
    return _cells_frame(rows, found, needed, as_of, ages=ages)


def _value_rows(metrics: pl.DataFrame, needed: list[str], as_of: date) -> pl.DataFrame:
    """The metric rows typed for :func:`_wide_values`, in one pass: ``account_id``,
    ``value`` (NaN is null), ``level`` and ``product`` (empty text is null; each absent when
    no row has one), ``_metric`` (the index in ``needed`` of a row that may count at
    ``as_of``: a needed metric, dated on or before ``as_of``, with a value or a level; -1 for
    every other row) and ``_day`` (days since 1970-01-01). The numeric columns come in one
    piece, so that NumPy reads them without a copy."""
    cols = metrics.columns
    value = pl.col("value").cast(pl.Float64).fill_nan(None)
    present = value.is_not_null()
    exprs = [pl.col("account_id").cast(pl.Utf8), value]
    if "level" in cols and metrics.get_column("level").null_count() < metrics.height:
        exprs.append(pl.col("level").cast(pl.Utf8))
        present = present | pl.col("level").is_not_null()
    if "product" in cols and metrics.get_column("product").null_count() < metrics.height:
        exprs.append(pl.col("product").cast(pl.Utf8).replace("", None))
    # An Enum of the needed metrics codes them by position; any other metric is null.
    metric = pl.col("metric").cast(pl.Utf8).cast(pl.Enum(needed), strict=False).to_physical()
    dated = pl.col("as_of").cast(pl.Date)
    counts = (dated <= as_of) & present
    exprs += [
        pl.when(counts).then(metric.cast(pl.Int32)).fill_null(-1).alias("_metric"),
        dated.cast(pl.Int32).fill_null(0).alias("_day"),
    ]
    rows = metrics.select(exprs)
    return rows.with_columns(rows.select("value", "_metric", "_day").rechunk())


def _cells_frame(
    rows: pl.DataFrame, found: latest.LatestValues, needed: list[str], as_of: date, *, ages: bool
) -> pl.DataFrame:
    """The wide frame of :func:`_wide_values` from the value that counts in each cell."""
    unit_row = pl.Series(found.unit_row)
    columns = [rows.get_column("account_id").gather(unit_row)]
    if found.product_units:
        product = rows.get_column("product").gather(unit_row[: found.product_units])
        columns.append(product.extend_constant(None, unit_row.len() - found.product_units))
    for metric, values in zip(needed, found.value, strict=True):
        columns.append(pl.Series(value_col(metric), values, nan_to_null=True))
    if found.level_rows is not None:
        level = rows.get_column("level")
        for metric, cells in zip(needed, found.level_rows, strict=True):
            at = pl.Series(cells).set(pl.Series(cells < 0), None)
            columns.append(level.gather(at).alias(level_col(metric)))
    if ages and found.day is not None:
        today = (as_of - date(1970, 1, 1)).days
        for metric, dated in zip(needed, found.day, strict=True):
            age = pl.Series(age_col(metric), today - dated)
            columns.append(age.set(pl.Series(dated == latest.NO_DAY), None))
    wide = pl.DataFrame(columns)
    absent = [pl.lit(None, dtype=pl.Utf8).alias(c) for c in ("product",) if c not in wide.columns]
    absent += [
        pl.lit(None, dtype=dtype).alias(name(metric))
        for name, dtype in ((level_col, pl.Utf8), (age_col, pl.Int64))
        for metric in needed
        if name(metric) not in wide.columns
    ]
    return wide.with_columns(absent) if absent else wide


def _add_change_bases(
    wide: pl.DataFrame, metrics: pl.DataFrame, cards: object, as_of: date
) -> pl.DataFrame:
    """For every change condition, the metric's latest value on or before as_of - days."""
    wanted: set[tuple[str, int]] = set()
    for card in cards:  # type: ignore[attr-defined]
        for o in card.overrides:
            wanted |= changes(o.when)
    for metric, days in sorted(wanted):
        base_date = as_of - timedelta(days=days)
        base = _wide_values(metrics, [metric], base_date).select(
            *KEY, pl.col(value_col(metric)).alias(change_col(metric, days))
        )
        # A product unit without its own base falls back to the company-level base.
        company_base = base.filter(pl.col("product").is_null()).drop("product")
        wide = wide.join(base, on=KEY, how="left", nulls_equal=True)
        wide = (
            wide.join(
                company_base.rename({change_col(metric, days): "_cb"}), on="account_id", how="left"
            )
            .with_columns(
                pl.coalesce(change_col(metric, days), "_cb").alias(change_col(metric, days))
            )
            .drop("_cb")
        )
    return wide


def _measure_exprs(m: Measure, card: Scorecard) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(score, present, stale) for one measure, after the stale policy."""
    value = pl.col(value_col(m.metric))
    level = pl.col(level_col(m.metric))
    age = pl.col(age_col(m.metric))
    raw = map_expr(m, value, level)
    stale = (
        (age > m.validity_days).fill_null(False) & raw.is_not_null()
        if m.validity_days is not None
        else pl.lit(False)
    )
    present = raw.is_not_null() & ~stale if card.stale == StalePolicy.EXCLUDE else raw.is_not_null()
    return raw, present, stale


def _weighted(
    parts: list[tuple[float, pl.Expr, pl.Expr]], policy: MissingPolicy
) -> tuple[pl.Expr, list[pl.Expr]]:
    """Weighted mean of (weight, score, present) parts under the missing policy, and each
    part's effective weight (so that result == sum(eff_w * coalesce(score, 0)))."""
    total = sum(w for w, _, _ in parts)
    present_w = pl.sum_horizontal([pl.when(p).then(pl.lit(w)).otherwise(0.0) for w, _, p in parts])
    any_present = pl.any_horizontal([p for _, _, p in parts])
    numer = pl.sum_horizontal([pl.when(p).then(s * w).otherwise(0.0) for w, s, p in parts])
    if policy == MissingPolicy.RENORMALIZE:
        denom = present_w
        effs = [pl.when(p & (denom > 0)).then(w / denom).otherwise(0.0) for w, _, p in parts]
    else:
        denom = pl.lit(float(total))
        effs = [pl.lit(w / total if total else 0.0) for w, _, _ in parts]
    # clip: a weighted mean of in-range scores is in range, up to float rounding
    result = pl.when(any_present & (denom > 0)).then((numer / denom).clip(0.0, 100.0))
    if policy == MissingPolicy.ZERO:
        # missing parts score 0 but a unit with nothing at all still has no score upstream
        result = pl.when(denom > 0).then((numer / denom).clip(0.0, 100.0))
    return result, effs


def _score_units(
    units: pl.DataFrame, card: Scorecard, as_of: date, *, detail: bool, masks: bool = False
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Unit scores under ``card`` (and with ``detail`` the measure contributions). With
    ``masks`` (not with ``detail``), the missing, stale and overrides lists come as masks
    (:func:`_roll_mask`) for :func:`_roll_up` and :func:`_finish_lists`."""
    policy = card.missing
    measure_cols: dict[str, tuple[pl.Expr, pl.Expr, pl.Expr]] = {}
    exprs: dict[str, pl.Expr] = {}
    for _, m in card.measures:
        raw, present, stale = _measure_exprs(m, card)
        measure_cols[m.id] = (raw, present, stale)
        exprs[f"__s::{m.id}"] = raw
        exprs[f"__p::{m.id}"] = present
        exprs[f"__st::{m.id}"] = stale
    lf = units.lazy().with_columns(**exprs)

    group_exprs: dict[str, pl.Expr] = {}
    eff_measure: dict[str, pl.Expr] = {}
    group_present: dict[str, pl.Expr] = {}
    for g in card.groups:
        parts = [(m.weight, pl.col(f"__s::{m.id}"), pl.col(f"__p::{m.id}")) for m in g.measures]
        gscore, effs = _weighted(parts, policy)
        group_exprs[g.id] = gscore
        group_present[g.id] = (
            pl.any_horizontal([p for _, _, p in parts]) if parts else pl.lit(False)
        )
        for m, e in zip(g.measures, effs, strict=True):
            eff_measure[m.id] = e
    # measure output: the score when it counts, 0 under `zero` for missing, else null
    measure_out = {}
    for _, m in card.measures:
        s, p = pl.col(f"__s::{m.id}"), pl.col(f"__p::{m.id}")
        measure_out[m.id] = (
            pl.when(p).then(s).otherwise(0.0)
            if policy == MissingPolicy.ZERO
            else pl.when(p).then(s)
        )
    lf = lf.with_columns(**group_exprs, **{f"__gp::{g}": e for g, e in group_present.items()})
    gparts = [(g.weight, pl.col(g.id), pl.col(f"__gp::{g.id}")) for g in card.groups]
    overall, geffs = _weighted(gparts, policy)
    any_measure = (
        pl.any_horizontal([pl.col(f"__p::{m.id}") for _, m in card.measures])
        if card.measures
        else pl.lit(False)
    )
    lf = lf.with_columns(pl.when(any_measure).then(overall).alias(RAW_SCORE))
    lf = lf.with_columns(
        _category_score(card, Category.OUTCOMES).alias("outcomes_score"),
        _category_score(card, Category.EXPERIENCE).alias("experience_score"),
        (
            pl.any_horizontal([~pl.col(f"__p::{m.id}") for _, m in card.measures])
            if policy == MissingPolicy.FIXED and card.measures
            else pl.lit(False)
        ).alias("incomplete"),
    )
    lf = lf.with_columns(**measure_out)
    # overrides on pre-override values
    current: pl.Expr = pl.col(RAW_SCORE)
    fired_cols: list[tuple[str, str | None]] = []
    for o in card.overrides:
        if (o.starts_on and as_of < o.starts_on) or (o.expires_on and as_of >= o.expires_on):
            fired_cols.append((o.id, None))  # keeps one flag per override of the scorecard
            continue
        cond = condition_expr(o.when)
        if o.expires_after_days is not None:
            for metric in sorted(metrics_read(o.when)):
                cond = cond & (pl.col(age_col(metric)) <= o.expires_after_days).fill_null(False)
        cond = cond & pl.col(RAW_SCORE).is_not_null()
        col = f"__o::{o.id}"
        lf = lf.with_columns(cond.alias(col))
        fired_cols.append((o.id, col))
        current = (
            pl.when(pl.col(col)).then(apply_action(current, o.then, card.scheme)).otherwise(current)
        )
    lf = lf.with_columns(current.alias("score"))
    lf = lf.with_columns(grade_expr(pl.col("score"), card.scheme).alias("grade"))
    keep = [*OUTPUT_BASE, *[g.id for g in card.groups], *[m.id for _, m in card.measures]]
    lists = {
        "missing": [(m.id, ~pl.col(f"__p::{m.id}")) for _, m in card.measures],
        "stale": [(m.id, pl.col(f"__st::{m.id}")) for _, m in card.measures],
        "overrides": [(oid, pl.lit(False) if c is None else pl.col(c)) for oid, c in fired_cols],
    }
    if not detail:
        carried = [c for c in _CARRY if c in units.columns]
        frame = lf.select(
            *[c for c in keep if c not in lists], *carried, *_mask_exprs(lists)
        ).collect()
        if masks:
            # the lists travel as masks through the roll-up (see _finish_lists)
            return frame.rename({f"__mask::{n}::0": _roll_mask(n) for n in lists}), pl.DataFrame()
        listed = _lists_from_masks(frame, lists)
        return listed.select(*keep, *carried), pl.DataFrame()
    # contributions: effective weight of each measure in the unit's raw overall
    eff_cols = {}
    for g, geff in zip(card.groups, geffs, strict=True):
        for m in g.measures:
            eff_cols[f"__e::{m.id}"] = eff_measure[m.id] * geff
    full = (
        lf.with_columns(**eff_cols)
        .with_columns(pl.when(~any_measure).then(None).otherwise(pl.lit(1)).alias("__any"))
        .with_columns(_mask_exprs(lists))
        .collect()
    )
    full = _lists_from_masks(full, lists)
    rows = []
    for g in card.groups:
        for m in g.measures:
            rows.append(
                full.select(
                    "account_id",
                    "product",
                    pl.lit(card.id).alias("scorecard"),
                    pl.lit(g.id).alias("group"),
                    pl.lit(m.id).alias("measure"),
                    pl.lit(m.metric).alias("metric"),
                    pl.col(value_col(m.metric)).alias("value"),
                    pl.col(level_col(m.metric)).alias("level"),
                    (pl.lit(as_of) - pl.duration(days=pl.col(age_col(m.metric)))).alias(
                        "value_as_of"
                    ),
                    pl.col(f"__s::{m.id}").alias("raw_measure_score"),
                    pl.col(m.id).alias("score"),
                    pl.when(pl.col("__any").is_not_null())
                    .then(pl.col(f"__e::{m.id}"))
                    .otherwise(0.0)
                    .alias("weight"),
                    pl.col(f"__st::{m.id}").alias("stale"),
                    (~pl.col(f"__p::{m.id}")).alias("missing"),
                )
            )
    contrib = pl.concat(rows, how="vertical_relaxed") if rows else pl.DataFrame()
    return full.select(keep), contrib


_MASK_BITS = 63
_LISTS = ("missing", "stale", "overrides")
# Unit columns a caller may provide for the product roll-up, carried through unit scoring:
# the product's ARR and its rank by name (else both come from ``product_arr`` and names).
_CARRY = ("_arr", "_porder")


def _roll_mask(name: str) -> str:
    """The column carrying list ``name`` as a mask (bit i: the scorecard's i-th measure, or
    override for ``overrides``) from unit scoring to the product roll-up."""
    return f"__rollmask::{name}"


def _list_names(card: Scorecard, name: str) -> list[str]:
    if name == "overrides":
        return [o.id for o in card.overrides]
    return [m.id for _, m in card.measures]


def _mask_exprs(lists: Mapping[str, list[tuple[str, pl.Expr]]]) -> list[pl.Expr]:
    """Per list column, integer masks (63 flags each) of which names are flagged."""
    out = []
    for name, flags in lists.items():
        for k in range(0, max(len(flags), 1), _MASK_BITS):
            chunk = flags[k : k + _MASK_BITS]
            bits = [
                pl.when(flag)
                .then(pl.lit(1 << i, dtype=pl.UInt64))
                .otherwise(pl.lit(0, dtype=pl.UInt64))
                for i, (_, flag) in enumerate(chunk)
            ]
            mask = pl.sum_horizontal(bits) if bits else pl.lit(0, dtype=pl.UInt64)
            out.append(mask.cast(pl.UInt64).alias(f"__mask::{name}::{k}"))
    return out


def _lists_from_masks(
    frame: pl.DataFrame, lists: Mapping[str, list[tuple[str, pl.Expr]]]
) -> pl.DataFrame:
    """Turn the masks of :func:`_mask_exprs` into list columns of names (in flag order).

    Building a list per row from Boolean columns is slow in any engine; the distinct masks
    are few, so each is turned into its list once and joined back."""
    for name, flags in lists.items():
        parts = []
        for k in range(0, max(len(flags), 1), _MASK_BITS):
            col = f"__mask::{name}::{k}"
            names = [n for n, _ in flags[k : k + _MASK_BITS]]
            masks = frame.get_column(col).unique().to_list()
            lookup = pl.DataFrame(
                {
                    col: masks,
                    f"{col}::list": [[n for i, n in enumerate(names) if m >> i & 1] for m in masks],
                },
                schema={col: pl.UInt64, f"{col}::list": pl.List(pl.Utf8)},
            )
            frame = frame.join(lookup, on=col, how="left", maintain_order="left").drop(col)
            parts.append(pl.col(f"{col}::list"))
        merged = parts[0] if len(parts) == 1 else pl.concat_list(parts)
        frame = frame.with_columns(merged.alias(name)).drop(
            [f"__mask::{name}::{k}::list" for k in range(0, max(len(flags), 1), _MASK_BITS)]
        )
    return frame


def _category_score(card: Scorecard, category: Category) -> pl.Expr:
    groups = [g for g in card.groups if g.category is category]
    if not groups:
        return pl.lit(None, dtype=pl.Float64)
    parts = [(g.weight, pl.col(g.id), pl.col(f"__gp::{g.id}")) for g in groups]
    result, _ = _weighted(parts, MissingPolicy.RENORMALIZE)
    return result


# --------------------------------------------------------------------------- roll-up


_WORST, _ARR, _MEAN = 0, 1, 2


def _group_firsts(frame: pl.DataFrame) -> np.ndarray:
    """Per row, the index of its account's first row: a group number for ``np.bincount``."""
    rows = frame.select("account_id").with_row_index("_r")
    first = pl.col("_r").first().over("account_id").cast(pl.Int64)
    return rows.select(first).to_series().to_numpy()


def _unit_arr(frame: pl.DataFrame, product_arr: pl.DataFrame | None) -> np.ndarray:
    """Each unit's product ARR (NaN when unknown)."""
    if product_arr is None or product_arr.height == 0:
        return np.full(frame.height, np.nan)
    pa = product_arr.select(
        pl.col("account_id").cast(frame.schema["account_id"]),
        pl.col("product").cast(pl.Utf8),
        pl.col("arr").cast(pl.Float64).alias("_arr"),
    )
    joined = frame.select(KEY).join(pa, on=KEY, how="left", maintain_order="left")
    return joined.get_column("_arr").fill_null(np.nan).to_numpy()


def _unit_methods(frame: pl.DataFrame, cards: Mapping[str, Scorecard]) -> np.ndarray:
    code = {"worst": _WORST, "arr_weighted": _ARR, "mean": _MEAN}
    return (
        frame.get_column("scorecard")
        .replace_strict({k: code[c.rollup.value] for k, c in cards.items()}, return_dtype=pl.Int8)
        .to_numpy()
    )


def _product_order(frame: pl.DataFrame) -> np.ndarray:
    """Each unit's product rank by name (ties of ``worst`` go to the first name)."""
    ranks = frame.select(pl.col("product").rank("dense").fill_null(0).cast(pl.Int64))
    return ranks.to_series().to_numpy()


def _weights_array(
    group: np.ndarray,
    x: np.ndarray,
    arr: np.ndarray,
    method: np.ndarray,
    order: np.ndarray,
    size: int,
) -> np.ndarray:
    """Per unit, its weight in the company value of ``x`` (NaN: no value); the weights of a
    group's units with a value sum to 1. ``arr_weighted`` needs a positive ARR on every
    scored product of the account, else the mean; ``worst`` is the unit holding the minimum
    (on a tie, the first by ``order``). ``group`` numbers are below ``size``."""
    has = ~np.isnan(x)

    def per_group(v: np.ndarray) -> np.ndarray:
        return np.bincount(group, weights=v, minlength=size)

    n = per_group(has.astype(float))
    arr_ok = per_group((has & ~(arr > 0)).astype(float)) == 0
    arr_sum = per_group(np.where(has, arr, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_w = np.where(has, 1.0 / n[group], 0.0)
        arr_w = np.where(has, arr / arr_sum[group], 0.0)
    low = np.where(has, x, np.inf)
    mins = np.full(size, np.inf)
    np.minimum.at(mins, group, low)
    big = int(order.max(initial=0)) + 1
    at_min = np.where(has & (low == mins[group]), order, big)
    first = np.full(size, big)
    np.minimum.at(first, group, at_min)
    worst_w = (has & (low == mins[group]) & (order == first[group])).astype(float)
    return np.where(
        method == _WORST,
        worst_w,
        np.where((method == _ARR) & arr_ok[group], arr_w, mean_w),
    )


def _rollup_weights(
    units: pl.DataFrame, cards: Mapping[str, Scorecard], product_arr: pl.DataFrame | None, by: str
) -> pl.DataFrame:
    """Per unit, its weight in the company value of column ``by`` (weights sum to 1 over the
    units with a value)."""
    group = _group_firsts(units)
    x = units.get_column(by).cast(pl.Float64).fill_null(np.nan).to_numpy()
    arr, method = _unit_arr(units, product_arr), _unit_methods(units, cards)
    w = _weights_array(group, x, arr, method, _product_order(units), units.height)
    return units.select("account_id", "product").with_columns(pl.Series("_w", w))


def rollup_score_exprs() -> list[pl.Expr]:
    """Company raw and final scores as sums of unit scores times their roll-up weights
    (``_wr``, ``_wf``), rounded to 1e-9 so that products all on one score roll up to exactly
    that score (a score on a band edge stays in its band)."""
    return [
        pl.when(pl.col(c).is_not_null().any())
        .then((pl.col(c).fill_null(0.0) * pl.col(w)).sum().round(9))
        .alias(c)
        for c, w in (("raw_score", "_wr"), ("score", "_wf"))
    ]


def _roll_up(
    units: pl.DataFrame, cards: Mapping[str, Scorecard], product_arr: pl.DataFrame | None
) -> pl.DataFrame:
    """One row per account: a single unit as it is; several units rolled up into the row of
    the first: raw and final scores weighted by their own roll-up weights (summed to 1e-9),
    group, measure and category scores weighted like the final score, the union of the lists
    (sorted), ``incomplete`` when any unit is, and the grade of the rolled score. The sums
    run per account with ``np.bincount`` over all rows at once."""
    masks = [_roll_mask(n) for n in _LISTS if _roll_mask(n) in units.columns]
    carried = [c for c in _CARRY if c in units.columns]
    if units.height == 0 or units.get_column("product").null_count() == units.height:
        return units.drop("product", *carried)
    size = units.height
    group = _group_firsts(units)
    counts = np.bincount(group, minlength=size)
    multi = counts[group] > 1
    if not multi.any():
        return units.drop("product", *carried)
    head = group == np.arange(size)
    keep = head | ~multi  # the rows that stay: singles and each rolled account's first row
    rolled = multi[keep]
    arr = (
        units.get_column("_arr").fill_null(np.nan).to_numpy()
        if "_arr" in units.columns
        else _unit_arr(units, product_arr)
    )
    method = _unit_methods(units, cards)
    order = (
        units.get_column("_porder").to_numpy()
        if "_porder" in units.columns
        else _product_order(units)
    )

    def column(name: str) -> np.ndarray:
        return units.get_column(name).cast(pl.Float64).fill_null(np.nan).to_numpy()

    def per_group(v: np.ndarray) -> np.ndarray:
        return np.bincount(group, weights=v, minlength=size)

    keep_at = np.flatnonzero(keep)
    group_kept = group[keep_at]

    def kept(name: str, by_group: np.ndarray, own: np.ndarray) -> pl.Series:
        values = np.where(rolled, by_group[group_kept], own[keep_at])
        return pl.Series(name, values, nan_to_null=True).cast(units.schema[name])

    out: list[pl.Series] = []
    final_w = np.zeros(size)
    for name in ("raw_score", "score"):
        x = column(name)
        w = _weights_array(group, x, arr, method, order, size)
        if name == "score":
            final_w = w
        total = np.round(per_group(np.where(np.isnan(x), 0.0, x) * w), 9)
        any_value = per_group((~np.isnan(x)).astype(float)) > 0
        out.append(kept(name, np.where(any_value, total, np.nan), x))
    numeric = [
        c
        for c, dt in units.schema.items()
        if dt.is_float() and c not in ("score", "raw_score", *carried)
    ]
    out += _weighted_columns(units, numeric, group, multi, keep_at, rolled, final_w)
    incomplete = units.get_column("incomplete").fill_null(False).to_numpy().astype(float)
    any_incomplete = per_group(incomplete) > 0
    out.append(
        pl.Series("incomplete", np.where(rolled, any_incomplete[group[keep]], incomplete[keep] > 0))
    )
    frame = units.filter(pl.Series(keep)).drop("product", *carried).with_columns(out)
    if len(masks) == len(_LISTS):
        frame = frame.with_columns(
            *_mask_unions(units, group, multi, keep), pl.Series("_rolled", rolled)
        )
    else:
        frame = frame.with_columns(_list_unions(units, group, multi, keep))
    regraded = _regrade(frame.select("scorecard", "score"), cards).get_column("grade")
    return frame.with_columns(
        pl.when(pl.Series(rolled)).then(regraded).otherwise(pl.col("grade")).alias("grade")
    )


def _weighted_columns(
    units: pl.DataFrame,
    names: Sequence[str],
    group: np.ndarray,
    multi: np.ndarray,
    keep_at: np.ndarray,
    rolled: np.ndarray,
    weights: np.ndarray,
) -> list[pl.Series]:
    """Group, measure and category scores of the kept rows: a single unit's own; a rolled
    account's weighted by ``weights`` over its units with a value."""
    rows = np.flatnonzero(multi)
    heads = keep_at[rolled]  # the first row of each rolled account, in row order
    compact = np.full(units.height, -1, dtype=np.int64)
    compact[heads] = np.arange(heads.size)
    by = compact[group[rows]]
    w = weights[rows]
    out = []
    for name in names:
        x = units.get_column(name).cast(pl.Float64).fill_null(np.nan).to_numpy()
        own = x[keep_at]
        xs = x[rows]
        present = ~np.isnan(xs)
        den = np.bincount(by, weights=np.where(present, w, 0.0), minlength=heads.size)
        num = np.bincount(by, weights=np.where(present, xs * w, 0.0), minlength=heads.size)
        with np.errstate(divide="ignore", invalid="ignore"):
            own[rolled] = np.where(den > 0, num / den, np.nan)
        out.append(pl.Series(name, own, nan_to_null=True).cast(units.schema[name]))
    return out


def _mask_unions(
    units: pl.DataFrame, group: np.ndarray, multi: np.ndarray, keep: np.ndarray
) -> list[pl.Series]:
    """The list masks of the kept rows: a rolled account's the OR over its units."""
    out = []
    for name in _LISTS:
        col = _roll_mask(name)
        mask = units.get_column(col).fill_null(0).to_numpy().astype(np.uint64)
        united = mask.copy()
        np.bitwise_or.at(united, group[multi], mask[multi])
        out.append(pl.Series(col, united[group[keep]], dtype=pl.UInt64))
    return out


def _finish_lists(frame: pl.DataFrame, cards: Mapping[str, Scorecard]) -> pl.DataFrame:
    """Turn the list masks that travelled through the roll-up into the lists: the flagged
    names in scorecard order, sorted for a rolled-up account; each distinct (scorecard,
    mask, rolled) is turned into its list once."""
    if _roll_mask(_LISTS[0]) not in frame.columns:
        return frame
    ids = list(cards)
    rolled = pl.col("_rolled") if "_rolled" in frame.columns else pl.lit(False)
    # one integer key per (scorecard, rolled): joins on integers, not on the scorecard text
    key = pl.col("scorecard").replace_strict(
        {c: 2 * i for i, c in enumerate(ids)}, return_dtype=pl.UInt32
    ) + rolled.cast(pl.UInt32)
    frame = frame.with_columns(key.alias("_key"))
    for name in _LISTS:
        col = _roll_mask(name)
        distinct = frame.select("_key", col).unique()
        names = []
        for k, mask in distinct.iter_rows():
            listed = _list_names(cards[ids[k // 2]], name)
            flagged = [n for i, n in enumerate(listed) if mask >> i & 1]
            names.append(sorted(flagged) if k % 2 else flagged)
        lookup = distinct.with_columns(pl.Series(name, names, dtype=pl.List(pl.Utf8)))
        frame = frame.join(lookup, on=["_key", col], how="left", maintain_order="left").drop(col)
    return frame.drop("_key", *(["_rolled"] if "_rolled" in frame.columns else []))


def _list_unions(
    units: pl.DataFrame, group: np.ndarray, multi: np.ndarray, keep: np.ndarray
) -> list[pl.Series]:
    """Per kept row, its lists: a rolled account's the sorted union over its units (only
    non-empty lists are grouped: most are empty), a single unit's its own."""
    lists = units.select("missing", "stale", "overrides")
    kept_groups = pl.DataFrame({"_g": group[keep], "_rolled": multi[keep]})
    tagged = lists.with_columns(pl.Series("_g", group), pl.Series("_m", multi))
    out = []
    for name in ("missing", "stale", "overrides"):
        dtype = units.schema[name]
        union = (
            tagged.filter(pl.col("_m") & (pl.col(name).list.len() > 0))
            .group_by("_g")
            .agg(pl.col(name).explode().unique().sort().alias("_u"))
        )
        joined = kept_groups.join(union, on="_g", how="left", maintain_order="left")
        own = lists.get_column(name).filter(pl.Series(keep))
        out.append(
            joined.select(
                pl.when(pl.col("_rolled"))
                .then(pl.col("_u").fill_null(pl.lit([], dtype=dtype)))
                .otherwise(pl.lit(own))
                .cast(dtype)
                .alias(name)
            ).to_series()
        )
    return out


def _regrade(frame: pl.DataFrame, cards: Mapping[str, Scorecard]) -> pl.DataFrame:
    chain: Any = None
    for cid, card in cards.items():
        g = grade_expr(pl.col("score"), card.scheme)
        chain = (
            pl.when(pl.col("scorecard") == cid).then(g)
            if chain is None
            else chain.when(pl.col("scorecard") == cid).then(g)
        )
    assert chain is not None
    return frame.with_columns(chain.otherwise(None).alias("grade"))


def _rollup_contributions(
    contrib: pl.DataFrame,
    units: pl.DataFrame,
    cards: Mapping[str, Scorecard],
    product_arr: pl.DataFrame | None,
) -> pl.DataFrame:
    if contrib.height == 0:
        return contrib
    w = _rollup_weights(units, cards, product_arr, "raw_score")
    out = contrib.join(w, on=KEY, how="left", nulls_equal=True, maintain_order="left").with_columns(
        (pl.col("weight") * pl.col("_w").fill_null(1.0)).alias("weight")
    )
    # one order whatever the order of the units: account, product, then the scorecard's own
    return out.drop("_w").sort(KEY, nulls_last=True, maintain_order=True)


# --------------------------------------------------------------------------- manual overrides


def _apply_manual(
    company: pl.DataFrame,
    cards: Mapping[str, Scorecard],
    manual: pl.DataFrame | None,
    as_of: date,
) -> pl.DataFrame:
    """Manual overrides (author, reason, expiry) apply last, to the company score. When an
    account has several active ones, the most recent wins."""
    if manual is None or manual.height == 0 or company.height == 0:
        return company
    active = (
        manual.with_columns(
            pl.col("account_id").cast(company.schema["account_id"]), pl.col("value").cast(pl.Utf8)
        )
        .filter(
            (pl.col("created_on") <= as_of)
            & (pl.col("expires_on").is_null() | (pl.col("expires_on") > as_of))
        )
        .sort("created_on")
        .group_by("account_id")
        .last()
        .select("account_id", pl.col("action").alias("_act"), pl.col("value").alias("_val"))
    )
    if active.height == 0:
        return company
    frame = company.join(active, on="account_id", how="left")
    new = pl.col("score")
    for cid, card in cards.items():
        is_card = pl.col("scorecard") == cid
        for band in card.scheme.bands:
            grade_to = apply_action(
                pl.col("score"), Action(type=ActionType.GRADE, value=band.label), card.scheme
            )
            new = (
                pl.when(is_card & (pl.col("_act") == "grade") & (pl.col("_val") == band.label))
                .then(grade_to)
                .otherwise(new)
            )
    num = pl.col("_val").cast(pl.Float64, strict=False)
    new = (
        pl.when((pl.col("_act") == "set") & num.is_not_null())
        .then(num.clip(0, 100))
        .when((pl.col("_act") == "cap") & num.is_not_null())
        .then(pl.min_horizontal(pl.col("score"), num))
        .otherwise(new)
    )
    fired = pl.col("_act").is_not_null() & pl.col("score").is_not_null()
    frame = frame.with_columns(
        pl.when(fired).then(new).otherwise(pl.col("score")).alias("score"),
        pl.when(fired)
        .then(pl.col("overrides").list.concat(pl.lit(["manual"])))
        .otherwise(pl.col("overrides"))
        .alias("overrides"),
    ).drop("_act", "_val")
    return _regrade(frame, cards)


def _order(
    frame: pl.DataFrame, cards: Mapping[str, Scorecard], *, drop_product: bool
) -> pl.DataFrame:
    base = [c for c in OUTPUT_BASE if c in frame.columns and not (drop_product and c == "product")]
    groups: list[str] = []
    measures: list[str] = []
    for card in cards.values():
        groups += [g.id for g in card.groups if g.id not in groups]
        measures += [m.id for _, m in card.measures if m.id not in measures]
    rest = [c for c in [*groups, *measures] if c in frame.columns]
    out = frame.select([*base, *rest])
    return out.sort([c for c in KEY if c in out.columns], nulls_last=True)
