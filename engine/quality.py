"""The data-quality report: is the data good enough to trust the scores?

At an as-of date (default: the latest metric date), over the accounts that are customers then:

- **coverage** per metric: the share of accounts with a value (the latest on or before the
  date; any product counts for a product-level metric);
- **stale share** per metric: among those, the share whose latest value is older than the
  shortest validity period of the measures that read the metric (null when no measure of the
  active scorecards sets one);
- **outliers** per metric: values outside the metric's declared range (``data/metrics.yaml``)
  and values further than 5 scaled median absolute deviations from the median (robust, so a
  few extreme values cannot hide themselves);
- **accounts with no metrics**: customers without any metric value on or before the date;
- the **latest as-of** per metric, to spot a feed that stopped.

Metrics listed are those of the metric definitions, of the active scorecards and of the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import polars as pl

from engine import store
from engine.metrics import MetricDefinition, load_definitions
from engine.problems import InputError

MAD_LIMIT = 5.0


@dataclass(frozen=True)
class QualityReport:
    """``metrics``: one row per metric (see :func:`quality_report`); ``accounts_without_metrics``:
    account_id, name, segment, csm, arr of customers with no value at all."""

    as_of: date
    accounts: int
    metrics: pl.DataFrame
    accounts_without_metrics: pl.DataFrame

    def to_dict(self, *, limit: int = 100) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "accounts": self.accounts,
            "accounts_without_metrics": self.accounts_without_metrics.height,
            "accounts_without_metrics_sample": self.accounts_without_metrics.head(limit)
            .with_columns(pl.selectors.temporal().cast(pl.String))
            .to_dicts(),
            "metrics": self.metrics.with_columns(
                pl.selectors.temporal().cast(pl.String)
            ).to_dicts(),
        }


def _validity_by_metric(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    from engine.scorecard import parse_scorecard_yaml

    out: dict[str, int] = {}
    for sv in store.active_scorecard_versions(con).values():
        card = parse_scorecard_yaml(sv.yaml, default_id=sv.scorecard_id)
        for _, m in card.measures:
            if m.validity_days is not None:
                out[m.metric] = min(out.get(m.metric, m.validity_days), m.validity_days)
    return out


def quality_report(
    con: duckdb.DuckDBPyConnection,
    as_of: date | None = None,
    *,
    definitions: Mapping[str, MetricDefinition] | None = None,
    validity_days: Mapping[str, int] | None = None,
) -> QualityReport:
    """The report at ``as_of``. ``metrics`` columns: ``metric``, ``label``, ``group``,
    ``accounts_with_value``, ``coverage`` (0-1), ``stale`` (accounts), ``stale_share`` (0-1 of
    those with a value, null without a validity period), ``validity_days``, ``latest_as_of``,
    ``out_of_range``, ``outliers`` (values), ``min``, ``median``, ``max``. ``validity_days``
    defaults to the active scorecards' shortest validity per metric."""
    defs = dict(definitions if definitions is not None else load_definitions())
    validity = dict(validity_days if validity_days is not None else _validity_by_metric(con))
    if as_of is None:
        _, as_of = store.metric_date_range(con)
        if as_of is None:
            raise InputError("the database has no metric values: import some or run the demo")
    accounts = store.load_accounts(con, active_on=as_of)
    n = accounts.height
    latest = store.latest_metric_values(con, as_of).join(
        accounts.select("account_id"), on="account_id", how="semi"
    )
    metric_ids = sorted(
        set(defs) | set(validity) | set(latest.get_column("metric").unique().to_list())
    )
    ids = pl.DataFrame({"metric": metric_ids})
    ages = latest.with_columns((pl.lit(as_of) - pl.col("as_of")).dt.total_days().alias("age"))
    validity_frame = pl.DataFrame(
        {"metric": list(validity), "validity_days": list(validity.values())},
        schema={"metric": pl.String, "validity_days": pl.Int64},
    )
    per_account = (
        ages.join(validity_frame, on="metric", how="left")
        .group_by("metric", "account_id")
        .agg(
            (pl.col("age") <= pl.col("validity_days")).any().alias("fresh"),
            pl.col("validity_days").first(),
        )
        .group_by("metric")
        .agg(
            pl.len().alias("accounts_with_value"),
            pl.when(pl.col("validity_days").first().is_not_null())
            .then((~pl.col("fresh")).sum())
            .alias("stale"),
        )
    )
    ranges = pl.DataFrame(
        {
            "metric": list(defs),
            "_lo": [d.range[0] if d.range else None for d in defs.values()],
            "_hi": [d.range[1] if d.range else None for d in defs.values()],
            "label": [d.label for d in defs.values()],
            "group": [d.group for d in defs.values()],
        },
        schema={
            "metric": pl.String,
            "_lo": pl.Float64,
            "_hi": pl.Float64,
            "label": pl.String,
            "group": pl.String,
        },
    )
    value = pl.col("value")
    median = value.median().over("metric")
    mad = (value - median).abs().median().over("metric") * 1.4826
    stats = (
        latest.filter(value.is_not_null())
        .join(ranges, on="metric", how="left")
        .with_columns(
            (
                (value < pl.col("_lo")).fill_null(False) | (value > pl.col("_hi")).fill_null(False)
            ).alias("_out"),
            ((mad > 0) & ((value - median).abs() > MAD_LIMIT * mad)).alias("_outlier"),
        )
        .group_by("metric")
        .agg(
            pl.col("_out").sum().alias("out_of_range"),
            pl.col("_outlier").sum().alias("outliers"),
            value.min().alias("min"),
            value.median().alias("median"),
            value.max().alias("max"),
        )
    )
    freshest = latest.group_by("metric").agg(pl.col("as_of").max().alias("latest_as_of"))
    table = (
        ids.join(ranges.select("metric", "label", "group"), on="metric", how="left")
        .join(per_account, on="metric", how="left")
        .join(validity_frame, on="metric", how="left")
        .join(freshest, on="metric", how="left")
        .join(stats, on="metric", how="left")
        .with_columns(
            pl.col("accounts_with_value").fill_null(0),
            pl.col("label").fill_null(pl.col("metric")),
        )
        .with_columns(
            (pl.col("accounts_with_value") / n if n else pl.lit(None, dtype=pl.Float64)).alias(
                "coverage"
            ),
            (pl.col("stale") / pl.col("accounts_with_value")).alias("stale_share"),
            pl.col("out_of_range").fill_null(0),
            pl.col("outliers").fill_null(0),
        )
        .select(
            "metric",
            "label",
            "group",
            "accounts_with_value",
            "coverage",
            "stale",
            "stale_share",
            "validity_days",
            "latest_as_of",
            "out_of_range",
            "outliers",
            "min",
            "median",
            "max",
        )
        .sort("metric")
    )
    fields = [c for c in ("account_id", "name", "segment", "csm", "arr") if c in accounts.columns]
    without = accounts.join(latest.select("account_id").unique(), on="account_id", how="anti")
    return QualityReport(as_of, n, table, without.select(fields).sort("account_id"))
