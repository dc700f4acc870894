"""Portfolio summaries the pages show: pure Polars over the scored frames, no Streamlit.

Pages read like a description of the screen; the arithmetic behind a KPI or a table lives
here, where it is tested with small inline frames.

Frames used here:

- **scored**: one row per account at the as-of date: account attributes (``name``, ``arr``,
  ``segment``, ``region``, ``csm``, ``lifecycle_stage``, ``renewal_date``) and the score
  columns of :func:`engine.scoring.score`.
- **history**: one row per (``as_of``, ``account_id``): ``score``, ``grade``, one column per
  group id, and ``arr`` when joined.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from engine import scoring
from engine.scorecard import LevelsMap, Scorecard
from ui.charts import NO_GRADE, Palette, grade_colors

DEFAULT_CARD = "default"


# --------------------------------------------------------------------------- grades


def _default(cards: Mapping[str, Scorecard]) -> Scorecard | None:
    if not cards:
        return None
    return cards.get(DEFAULT_CARD) or next(iter(cards.values()))


def grade_order(cards: Mapping[str, Scorecard]) -> list[str]:
    """Grade labels from the lowest band to the highest: the default scorecard's bands, then
    labels only other scorecards use."""
    out: list[str] = []
    first = _default(cards)
    ordered = [first, *[c for c in cards.values() if c is not first]] if first else []
    for card in ordered:
        for band in card.scheme.bands:
            if band.label not in out:
                out.append(band.label)
    return out


def grade_palette(cards: Mapping[str, Scorecard], palette: Palette | str) -> dict[str, str]:
    """One colour per grade label (see :func:`ui.charts.grade_colors`)."""
    labels = grade_order(cards)
    own: dict[str, str | None] = {}
    for card in cards.values():
        for band in card.scheme.bands:
            own.setdefault(band.label, band.color)
    return grade_colors(labels, palette=palette, band_colors=[own.get(x) for x in labels])


def lowest_grade(cards: Mapping[str, Scorecard]) -> str | None:
    order = grade_order(cards)
    return order[0] if order else None


def band_edges(card: Scorecard) -> list[tuple[str, float, float]]:
    return card.scheme.band_edges()


def groups_of(cards: Mapping[str, Scorecard]) -> list[tuple[str, str]]:
    """``(group id, label)`` over the scorecards, the default scorecard's order first."""
    out: dict[str, str] = {}
    first = _default(cards)
    ordered = [first, *[c for c in cards.values() if c is not first]] if first else []
    for card in ordered:
        for g in card.groups:
            out.setdefault(g.id, g.title)
    return list(out.items())


def grade_expr(column: str, card: Scorecard) -> pl.Expr:
    """The band label of a 0-100 score column in a scorecard's scheme (as the engine grades)."""
    return scoring.grade_expr(pl.col(column), card.scheme)


def grade_of(score: float | None, card: Scorecard) -> str | None:
    """The band label of a 0-100 score (an edge belongs to the higher band)."""
    if score is None:
        return None
    for label, _lower, upper in card.scheme.band_edges():
        if score < upper or upper >= 100.0:
            return label
    return None


# --------------------------------------------------------------------------- big portfolios

CHART_SAMPLE = 20_000


def sample(frame: pl.DataFrame, n: int = CHART_SAMPLE, *, seed: int = 0) -> pl.DataFrame:
    """At most ``n`` rows, a seeded random sample when there are more (for charts that draw
    every point: a browser cannot draw a million)."""
    return frame if frame.height <= n else frame.sample(n, seed=seed)


# --------------------------------------------------------------------------- overview


@dataclass(frozen=True)
class Kpis:
    accounts: int
    scored: int
    arr: float
    average_score: float | None
    at_risk_arr: float
    at_risk_accounts: int


