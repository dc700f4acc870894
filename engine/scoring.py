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

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise
from typing import Any, Literal

import polars as pl

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
    accounts = accounts.with_columns(pl.col("account_id").cast(pl.Utf8))
    for attr in sorted(_attributes_read(cards.values()) - set(accounts.columns)):
        accounts = accounts.with_columns(pl.lit(None, dtype=pl.Utf8).alias(attr))
    assigned = accounts.with_columns(assign(accounts, cards, default))
    needed = sorted(_needed_metrics(cards.values()))
    wide = _wide_values(metrics, needed, as_of, ages=detail or _reads_ages(cards.values()))
    wide = _add_change_bases(wide, metrics, cards.values(), as_of)
    units = assigned.join(wide, on="account_id", how="left")

    unit_frames, contrib_frames = [], []
    for card_id in assigned.get_column("scorecard").unique().sort().to_list():
        card = cards[card_id]
        part = units.filter(pl.col("scorecard") == card_id)
        scored, contrib = _score_units(part, card, as_of, detail=detail)
        unit_frames.append(scored)
        if detail:
            contrib_frames.append(contrib)
    unit_scores = pl.concat(unit_frames, how="diagonal_relaxed") if unit_frames else _empty()
    company = _roll_up(unit_scores, cards, product_arr)
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

    The latest value on or before ``as_of`` counts. Company-level values (product null) apply
    to each product unit of their account unless the product has its own value (which wins
    even when older)."""
    lf = metrics.lazy()
    cols = metrics.columns
    rows = (
        lf.select(
            pl.col("account_id").cast(pl.Utf8),
            (
                pl.col("product").cast(pl.Utf8).replace("", None)
                if "product" in cols
                else pl.lit(None, dtype=pl.Utf8).alias("product")
            ),
            pl.col("metric").cast(pl.Utf8),
            pl.col("value").cast(pl.Float64).fill_nan(None),
            pl.col("level").cast(pl.Utf8)
            if "level" in cols
            else pl.lit(None, dtype=pl.Utf8).alias("level"),
            pl.col("as_of").cast(pl.Date),
        )
        .filter(
            (pl.col("as_of") <= as_of)
            & pl.col("metric").is_in(needed)
            & (pl.col("value").is_not_null() | pl.col("level").is_not_null())
        )
        .with_columns((pl.lit(as_of) - pl.col("as_of")).dt.total_days().cast(pl.Int64).alias("age"))
        .drop("as_of")
        .collect()
    )
    has_products = rows.height > 0 and rows.get_column("product").null_count() < rows.height
    if has_products:
        rows = _spread_company_values(rows)
    # Pivot keeps the first row per key: order rows so that it is the latest value (and a
    # product's own value before its company's). Data already in date order (a store
    # appends history) or with one date needs no sort; "last" then picks the latest.
    agg: Literal["first", "last"] = "first"
    age = rows.get_column("age")
    if rows.height and age.n_unique() > 1 and not age.is_sorted():
        if age.is_sorted(descending=True) and not has_products:
            agg = "last"
        else:
            rows = rows.sort("age", maintain_order=True)
    if has_products:
        rows = rows.sort("_p", maintain_order=True).drop("_p")
    index = KEY if has_products else ["account_id"]
    wide = rows.pivot(
        on="metric",
        on_columns=needed,
        index=index,
        values=["value", "age"] if ages else ["value"],
        aggregate_function=agg,
        separator="::",
        column_naming="combine",
    )
    levels = rows.filter(pl.col("level").is_not_null())
    if levels.height:
        level_wide = levels.pivot(
            on="metric",
            on_columns=needed,
            index=index,
            values=["level"],
            aggregate_function=agg,
            separator="::",
            column_naming="combine",
        )
        wide = wide.join(level_wide, on=index, how="left", nulls_equal=True)
    if not has_products:
        wide = wide.with_columns(pl.lit(None, dtype=pl.Utf8).alias("product"))
    renames = {}
    for metric in needed:
        renames[f"value::{metric}"] = value_col(metric)
        renames[f"level::{metric}"] = level_col(metric)
        renames[f"age::{metric}"] = age_col(metric)
    wide = wide.rename({k: v for k, v in renames.items() if k in wide.columns})
    fixes = []
    for metric in needed:
        for col, dt in (
            (value_col(metric), pl.Float64),
            (level_col(metric), pl.Utf8),
            (age_col(metric), pl.Int64),
        ):
            if col not in wide.columns:
                fixes.append(pl.lit(None, dtype=dt).alias(col))
            elif wide.schema[col] != dt:
                fixes.append(pl.col(col).cast(dt))
    return wide.with_columns(fixes) if fixes else wide


def _spread_company_values(rows: pl.DataFrame) -> pl.DataFrame:
    """Copy company-level rows to every product unit of their account, marked ``_p`` = 1
    (product rows 0); accounts without product rows keep their company rows."""
    company = rows.filter(pl.col("product").is_null())
    per_product = rows.filter(pl.col("product").is_not_null())
    units = per_product.select("account_id", "product").unique()
    spread = units.join(company.drop("product"), on="account_id", how="inner")
    alone = company.join(units.select("account_id").unique(), on="account_id", how="anti")
    return pl.concat(
        [
            per_product.with_columns(pl.lit(0).alias("_p")),
            spread.select(rows.columns).with_columns(pl.lit(1).alias("_p")),
            alone.with_columns(pl.lit(1).alias("_p")),
        ],
        how="vertical_relaxed",
    )


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
    units: pl.DataFrame, card: Scorecard, as_of: date, *, detail: bool
) -> tuple[pl.DataFrame, pl.DataFrame]:
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
    fired_cols = []
    for o in card.overrides:
        if (o.starts_on and as_of < o.starts_on) or (o.expires_on and as_of >= o.expires_on):
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
        "overrides": [(oid, pl.col(c)) for oid, c in fired_cols],
    }
    if not detail:
        masks = [*[c for c in keep if c not in lists], *_mask_exprs(lists)]
        return _lists_from_masks(lf.select(masks).collect(), lists).select(keep), pl.DataFrame()
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


def _rollup_weights(
    units: pl.DataFrame, cards: Mapping[str, Scorecard], product_arr: pl.DataFrame | None, by: str
) -> pl.DataFrame:
    """Per unit, its weight in the company value of column ``by`` (weights sum to 1 over the
    units with a value)."""
    frame = units.select("account_id", "product", "scorecard", by)
    if product_arr is not None and product_arr.height:
        pa = product_arr.select(
            pl.col("account_id").cast(pl.Utf8),
            pl.col("product").cast(pl.Utf8),
            pl.col("arr").cast(pl.Float64).alias("_arr"),
        )
        frame = frame.join(pa, on=["account_id", "product"], how="left")
    else:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("_arr"))
    method = pl.col("scorecard").replace_strict(
        {k: c.rollup.value for k, c in cards.items()}, return_dtype=pl.Utf8
    )
    has = pl.col(by).is_not_null()
    n = has.sum().over("account_id")
    # ARR weights only when every scored product of the account has a positive ARR
    arr_ok = (
        pl.when(has)
        .then(pl.col("_arr").fill_null(0.0) > 0)
        .otherwise(True)
        .all()
        .over("account_id")
    )
    arr_sum = pl.when(has).then(pl.col("_arr")).otherwise(0.0).sum().over("account_id")
    mean_w = pl.when(has).then(1.0 / n).otherwise(0.0)
    arr_w = pl.when(has).then(pl.col("_arr") / arr_sum).otherwise(0.0)
    # worst: one unit holding the minimum (ties: the first in frame order)
    first_min = has & (pl.col(by).rank("ordinal").over("account_id") == 1)
    worst_w = pl.when(first_min).then(1.0).otherwise(0.0)
    weight = (
        pl.when(method == "worst")
        .then(worst_w)
        .when((method == "arr_weighted") & arr_ok)
        .then(arr_w)
        .otherwise(mean_w)
    )
    return frame.select("account_id", "product", weight.alias("_w"))


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
    if units.height == 0 or units.get_column("product").null_count() == units.height:
        return units.drop("product")
    multi = units.group_by("account_id").len().filter(pl.col("len") > 1).select("account_id")
    single = units.join(multi, on="account_id", how="anti")
    if multi.height == 0:
        return single.drop("product")
    many = units.join(multi, on="account_id", how="semi")
    numeric = [
        c for c, dt in many.schema.items() if dt.is_float() and c not in ("score", "raw_score")
    ]
    w_raw = _rollup_weights(many, cards, product_arr, "raw_score")
    w_final = _rollup_weights(many, cards, product_arr, "score")
    m = many.join(w_raw.rename({"_w": "_wr"}), on=KEY, how="left", nulls_equal=True).join(
        w_final.rename({"_w": "_wf"}), on=KEY, how="left", nulls_equal=True
    )
    aggs = [
        pl.col("scorecard").first(),
        *rollup_score_exprs(),
        pl.col("missing")
        .list.explode(keep_nulls=False, empty_as_null=False)
        .unique()
        .sort()
        .alias("missing"),
        pl.col("stale")
        .list.explode(keep_nulls=False, empty_as_null=False)
        .unique()
        .sort()
        .alias("stale"),
        pl.col("overrides")
        .list.explode(keep_nulls=False, empty_as_null=False)
        .unique()
        .sort()
        .alias("overrides"),
        pl.col("incomplete").any(),
    ]
    for c in numeric:  # group, measure and category scores: weighted like the final score
        w = pl.when(pl.col(c).is_not_null()).then(pl.col("_wf"))
        aggs.append(pl.when(w.sum() > 0).then((pl.col(c) * w).sum() / w.sum()).alias(c))
    rolled = m.group_by("account_id", maintain_order=True).agg(aggs)
    rolled = _regrade(rolled, cards)
    return pl.concat([single.drop("product"), rolled], how="diagonal_relaxed")


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
    out = contrib.join(w, on=KEY, how="left", nulls_equal=True).with_columns(
        (pl.col("weight") * pl.col("_w").fill_null(1.0)).alias("weight")
    )
    return out.drop("_w")


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
        manual.with_columns(pl.col("account_id").cast(pl.Utf8), pl.col("value").cast(pl.Utf8))
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
    return out.sort("account_id")
