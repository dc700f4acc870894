"""Why did a score move? The change of an account's score between two as-of dates, split
exactly into named parts.

The raw overall at a date is ``sum_m e_m * s_m`` over every (product, measure) unit, where
``e_m`` is the measure's effective weight (its weight share inside its group, times the group's
share of the overall, times the product's roll-up weight) and ``s_m`` its score (0 when
missing). Between dates 0 and 1:

- a measure with a value at both dates contributes a **score effect**
  ``(e0 + e1) / 2 * (s1 - s0)`` and a **weight effect** ``(e1 - e0) * (s0 + s1) / 2`` (weights
  move when other measures go missing or come back, i.e. renormalisation, or when the
  scorecard changed);
- a measure missing (or stale and excluded) at one date or both contributes a **missing
  effect** ``e1 * s1 - e0 * s0``;
- the **override effect** is ``(score1 - raw1) - (score0 - raw0)``.

The midpoint split makes ``score effect + weight effect == e1 * s1 - e0 * s0`` exactly, so the
parts sum to ``score1 - score0`` up to float rounding (well below 1e-9).
"""

from __future__ import annotations

import polars as pl

from engine.scoring import ScoreDetail

KEY = ["account_id", "product", "group", "measure"]


_NOISE = 1e-12  # points


def explain_change(before: ScoreDetail, after: ScoreDetail) -> pl.DataFrame:
    """Per account and part: ``account_id``, ``kind`` (score | weight | missing | override),
    ``product``, ``group``, ``measure``, ``amount`` (points of the overall score).

    Accounts without a score at either date are left out (there is nothing to split)."""
    c0 = _contrib(before, "0")
    c1 = _contrib(after, "1")
    both = c0.join(c1, on=KEY, how="full", coalesce=True, nulls_equal=True)
    both = both.with_columns(
        pl.col("e0").fill_null(0.0),
        pl.col("e1").fill_null(0.0),
        pl.col("s0").fill_null(0.0),
        pl.col("s1").fill_null(0.0),
        pl.col("p0").fill_null(False),
        pl.col("p1").fill_null(False),
    )
    present = pl.col("p0") & pl.col("p1")
    score_eff = (pl.col("e0") + pl.col("e1")) / 2 * (pl.col("s1") - pl.col("s0"))
    weight_eff = (pl.col("e1") - pl.col("e0")) * (pl.col("s0") + pl.col("s1")) / 2
    missing_eff = pl.col("e1") * pl.col("s1") - pl.col("e0") * pl.col("s0")
    parts = both.select(
        *KEY,
        pl.when(present).then(score_eff).otherwise(0.0).alias("score"),
        pl.when(present).then(weight_eff).otherwise(0.0).alias("weight"),
        pl.when(present).then(0.0).otherwise(missing_eff).alias("missing"),
    ).unpivot(index=KEY, variable_name="kind", value_name="amount")
    # float noise of summing in another order is not a part (and would make reasons differ)
    parts = parts.filter(pl.col("amount").abs() > _NOISE)
    s0 = before.company.select(
        "account_id", pl.col("score").alias("score0"), pl.col("raw_score").alias("raw0")
    )
    s1 = after.company.select(
        "account_id", pl.col("score").alias("score1"), pl.col("raw_score").alias("raw1")
    )
    scored = s0.join(s1, on="account_id", how="inner").filter(
        pl.col("score0").is_not_null() & pl.col("score1").is_not_null()
    )
    overrides = scored.select(
        "account_id",
        pl.lit("override").alias("kind"),
        ((pl.col("score1") - pl.col("raw1")) - (pl.col("score0") - pl.col("raw0"))).alias("amount"),
    ).filter(pl.col("amount").abs() > _NOISE)
    parts = parts.join(scored.select("account_id"), on="account_id", how="semi")
    out = pl.concat(
        [parts.select("account_id", "kind", "product", "group", "measure", "amount"), overrides],
        how="diagonal_relaxed",
    )
    return out.sort(["account_id", pl.col("amount").abs()], descending=[False, True])


def change_summary(before: ScoreDetail, after: ScoreDetail) -> pl.DataFrame:
    """Per account: score before and after, the change, and the sum of the explained parts
    (equal to the change)."""
    parts = (
        explain_change(before, after)
        .group_by("account_id")
        .agg(pl.col("amount").sum().alias("explained"))
    )
    s0 = before.company.select("account_id", pl.col("score").alias("score_before"))
    s1 = after.company.select("account_id", pl.col("score").alias("score_after"))
    out = s0.join(s1, on="account_id", how="inner").with_columns(
        (pl.col("score_after") - pl.col("score_before")).alias("change")
    )
    return out.join(parts, on="account_id", how="left").with_columns(
        pl.col("explained").fill_null(0.0)
    )


def _contrib(detail: ScoreDetail, suffix: str) -> pl.DataFrame:
    c = detail.contributions
    return c.select(
        *KEY,
        pl.col("weight").alias(f"e{suffix}"),
        pl.col("score").fill_null(0.0).alias(f"s{suffix}"),
        (~pl.col("missing")).alias(f"p{suffix}"),
    )