def kpis(scored: pl.DataFrame, *, as_of: date, risk_grade: str | None, days: int = 183) -> Kpis:
    """Headline numbers. At-risk ARR: accounts in the lowest grade whose renewal date falls in
    the ``days`` after ``as_of`` (default: the next two quarters)."""
    risk = at_risk(scored, as_of=as_of, risk_grade=risk_grade, days=days)
    avg = scored.get_column("score").mean() if scored.height else None
    return Kpis(
        accounts=scored.height,
        scored=int(scored.get_column("score").is_not_null().sum()) if scored.height else 0,
        arr=float(scored.get_column("arr").sum() or 0.0) if scored.height else 0.0,
        average_score=float(avg) if isinstance(avg, int | float) else None,
        at_risk_arr=float(risk.get_column("arr").sum() or 0.0) if risk.height else 0.0,
        at_risk_accounts=risk.height,
    )


def at_risk(
    scored: pl.DataFrame, *, as_of: date, risk_grade: str | None, days: int = 183
) -> pl.DataFrame:
    """Accounts in ``risk_grade`` renewing within ``days`` of ``as_of``, largest ARR first."""
    if risk_grade is None or "renewal_date" not in scored.columns or scored.height == 0:
        return scored.clear()
    end = as_of + timedelta(days=days)
    return scored.filter(
        (pl.col("grade") == risk_grade)
        & (pl.col("renewal_date") >= as_of)
        & (pl.col("renewal_date") <= end)
    ).sort("arr", descending=True)


def grade_mix(scored: pl.DataFrame) -> pl.DataFrame:
    """``grade`` (null -> 'No score'), ``accounts``, ``arr``."""
    return (
        scored.with_columns(pl.col("grade").fill_null(NO_GRADE))
        .group_by("grade")
        .agg(pl.len().alias("accounts"), pl.col("arr").sum().alias("arr"))
        .sort("grade")
    )


def grade_mix_by(scored: pl.DataFrame, split: str) -> pl.DataFrame:
    """``split``, ``grade``, ``accounts``, ``arr``."""
    return (
        scored.with_columns(pl.col("grade").fill_null(NO_GRADE), pl.col(split).cast(pl.Utf8))
        .group_by(split, "grade")
        .agg(pl.len().alias("accounts"), pl.col("arr").sum().alias("arr"))
        .sort(split, "grade")
    )


# --------------------------------------------------------------------------- history


def history_dates(history: pl.DataFrame) -> list[date]:
    if history.height == 0:
        return []
    return history.get_column("as_of").unique().sort().to_list()


def average_trend(
    history: pl.DataFrame, *, end: date | None = None, weeks: int = 13
) -> pl.DataFrame:
    """Average score per as-of date over the ``weeks`` weeks up to ``end``: ``as_of``, ``score``."""
    h = history
    if end is not None:
        h = h.filter((pl.col("as_of") <= end) & (pl.col("as_of") > end - timedelta(weeks=weeks)))
    return (
        h.group_by("as_of")
        .agg(pl.col("score").mean())
        .filter(pl.col("score").is_not_null())
        .sort("as_of")
    )


def change_over(trend: pl.DataFrame) -> float | None:
    """Last minus first value of a trend (``score``), or None with fewer than two points."""
    vals = (
        trend.get_column("score").drop_nulls() if trend.height else pl.Series([], dtype=pl.Float64)
    )
    if vals.len() < 2:
        return None
    return float(vals[-1] - vals[0])


def date_before(dates: Sequence[date], end: date, *, weeks: int) -> date | None:
    """The latest date in ``dates`` on or before ``end - weeks``, else the earliest one before
    ``end`` (so a short history still compares something), else None."""
    target = end - timedelta(weeks=weeks)
    earlier = [d for d in dates if d <= target]
    if earlier:
        return max(earlier)
    before = [d for d in dates if d < end]
    return min(before) if before else None


