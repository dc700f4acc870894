"""Backtest: does the score predict renewals?

For every past renewal, the account's score from the latest snapshot on or before
``renewal_date - horizon_days`` is set against what the customer did. Outcomes are taken per
account and renewal date: product rows of one renewal are added up, and the renewal counts as
*renewed* when the account's ``arr_after`` is above 0 (a full churn is ``arr_after == 0``).

Rules, written down so that they are not accidental:

- **Snapshots.** Without stored history the snapshots are the distinct ``as_of`` dates of the
  metric values; the score at a snapshot is computed on the fly with
  :func:`engine.scoring.score`, once per distinct snapshot date for the accounts renewing from
  it (no loop over accounts). With ``history`` (a stored ``score_history`` frame of the same
  scorecard version) the latest stored row on or before the date is used instead.
- A renewal with no snapshot on or before its date, or whose score is null (no metric value
  at all), is left out and counted in ``unscored``.
- **AUC** is the probability that a renewed account scored higher than a churned one (ties
  count one half); its interval is a percentile bootstrap (Poisson resampling weights).
- **Bands**: renewal rate = renewed / renewals; GRR = sum(min(arr_after, arr_before)) /
  sum(arr_before), taken per product row before adding up (a downsell of one product is not
  hidden by the expansion of another); NRR = sum(arr_after) / sum(arr_before).
- **Lift**: renewals ranked by score into ten equal-count deciles, 1 = the lowest scores;
  ``churn_lift`` = the decile's churn rate / the overall churn rate.
- **Calibration**: a one-variable logistic model of renewal on the score turns a score into a
  renewal probability; renewals are put into ten equal-count bins of that probability and the
  mean predicted probability is set beside the actual renewal rate.
- **Per group**: the same AUC and band table for each group score (e.g. Adoption), banded with
  the default scorecard's grade edges ("do green-Adoption accounts renew more?").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import pairwise
from typing import Any

import numpy as np
import polars as pl

from engine.problems import InputError, Problem
from engine.scorecard import Scheme, Scorecard
from engine.scoring import OUTPUT_BASE, score

RENEWED = "renewed"
#: Column names of the score output that are not group or measure scores.
_NOT_PARTS = set(OUTPUT_BASE)
#: Grade edges used when a scheme has no bands (numeric): 20-point bins.
_NUMERIC_EDGES = (20.0, 40.0, 60.0, 80.0)


# --------------------------------------------------------------------------- scorecard sets


def scorecard_set(
    draft: Scorecard, active: Mapping[str, Scorecard] | None = None, *, default: str = "default"
) -> dict[str, Scorecard]:
    """The scorecards to score with when ``draft`` replaces its namesake in ``active``.

    The draft takes the place of the active scorecard with the same id (a draft of the
    default one takes the default's place whatever its id). Assignment rules that name a
    scorecard outside the set are dropped, so a single file can be backtested on its own: its
    accounts are then all scored by it."""
    cards = dict(active or {})
    key = draft.id if draft.id in cards else default
    if default not in cards or key == default:
        key = default
    cards[key] = draft
    known = set(cards)
    for cid, card in list(cards.items()):
        kept = tuple(a for a in card.assignment if a.scorecard in known)
        if len(kept) != len(card.assignment):
            cards[cid] = card.model_copy(update={"assignment": kept})
    return cards


def _as_cards(
    scorecards: Scorecard | Mapping[str, Scorecard], default: str
) -> dict[str, Scorecard]:
    if isinstance(scorecards, Scorecard):
        return scorecard_set(scorecards, None, default=default)
    cards = dict(scorecards)
    if default not in cards:
        if len(cards) == 1:
            return scorecard_set(next(iter(cards.values())), None, default=default)
        raise InputError(f"no default scorecard {default!r} among {sorted(cards)}")
    return cards


def group_labels(cards: Mapping[str, Scorecard]) -> dict[str, str]:
    """Group id -> label over a set of scorecards (the first label seen wins)."""
    out: dict[str, str] = {}
    for card in cards.values():
        for g in card.groups:
            out.setdefault(g.id, g.title)
    return out


def measure_labels(cards: Mapping[str, Scorecard]) -> dict[str, str]:
    out: dict[str, str] = {}
    for card in cards.values():
        for _, m in card.measures:
            out.setdefault(m.id, m.title)
    return out


# --------------------------------------------------------------------------- outcomes


def renewal_outcomes(renewals: pl.DataFrame) -> pl.DataFrame:
    """One row per (account_id, renewal_date): ``arr_before``, ``arr_after``, ``retained``
    (sum over product rows of min(arr_after, arr_before)) and ``renewed`` (arr_after > 0)."""
    need = {"account_id", "renewal_date", "arr_before", "arr_after"}
    missing = sorted(need - set(renewals.columns))
    if missing:
        raise InputError([Problem("renewals", f"missing column(s) {', '.join(missing)}")])
    if renewals.height == 0:
        raise InputError(
            [
                Problem(
                    "renewals",
                    "there are no renewals: a backtest needs past renewals with "
                    "their outcome (arr_after, 0 = churned)",
                )
            ]
        )
    return (
        renewals.lazy()
        .select(
            pl.col("account_id").cast(pl.Utf8),
            pl.col("renewal_date").cast(pl.Date),
            pl.col("arr_before").cast(pl.Float64),
            pl.col("arr_after").cast(pl.Float64),
        )
        .with_columns(pl.min_horizontal("arr_after", "arr_before").alias("retained"))
        .group_by("account_id", "renewal_date")
        .agg(pl.col("arr_before", "arr_after", "retained").sum())
        .with_columns((pl.col("arr_after") > 0).alias(RENEWED))
        .sort("renewal_date", "account_id")
        .collect()
    )


# --------------------------------------------------------------------------- observations


def renewal_observations(
    accounts: pl.DataFrame,
    metrics: pl.DataFrame,
    renewals: pl.DataFrame,
    scorecards: Scorecard | Mapping[str, Scorecard],
    *,
    horizon_days: int = 90,
    default: str = "default",
    history: pl.DataFrame | None = None,
    manual_overrides: pl.DataFrame | None = None,
    product_arr: pl.DataFrame | None = None,
    snapshot_dates: Sequence[date] | None = None,
) -> tuple[pl.DataFrame, int]:
    """Each renewal with the score the account had ``horizon_days`` before it.

    Returns ``(observations, unscored)``: one row per scored renewal with ``account_id``,
    ``renewal_date``, ``score_date``, ``arr_before``, ``arr_after``, ``retained``, ``renewed``,
    the account attributes ``segment``/``region``/``csm``/``lifecycle_stage`` when present, and
    the score columns (``scorecard``, ``score``, ``grade``, one per group and measure);
    ``unscored`` counts the renewals left out (no snapshot before, or no data).

    ``snapshot_dates``: the as-of grid to score on when there is no ``history`` (say the
    store's weekly snapshot dates, so that a draft is read on the same dates as the stored
    history of the active scorecards); default: the distinct ``as_of`` dates of ``metrics``."""
    if horizon_days < 0:
        raise InputError([Problem("horizon_days", f"must be 0 or more, got {horizon_days}")])
    cards = _as_cards(scorecards, default)
    outcomes = renewal_outcomes(renewals)
    targets = outcomes.with_columns(
        (pl.col("renewal_date") - pl.duration(days=horizon_days)).alias("_target")
    )
    if history is not None:
        scored = _from_history(targets, history)
        first = history.get_column("as_of").min() if history.height else None
    else:
        snaps = (
            pl.DataFrame(
                {"score_date": sorted(set(snapshot_dates))}, schema={"score_date": pl.Date}
            )
            if snapshot_dates
            else _snapshot_dates(metrics)
        )
        scored = _on_the_fly(
            targets, snaps, accounts, metrics, cards, default, manual_overrides, product_arr
        )
        first = snaps.get_column("score_date").min() if snaps.height else None
    if scored.height == 0 or scored.get_column("score").is_null().all():
        raise InputError(
            [Problem("renewals", _no_score_message(outcomes, first, horizon_days))]  # type: ignore[arg-type]
        )
    kept = scored.filter(pl.col("score").is_not_null())
    attrs = [c for c in ("segment", "region", "csm", "lifecycle_stage") if c in accounts.columns]
    if attrs:
        kept = kept.join(
            accounts.select(
                pl.col("account_id").cast(pl.Utf8), *[pl.col(a).cast(pl.Utf8) for a in attrs]
            ),
            on="account_id",
            how="left",
        )
    return kept.sort("renewal_date", "account_id"), outcomes.height - kept.height


def _snapshot_dates(metrics: pl.DataFrame) -> pl.DataFrame:
    return (
        metrics.lazy()
        .select(pl.col("as_of").cast(pl.Date).alias("score_date"))
        .unique()
        .sort("score_date")
        .collect()
    )


def _attach_snapshot(targets: pl.DataFrame, snaps: pl.DataFrame) -> pl.DataFrame:
    return (
        targets.sort("_target")
        .join_asof(snaps, left_on="_target", right_on="score_date", strategy="backward")
        .drop("_target")
    )


def _on_the_fly(
    targets: pl.DataFrame,
    snaps: pl.DataFrame,
    accounts: pl.DataFrame,
    metrics: pl.DataFrame,
    cards: dict[str, Scorecard],
    default: str,
    manual_overrides: pl.DataFrame | None,
    product_arr: pl.DataFrame | None,
) -> pl.DataFrame:
    """Each renewal's score at its snapshot date, computed without writing anything."""
    dated = _attach_snapshot(targets, snaps).filter(pl.col("score_date").is_not_null())
    if dated.height == 0:
        return pl.DataFrame()
    keys = dated.select("account_id", "score_date").unique()
    if _calendar_bound(cards):
        scores = _score_per_date(
            keys, accounts, metrics, cards, default, manual_overrides, product_arr
        )
    else:
        scores = _score_shifted(
            keys, accounts, metrics, cards, default, manual_overrides, product_arr
        )
    return dated.join(scores, on=["account_id", "score_date"], how="left")


def _calendar_bound(cards: Mapping[str, Scorecard]) -> bool:
    """Whether an override is bounded in calendar time (``starts_on``/``expires_on``)."""
    return any(o.starts_on or o.expires_on for c in cards.values() for o in c.overrides)


_SEP = "\x1f"


def _score_shifted(
    keys: pl.DataFrame,
    accounts: pl.DataFrame,
    metrics: pl.DataFrame,
    cards: dict[str, Scorecard],
    default: str,
    manual_overrides: pl.DataFrame | None,
    product_arr: pl.DataFrame | None,
) -> pl.DataFrame:
    """Every (account, snapshot date) pair scored in one call of :func:`score`.

    Each pair becomes a virtual account whose metric dates are shifted by ``anchor -
    score_date`` days, and everything is scored at ``anchor`` (the latest snapshot date).
    Scoring reads dates only relative to the as-of date (latest value on or before it, ages
    for staleness, change windows, the life of manual overrides), so the result equals
    scoring each pair at its own date; calendar-bound overrides are the exception and take
    the per-date path instead."""
    anchor: date = keys.get_column("score_date").max()  # type: ignore[assignment]
    pairs = keys.with_columns(
        pl.concat_str(
            [pl.col("account_id"), pl.col("score_date").cast(pl.Utf8)], separator=_SEP
        ).alias("_vid"),
        (pl.lit(anchor) - pl.col("score_date")).alias("_shift"),
    )
    virtual_accounts = (
        accounts.with_columns(pl.col("account_id").cast(pl.Utf8))
        .join(pairs.select("account_id", "_vid"), on="account_id", how="inner")
        .with_columns(pl.col("_vid").alias("account_id"))
        .drop("_vid")
    )
    virtual_metrics = (
        metrics.lazy()
        .with_columns(pl.col("account_id").cast(pl.Utf8), pl.col("as_of").cast(pl.Date))
        .join(pairs.lazy(), on="account_id", how="inner")
        .filter(pl.col("as_of") <= pl.col("score_date"))
        .with_columns(
            (pl.col("as_of") + pl.col("_shift")).alias("as_of"),
            pl.col("_vid").alias("account_id"),
        )
        .drop("_vid", "_shift", "score_date")
        .collect()
    )
    manual = None
    if manual_overrides is not None and manual_overrides.height:
        manual = (
            manual_overrides.with_columns(pl.col("account_id").cast(pl.Utf8))
            .join(pairs, on="account_id", how="inner")
            .with_columns(
                (pl.col("created_on") + pl.col("_shift")).alias("created_on"),
                (pl.col("expires_on") + pl.col("_shift")).alias("expires_on"),
                pl.col("_vid").alias("account_id"),
            )
            .drop("_vid", "_shift", "score_date")
        )
    parr = None
    if product_arr is not None and product_arr.height:
        parr = (
            product_arr.with_columns(pl.col("account_id").cast(pl.Utf8))
            .join(pairs.select("account_id", "_vid"), on="account_id", how="inner")
            .with_columns(pl.col("_vid").alias("account_id"))
            .drop("_vid")
        )
    scored = score(
        virtual_accounts,
        virtual_metrics,
        cards,
        anchor,
        default=default,
        manual_overrides=manual,
        product_arr=parr,
    )
    back = pairs.select(
        pl.col("_vid").alias("account_id"), pl.col("account_id").alias("_real"), "score_date"
    )
    return (
        scored.join(back, on="account_id", how="inner")
        .with_columns(pl.col("_real").alias("account_id"))
        .drop("_real")
    )


def _score_per_date(
    keys: pl.DataFrame,
    accounts: pl.DataFrame,
    metrics: pl.DataFrame,
    cards: dict[str, Scorecard],
    default: str,
    manual_overrides: pl.DataFrame | None,
    product_arr: pl.DataFrame | None,
) -> pl.DataFrame:
    """Score each distinct snapshot date once, for just the accounts renewing from it."""
    accounts = accounts.with_columns(pl.col("account_id").cast(pl.Utf8))
    acc_by_date = accounts.join(keys, on="account_id", how="inner").partition_by(
        "score_date", as_dict=True
    )
    met_by_date = (
        metrics.lazy()
        .with_columns(pl.col("account_id").cast(pl.Utf8), pl.col("as_of").cast(pl.Date))
        .join(keys.lazy(), on="account_id", how="inner")
        .filter(pl.col("as_of") <= pl.col("score_date"))
        .collect()
        .partition_by("score_date", as_dict=True)
    )
    empty_metrics = metrics.clear()
    frames = []
    for (day,), accs in sorted(acc_by_date.items()):
        mets = met_by_date.get((day,))
        scored = score(
            accs.drop("score_date"),
            mets.drop("score_date") if mets is not None else empty_metrics,
            cards,
            day,
            default=default,
            manual_overrides=manual_overrides,
            product_arr=product_arr,
        )
        frames.append(scored.with_columns(pl.lit(day).alias("score_date")))
    return pl.concat(frames, how="diagonal_relaxed")


def _from_history(targets: pl.DataFrame, history: pl.DataFrame) -> pl.DataFrame:
    hist = (
        history.with_columns(pl.col("account_id").cast(pl.Utf8), pl.col("as_of").cast(pl.Date))
        .rename({"as_of": "score_date"})
        .sort("score_date")
    )
    drop = [
        c
        for c in ("arr_before", "arr_after", "retained", RENEWED, "renewal_date")
        if c in hist.columns
    ]
    return (
        targets.sort("_target")
        .join_asof(
            hist.drop(drop),
            left_on="_target",
            right_on="score_date",
            by="account_id",
            strategy="backward",
            check_sortedness=False,  # both sides are sorted on the date
        )
        .drop("_target")
        .filter(pl.col("score_date").is_not_null())
    )


def _no_score_message(outcomes: pl.DataFrame, first_snapshot: date | None, horizon: int) -> str:
    first_renewal: Any = outcomes.get_column("renewal_date").min()
    if first_snapshot is None:
        return "there are no metric values, so no renewal can be scored"
    return (
        f"no renewal has a score on or before its renewal date minus {horizon} days: the "
        f"earliest snapshot is {first_snapshot}, the earliest renewal {first_renewal}. "
        "Use a smaller horizon (0 for a single snapshot taken before the outcome) or import "
        "older metric values"
    )


# --------------------------------------------------------------------------- AUC


def one_blas_thread() -> Any:
    """A context that keeps BLAS on one thread: model fits here make many small matrix
    products, for which thread hand-overs cost far more than they save (tens of times slower
    on two cores)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _clean(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=float)
    ok = np.isfinite(s) & np.isfinite(y)
    return s[ok], y[ok]


def auc(scores: Any, labels: Any) -> float | None:
    """Area under the ROC curve of ``scores`` for the positive ``labels`` (1 = renewed);
    ties count one half. ``None`` when either class is absent."""
    s, y = _clean(scores, labels)
    if s.size == 0 or y.min() == y.max():
        return None
    order = np.argsort(s, kind="stable")
    s, y = s[order], y[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    pos = np.add.reduceat(y, starts)
    neg = np.add.reduceat(1.0 - y, starts)
    below = np.cumsum(neg) - neg
    return float(np.sum(pos * (below + 0.5 * neg)) / (pos.sum() * neg.sum()))


def auc_interval(
    scores: Any, labels: Any, *, bootstrap: int = 200, seed: int = 0, level: float = 0.95
) -> tuple[float | None, float | None, float | None]:
    """``(auc, low, high)``: the AUC and its percentile bootstrap interval.

    Resampling uses Poisson(1) weights per row (the usual large-sample stand-in for drawing
    with replacement), computed for all resamples at once on the sorted scores."""
    return auc_intervals([scores], labels, bootstrap=bootstrap, seed=seed, level=level)[0]


def auc_intervals(
    columns: list[Any], labels: Any, *, bootstrap: int = 200, seed: int = 0, level: float = 0.95
) -> list[tuple[float | None, float | None, float | None]]:
    """:func:`auc_interval` for several score columns over the same rows, sharing the
    resampling weights (a paired bootstrap, and one random draw for all the columns). Rows
    where a column is missing (NaN) do not count for that column."""
    y_all = np.asarray(labels, dtype=float)
    prepared = []
    for col in columns:
        s_all = np.asarray(col, dtype=float)
        ok = np.isfinite(s_all) & np.isfinite(y_all)
        idx = np.flatnonzero(ok)
        order = idx[np.argsort(s_all[idx], kind="stable")]
        s, y = s_all[order], y_all[order]
        point = auc(s, y)
        starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]]) if s.size else np.zeros(0, int)
        prepared.append((point, order, y, starts))
    n = y_all.size
    dists: list[list[np.ndarray]] = [[] for _ in columns]
    if bootstrap > 0 and n and any(p[0] is not None for p in prepared):
        rng = np.random.default_rng(seed)
        chunk = max(1, min(bootstrap, 4_000_000 // max(1, n)))
        done = 0
        while done < bootstrap:
            b = min(chunk, bootstrap - done)
            weights = rng.poisson(1.0, size=(b, n)).astype(np.float32)
            for k, (point, order, y, starts) in enumerate(prepared):
                if point is None:
                    continue
                w = weights[:, order]
                wy = w * y.astype(np.float32)
                wn = w - wy
                if starts.size == y.size:  # no ties: every row is its own group
                    pos, neg = wy, wn
                else:
                    pos = np.add.reduceat(wy, starts, axis=1)
                    neg = np.add.reduceat(wn, starts, axis=1)
                below = np.cumsum(neg, axis=1) - neg
                denom = pos.sum(axis=1) * neg.sum(axis=1)
                num = np.sum(pos * (below + 0.5 * neg), axis=1)
                with np.errstate(invalid="ignore", divide="ignore"):
                    dists[k].append(np.where(denom > 0, num / denom, np.nan))
            done += b
    tail = (1.0 - level) / 2 * 100
    out: list[tuple[float | None, float | None, float | None]] = []
    for (point, *_), parts in zip(prepared, dists, strict=True):
        dist = np.concatenate(parts) if parts else np.zeros(0)
        dist = dist[np.isfinite(dist)]
        if point is None or dist.size == 0:
            out.append((point, None, None))
            continue
        low, high = np.percentile(dist, [tail, 100 - tail])
        out.append((point, float(low), float(high)))
    return out


# --------------------------------------------------------------------------- tables


def band_edges(scheme: Scheme) -> list[tuple[str, float, float]]:
    """``(label, lower, upper)`` per band; a numeric scheme gets 20-point bins."""
    if scheme.bands:
        return scheme.band_edges()
    edges = [0.0, *_NUMERIC_EDGES, 100.0]
    return [(f"{int(lo)}-{int(hi)}", lo, hi) for lo, hi in pairwise(edges)]


def band_expr(value: pl.Expr, edges: list[tuple[str, float, float]]) -> pl.Expr:
    """The band label of a 0-100 value; a value on an edge belongs to the higher band."""
    chain: Any = pl.when(value.is_null()).then(pl.lit(None, dtype=pl.Utf8))
    for label, _, upper in edges[:-1]:
        chain = chain.when(value < upper).then(pl.lit(label))
    return chain.otherwise(pl.lit(edges[-1][0]))


def band_table(obs: pl.DataFrame, by: str, order: list[str] | None = None) -> pl.DataFrame:
    """Per value of ``by``: ``accounts`` (renewals), ``renewed``, ``renewal_rate``,
    ``arr_before``, ``grr``, ``nrr``, ``mean_score``; in ``order`` when given, else by the
    mean score."""
    table = (
        obs.filter(pl.col(by).is_not_null())
        .group_by(by)
        .agg(
            pl.len().alias("accounts"),
            pl.col(RENEWED).sum().alias("renewed"),
            pl.col(RENEWED).mean().alias("renewal_rate"),
            pl.col("arr_before").sum(),
            (pl.col("retained").sum() / pl.col("arr_before").sum()).alias("grr"),
            (pl.col("arr_after").sum() / pl.col("arr_before").sum()).alias("nrr"),
            pl.col("_value").mean().alias("mean_score"),
        )
        .rename({by: "grade"})
        .with_columns(pl.col("accounts").cast(pl.Int64), pl.col("renewed").cast(pl.Int64))
    )
    if order:
        rank = {label: i for i, label in enumerate(order)}
        table = (
            table.with_columns(
                pl.col("grade")
                .replace_strict(rank, default=len(rank), return_dtype=pl.Int64)
                .alias("_o")
            )
            .sort("_o", "mean_score")
            .drop("_o")
        )
    else:
        table = table.sort("mean_score")
    return table


def lift_table(values: pl.Series, renewed: pl.Series, *, bins: int = 10) -> pl.DataFrame:
    """Deciles of ``values`` (1 = lowest) with renewal and churn rates and the churn lift."""
    frame = pl.DataFrame({"v": values, "y": renewed.cast(pl.Float64)}).drop_nulls()
    n = frame.height
    if n == 0:
        return pl.DataFrame()
    churn_all = 1.0 - frame.get_column("y").mean()  # type: ignore[operator]
    churned_total = n * churn_all
    table = (
        frame.sort("v")
        .with_columns(((pl.int_range(pl.len()) * bins) // pl.len() + 1).alias("decile"))
        .group_by("decile")
        .agg(
            pl.len().alias("accounts"),
            pl.col("v").min().alias("min_score"),
            pl.col("v").max().alias("max_score"),
            pl.col("y").mean().alias("renewal_rate"),
            (1 - pl.col("y")).sum().alias("_churned"),
        )
        .sort("decile")
        .with_columns(
            (1 - pl.col("renewal_rate")).alias("churn_rate"),
            ((1 - pl.col("renewal_rate")) / churn_all if churn_all > 0 else pl.lit(None))
            .cast(pl.Float64)
            .alias("churn_lift"),
            (pl.col("_churned").cum_sum() / churned_total if churned_total > 0 else pl.lit(None))
            .cast(pl.Float64)
            .alias("churn_captured"),
        )
        .drop("_churned")
        .with_columns(pl.col("decile").cast(pl.Int64), pl.col("accounts").cast(pl.Int64))
    )
    return table


def logistic_1d(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``(intercept, slope)`` of a one-variable logistic regression by Newton's method, with a
    tiny ridge so that a perfect separation still gives a finite (steep) curve."""
    xs = (x - 50.0) / 10.0  # per 10 points around the middle: well-conditioned
    beta = np.zeros(2)
    design = np.column_stack([np.ones_like(xs), xs])
    ridge = np.diag([0.0, 1e-3])
    for _ in range(50):
        eta = np.clip(design @ beta, -30, 30)
        p = 1.0 / (1.0 + np.exp(-eta))
        w = p * (1 - p)
        grad = design.T @ (y - p) - ridge @ beta
        hess = (design * w[:, None]).T @ design + ridge + np.eye(2) * 1e-9
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.max(np.abs(step)) < 1e-8:
            break
    slope = beta[1] / 10.0
    return float(beta[0] - 50.0 * slope), float(slope)


def calibration_table(
    values: pl.Series, renewed: pl.Series, *, bins: int = 10
) -> tuple[pl.DataFrame, tuple[float, float]]:
    """Predicted (logistic on the score) vs actual renewal rate in equal-count bins; and the
    model ``(intercept, slope per point)``."""
    frame = pl.DataFrame({"v": values, "y": renewed.cast(pl.Float64)}).drop_nulls()
    x = frame.get_column("v").to_numpy()
    y = frame.get_column("y").to_numpy()
    a, b = logistic_1d(x, y)
    p = 1.0 / (1.0 + np.exp(-np.clip(a + b * x, -30, 30)))
    n = frame.height
    bins = max(1, min(bins, n // 5 if n >= 10 else 1))
    table = (
        frame.with_columns(pl.Series("p", p))
        .sort("p", "v")
        .with_columns(((pl.int_range(pl.len()) * bins) // pl.len() + 1).alias("bin"))
        .group_by("bin")
        .agg(
            pl.len().alias("accounts"),
            pl.col("v").mean().alias("mean_score"),
            pl.col("p").mean().alias("predicted"),
            pl.col("y").mean().alias("actual"),
        )
        .sort("bin")
        .with_columns(pl.col("bin").cast(pl.Int64), pl.col("accounts").cast(pl.Int64))
    )
    return table, (a, b)


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class GroupBacktest:
    group: str
    label: str
    auc: float | None
    auc_low: float | None
    auc_high: float | None
    bands: pl.DataFrame

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "label": self.label,
            "auc": _r(self.auc),
            "auc_low": _r(self.auc_low),
            "auc_high": _r(self.auc_high),
            "bands": _rows(self.bands),
        }


@dataclass(frozen=True)
class BacktestResult:
    """What :func:`backtest` finds; ``to_dict()`` is the JSON of ``python -m engine backtest``."""

    scorecard: str
    fingerprint: str
    horizon_days: int
    renewals: int
    renewed: int
    churned: int
    unscored: int
    auc: float | None
    auc_low: float | None
    auc_high: float | None
    bootstrap: int
    bands: pl.DataFrame
    lift: pl.DataFrame
    calibration: pl.DataFrame
    calibration_model: tuple[float, float]
    groups: list[GroupBacktest]
    observations: pl.DataFrame = field(repr=False)
    messages: list[str] = field(default_factory=list)
    first_renewal: date | None = None
    last_renewal: date | None = None

    def to_dict(self) -> dict[str, Any]:
        a, b = self.calibration_model
        return {
            "scorecard": self.scorecard,
            "fingerprint": self.fingerprint,
            "horizon_days": self.horizon_days,
            "renewals": self.renewals,
            "renewed": self.renewed,
            "churned": self.churned,
            "unscored": self.unscored,
            "first_renewal": self.first_renewal,
            "last_renewal": self.last_renewal,
            "renewal_rate": _r(self.renewed / self.renewals if self.renewals else None),
            "auc": _r(self.auc),
            "auc_low": _r(self.auc_low),
            "auc_high": _r(self.auc_high),
            "bootstrap": self.bootstrap,
            "bands": _rows(self.bands),
            "lift": _rows(self.lift),
            "calibration": _rows(self.calibration),
            "calibration_model": {"intercept": _r(a), "slope_per_point": _r(b)},
            "groups": [g.to_dict() for g in self.groups],
            "messages": list(self.messages),
        }


def _r(x: float | None, nd: int = 4) -> float | None:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return None
    return round(float(x), nd)


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    rounded = frame.with_columns(pl.col(pl.Float64).round(4))
    return rounded.to_dicts()


# --------------------------------------------------------------------------- backtest


def backtest(
    accounts: pl.DataFrame,
    metrics: pl.DataFrame,
    renewals: pl.DataFrame,
    scorecards: Scorecard | Mapping[str, Scorecard],
    *,
    horizon_days: int = 90,
    default: str = "default",
    bootstrap: int = 200,
    seed: int = 0,
    history: pl.DataFrame | None = None,
    manual_overrides: pl.DataFrame | None = None,
    product_arr: pl.DataFrame | None = None,
    snapshot_dates: Sequence[date] | None = None,
) -> BacktestResult:
    """Backtest a scorecard (or a set with assignment) against past renewals.

    ``history``: stored scores of this very scorecard version (``account_id``, ``as_of``,
    ``score``, ``grade``, group columns); without it scores are computed on the fly and
    nothing is written. Raises :class:`InputError` when there are no renewals, none can be
    scored, or all scored renewals have the same outcome."""
    cards = _as_cards(scorecards, default)
    obs, unscored = renewal_observations(
        accounts,
        metrics,
        renewals,
        cards,
        horizon_days=horizon_days,
        default=default,
        history=history,
        manual_overrides=manual_overrides,
        product_arr=product_arr,
        snapshot_dates=snapshot_dates,
    )
    return backtest_observations(
        obs,
        cards,
        unscored=unscored,
        horizon_days=horizon_days,
        default=default,
        bootstrap=bootstrap,
        seed=seed,
    )


def check_outcomes(obs: pl.DataFrame, *, what: str = "a backtest") -> None:
    """Raise :class:`InputError` unless both renewed and churned renewals are present."""
    n = obs.height
    if n == 0:
        raise InputError([Problem("renewals", f"no scored renewals: {what} needs some")])
    renewed = int(obs.get_column(RENEWED).sum())
    if renewed in (0, n):
        kind = "renewed" if renewed == n else "churned"
        raise InputError(
            [
                Problem(
                    "renewals",
                    f"all {n} scored renewals {kind}: {what} needs both renewed "
                    "(arr_after > 0) and churned (arr_after = 0) accounts",
                )
            ]
        )


def backtest_observations(
    obs: pl.DataFrame,
    scorecards: Scorecard | Mapping[str, Scorecard],
    *,
    unscored: int = 0,
    horizon_days: int = 90,
    default: str = "default",
    bootstrap: int = 200,
    seed: int = 0,
    score_column: str = "score",
) -> BacktestResult:
    """The backtest tables from scored renewals (see :func:`renewal_observations`)."""
    cards = _as_cards(scorecards, default)
    check_outcomes(obs)
    main = cards[default]
    edges = band_edges(main.scheme)
    order = [label for label, _, _ in edges]
    y = obs.get_column(RENEWED)
    n = obs.height
    renewed = int(y.sum())
    values = obs.get_column(score_column)
    labels = group_labels(cards)
    gids = [gid for gid in labels if gid in obs.columns]
    intervals = auc_intervals(
        [
            values.cast(pl.Float64).to_numpy(),
            *[obs.get_column(g).cast(pl.Float64).to_numpy() for g in gids],
        ],
        y.to_numpy(),
        bootstrap=bootstrap,
        seed=seed,
    )
    a, lo, hi = intervals[0]
    if score_column == "score" and "grade" in obs.columns and main.scheme.bands:
        graded = obs.with_columns(pl.col("score").alias("_value"))
        bands = band_table(graded, "grade", order)
    else:
        graded = obs.with_columns(
            pl.col(score_column).alias("_value"),
            band_expr(pl.col(score_column), edges).alias("_band"),
        )
        bands = band_table(graded, "_band", order)
    lift = lift_table(values, y)
    calib, model = calibration_table(values, y)
    groups = []
    for gid, (ga, glo, ghi) in zip(gids, intervals[1:], strict=True):
        gb = band_table(
            obs.with_columns(
                pl.col(gid).alias("_value"), band_expr(pl.col(gid), edges).alias("_band")
            ),
            "_band",
            order,
        )
        groups.append(GroupBacktest(gid, labels[gid], ga, glo, ghi, gb))
    messages = _messages(n, renewed, unscored, bands)
    fingerprint = "+".join(sorted(c.fingerprint() for c in cards.values()))
    return BacktestResult(
        scorecard=main.name or main.id,
        fingerprint=fingerprint if len(cards) > 1 else main.fingerprint(),
        horizon_days=horizon_days,
        renewals=n,
        renewed=renewed,
        churned=n - renewed,
        unscored=unscored,
        auc=a,
        auc_low=lo,
        auc_high=hi,
        bootstrap=bootstrap,
        bands=bands,
        lift=lift,
        calibration=calib,
        calibration_model=model,
        groups=groups,
        observations=obs,
        messages=messages,
        first_renewal=obs.get_column("renewal_date").min(),  # type: ignore[arg-type]
        last_renewal=obs.get_column("renewal_date").max(),  # type: ignore[arg-type]
    )


def _messages(n: int, renewed: int, unscored: int, bands: pl.DataFrame) -> list[str]:
    out = []
    churned = n - renewed
    if min(renewed, churned) < 10:
        out.append(
            f"Only {min(renewed, churned)} {'churned' if churned < renewed else 'renewed'} "
            "renewals: the AUC interval is wide; read the figures as a first hint."
        )
    if unscored:
        out.append(
            f"{unscored} renewal(s) had no score at the horizon (no metric snapshot before "
            "them, or no value) and were left out."
        )
    rates = bands.filter(pl.col("accounts") >= 5).get_column("renewal_rate").to_list()
    if len(rates) >= 2 and any(b < a for a, b in pairwise(rates)):
        out.append(
            "Renewal rates do not rise band by band: a higher grade does not always "
            "mean a safer renewal with this scorecard."
        )
    return out