def movers(
    history: pl.DataFrame, accounts: pl.DataFrame, *, start: date, end: date, n: int = 10
) -> pl.DataFrame:
    """Largest rises and drops of the overall score between two dates, with the grades:
    ``account_id``, ``name``, ``score_before``, ``score_after``, ``change``,
    ``grade_before``, ``grade_after``, ``arr`` (``n`` drops then ``n`` rises)."""
    a = history.filter(pl.col("as_of") == start).select(
        "account_id", pl.col("score").alias("score_before"), pl.col("grade").alias("grade_before")
    )
    b = history.filter(pl.col("as_of") == end).select(
        "account_id", pl.col("score").alias("score_after"), pl.col("grade").alias("grade_after")
    )
    both = (
        a.join(b, on="account_id", how="inner")
        .with_columns((pl.col("score_after") - pl.col("score_before")).alias("change"))
        .filter(pl.col("change").is_not_null())
        .join(accounts.select("account_id", "name", "arr"), on="account_id", how="inner")
    )
    drops = both.filter(pl.col("change") < 0).sort("change").head(n)
    rises = both.filter(pl.col("change") > 0).sort("change", descending=True).head(n)
    cols = [
        "account_id",
        "name",
        "score_before",
        "score_after",
        "change",
        "grade_before",
        "grade_after",
        "arr",
    ]
    return pl.concat([drops.select(cols), rises.select(cols)])


def grade_mix_over_time(history: pl.DataFrame) -> pl.DataFrame:
    """``as_of``, ``grade``, ``accounts``, ``arr`` (needs ``arr`` in the history)."""
    return (
        history.with_columns(pl.col("grade").fill_null(NO_GRADE))
        .group_by("as_of", "grade")
        .agg(pl.len().alias("accounts"), pl.col("arr").sum().alias("arr"))
        .sort("as_of", "grade")
    )


def group_trends(history: pl.DataFrame, groups: Sequence[tuple[str, str]]) -> pl.DataFrame:
    """Average score per group and date: ``as_of``, ``group``, ``score``."""
    ids = [g for g, _ in groups if g in history.columns]
    if not ids:
        return pl.DataFrame(schema={"as_of": pl.Date, "group": pl.Utf8, "score": pl.Float64})
    return (
        history.group_by("as_of")
        .agg([pl.col(g).mean() for g in ids])
        .unpivot(index="as_of", on=ids, variable_name="group", value_name="score")
        .sort("as_of", "group")
    )


def transitions(history: pl.DataFrame, *, start: date, end: date) -> pl.DataFrame:
    """Accounts and ARR per (grade at ``start``, grade at ``end``); an account present at one
    date only moves from or to null ('No score')."""
    a = history.filter(pl.col("as_of") == start).select(
        "account_id", pl.col("grade").alias("from_grade"), pl.col("arr").alias("arr_a")
    )
    b = history.filter(pl.col("as_of") == end).select(
        "account_id", pl.col("grade").alias("to_grade"), pl.col("arr").alias("arr_b")
    )
    both = a.join(b, on="account_id", how="full", coalesce=True)
    return (
        both.with_columns(pl.coalesce("arr_b", "arr_a").alias("arr"))
        .group_by("from_grade", "to_grade")
        .agg(pl.len().alias("accounts"), pl.col("arr").sum().alias("arr"))
        .sort("from_grade", "to_grade")
    )


# --------------------------------------------------------------------------- customer 360


def measure_table(contributions: pl.DataFrame, card: Scorecard, *, as_of: date) -> pl.DataFrame:
    """The Customer 360 scorecard: one row per measure (per product for product metrics):
    ``group``, ``group_label``, ``measure``, ``label``, ``product``, ``value`` (text: a number
    or a level), ``value_as_of``, ``age_days``, ``score``, ``grade`` (the measure score's
    band), ``weight`` (effective share of the overall, 0-1), ``contribution`` (points),
    ``stale``, ``missing``, ``help``."""
    meta = []
    for g, m in card.measures:
        meta.append(
            {
                "group": g.id,
                "group_label": g.title,
                "measure": m.id,
                "label": m.title,
                "help": _measure_help(m),
                "validity_days": m.validity_days,
            }
        )
    info = pl.DataFrame(
        meta,
        schema={
            "group": pl.Utf8,
            "group_label": pl.Utf8,
            "measure": pl.Utf8,
            "label": pl.Utf8,
            "help": pl.Utf8,
            "validity_days": pl.Int64,
        },
    )
    c = contributions.filter(pl.col("measure").is_in(info.get_column("measure").to_list()))
    if c.height == 0:
        return pl.DataFrame()
    value_text = (
        pl.when(pl.col("level").is_not_null())
        .then(pl.col("level"))
        .otherwise(pl.col("value").round(3).cast(pl.Utf8))
    )
    score_col = "raw_measure_score" if "raw_measure_score" in c.columns else "score"
    out = c.join(info.drop("group"), on="measure", how="left").select(
        "group",
        "group_label",
        "measure",
        "label",
        "product",
        value_text.alias("value"),
        pl.col("value_as_of").cast(pl.Date),
        (pl.lit(as_of) - pl.col("value_as_of").cast(pl.Date)).dt.total_days().alias("age_days"),
        pl.col(score_col).alias("score"),
        pl.col("weight"),
        (pl.col("weight") * pl.col("score").fill_null(0.0)).alias("contribution"),
        pl.col("stale"),
        pl.col("missing"),
        "help",
    )
    grades = [grade_of(s, card) for s in out.get_column("score").to_list()]
    order = {m.id: i for i, (_, m) in enumerate(card.measures)}
    return (
        out.with_columns(pl.Series("grade", grades, dtype=pl.Utf8))
        .with_columns(pl.col("measure").replace_strict(order, default=999).alias("_o"))
        .sort("_o", "product", nulls_last=False)
        .drop("_o")
    )


def _measure_help(m: object) -> str:
    text = getattr(m, "help", "") or ""
    mp = getattr(m, "map", None)
    if isinstance(mp, LevelsMap):
        levels = "; ".join(
            f"{lv.label} {lv.score:g}" + (f" ({lv.help})" if lv.help else "") for lv in mp.levels
        )
        text = f"{text} Levels: {levels}".strip()
    validity = getattr(m, "validity_days", None)
    if validity:
        text = f"{text} Stale after {validity} days.".strip()
    return text


def explanation_parts(
    parts: pl.DataFrame, card_labels: Mapping[str, str], *, top: int = 8
) -> pl.DataFrame:
    """Readable waterfall steps from :func:`engine.explain.explain_change` rows of one account:
    ``label``, ``kind``, ``amount``. The ``top`` largest parts by size are kept, the rest is
    summed into 'Other changes' so the steps still add up exactly."""
    if parts.height == 0:
        return pl.DataFrame(schema={"label": pl.Utf8, "kind": pl.Utf8, "amount": pl.Float64})
    kind_text = {"score": "", "weight": " (weight)", "missing": " (missing/stale)"}
    rows = []
    for r in parts.iter_rows(named=True):
        if r["kind"] == "override":
            label = "Overrides"
        else:
            name = card_labels.get(r.get("measure") or "", r.get("measure") or "?")
            product = f" · {r['product']}" if r.get("product") else ""
            label = f"{name}{product}{kind_text.get(r['kind'], '')}"
        rows.append({"label": label, "kind": r["kind"], "amount": float(r["amount"])})
    frame = (
        pl.DataFrame(rows)
        .group_by("label", "kind", maintain_order=True)
        .agg(pl.col("amount").sum())
        .with_columns(pl.col("amount").abs().alias("_size"))
        .sort("_size", descending=True)
    )
    head, tail = frame.head(top), frame.slice(top)
    if tail.height:
        head = pl.concat(
            [
                head,
                pl.DataFrame(
                    {
                        "label": ["Other changes"],
                        "kind": ["other"],
                        "amount": [float(tail.get_column("amount").sum())],
                        "_size": [0.0],
                    }
                ),
            ]
        )
    return head.drop("_size")


def measure_labels(cards: Mapping[str, Scorecard]) -> dict[str, str]:
    out: dict[str, str] = {}
    for card in cards.values():
        for _, m in card.measures:
            out.setdefault(m.id, m.title)
    return out


def subjective_measures(card: Scorecard) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """Measures with levels (subjective or categorical): ``(metric, label, [(level, help)])``."""
    out = []
    for _, m in card.measures:
        if isinstance(m.map, LevelsMap):
            out.append((m.metric, m.title, [(lv.label, lv.help) for lv in m.map.levels]))
    return out


def override_reasons(card: Scorecard) -> dict[str, str]:
    """Override id -> its reason (manual overrides have the id ``manual``)."""
    return {o.id: (o.reason or o.id) for o in card.overrides}
