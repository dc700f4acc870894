"""Drivers: which DEAR groups and which CSM activities go with renewal.

Three regressions on the renewals of a backtest (see :mod:`engine.backtest`), each with the
account segment as a control (one dummy per segment with at least 10 renewals; rarer segments
are pooled as ``other``):

- **Renewal** (logistic): ``renewed ~ group scores / 10 + segment``. Reported per group: the
  log-odds and odds ratio per 10 points, and the average marginal effect in percentage points
  of renewal probability per 10 points, each with a 95% confidence interval.
- **ARR change** (OLS, HC1 robust errors): ``100 * (arr_after - arr_before) / arr_before`` in
  percent (a churn is -100) on the same terms.
- **Activities** (OLS, HC1): each group score on the counts of CSM activities of each type in
  the quarter (91 days) up to the score date, plus segment; and a logistic model of renewal on
  the same counts.

These are associations in the data, not proof of cause; the sentences say "go with". A group
whose scores are missing for a renewal leaves that renewal out of the models that use it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from engine.backtest import (
    RENEWED,
    _as_cards,
    _rows,
    group_labels,
    one_blas_thread,
    renewal_observations,
)
from engine.problems import InputError, Problem
from engine.scorecard import Scorecard

QUARTER_DAYS = 91
MIN_ROWS = 30
MIN_CLASS = 5
_SEGMENT_MIN = 10
_ACTIVITY_LABELS = {
    "ebr": "EBR",
    "qbr": "QBR",
    "success_plan_review": "success-plan review",
    "training": "training",
    "onboarding": "onboarding session",
    "health_check": "health check",
}


@dataclass(frozen=True)
class DriversResult:
    """Coefficient tables (one row per term) and the sentences that read them out."""

    renewal: pl.DataFrame
    arr_change: pl.DataFrame
    activities: pl.DataFrame
    activity_renewal: pl.DataFrame
    ranking: list[str]
    sentences: list[str]
    renewals: int
    messages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "renewals": self.renewals,
            "ranking": self.ranking,
            "renewal": _rows(self.renewal),
            "arr_change": _rows(self.arr_change),
            "activities": _rows(self.activities),
            "activity_renewal": _rows(self.activity_renewal),
            "sentences": self.sentences,
            "messages": self.messages,
        }


# --------------------------------------------------------------------------- public API


def drivers(
    accounts: pl.DataFrame,
    metrics: pl.DataFrame,
    renewals: pl.DataFrame,
    scorecards: Scorecard | Mapping[str, Scorecard],
    activities: pl.DataFrame | None = None,
    *,
    horizon_days: int = 90,
    default: str = "default",
    history: pl.DataFrame | None = None,
) -> DriversResult:
    """Score each renewal ``horizon_days`` before it, then run :func:`drivers_from_observations`."""
    cards = _as_cards(scorecards, default)
    obs, _ = renewal_observations(
        accounts,
        metrics,
        renewals,
        cards,
        horizon_days=horizon_days,
        default=default,
        history=history,
    )
    return drivers_from_observations(obs, cards, activities, default=default)


def drivers_from_observations(
    obs: pl.DataFrame,
    scorecards: Scorecard | Mapping[str, Scorecard],
    activities: pl.DataFrame | None = None,
    *,
    default: str = "default",
) -> DriversResult:
    """The three regressions on scored renewals; raises :class:`InputError` on too little
    data (fewer than 30 renewals with every group score, or fewer than 5 of either outcome)."""
    cards = _as_cards(scorecards, default)
    labels = {g: lab for g, lab in group_labels(cards).items() if g in obs.columns}
    if not labels:
        raise InputError("the scored renewals have no group scores to explain renewal with")
    groups = list(labels)
    messages: list[str] = []
    data = obs.drop_nulls(groups)
    if data.height < obs.height:
        messages.append(
            f"{obs.height - data.height} renewal(s) without a score for every group were left "
            "out of the group models."
        )
    _check_size(data, "the drivers regression")
    segments = _segment_dummies(data)
    y = data.get_column(RENEWED).cast(pl.Float64).to_numpy()
    x_groups = data.select([pl.col(g) / 10.0 for g in groups]).to_numpy()
    x = (
        np.column_stack([np.ones(len(y)), x_groups, segments[0]])
        if segments[1]
        else np.column_stack([np.ones(len(y)), x_groups])
    )
    names = ["const", *groups, *segments[1]]

    renewal_tab, sep = _logit_table(y, x, names, labels)
    if sep:
        messages.append(
            "Renewal is perfectly separated by the scores: the logistic coefficients are not "
            "reliable (too few churns, or one score decides every outcome)."
        )
    before = data.get_column("arr_before").to_numpy()
    after = data.get_column("arr_after").to_numpy()
    ok = before > 0
    change = np.where(ok, 100.0 * (after - before) / np.where(ok, before, 1.0), np.nan)
    arr_tab = _ols_table(change[ok], x[ok], names, labels)

    act_tab = pl.DataFrame()
    act_renew = pl.DataFrame()
    if activities is not None and activities.height:
        counts, types = activity_counts(obs, activities)
        if types:
            act_tab, act_renew = _activity_models(counts, types, groups, labels, messages)
    elif activities is not None:
        messages.append("There are no CSM activities to relate to the scores.")

    ranking = (
        renewal_tab.filter(pl.col("term").is_in(groups))
        .sort("coef", descending=True)
        .get_column("term")
        .to_list()
    )
    sentences = _sentences(renewal_tab, arr_tab, act_tab, act_renew, labels, ranking)
    return DriversResult(
        renewal=renewal_tab,
        arr_change=arr_tab,
        activities=act_tab,
        activity_renewal=act_renew,
        ranking=ranking,
        sentences=sentences,
        renewals=data.height,
        messages=messages,
    )


def activity_counts(
    obs: pl.DataFrame, activities: pl.DataFrame, *, days: int = QUARTER_DAYS
) -> tuple[pl.DataFrame, list[str]]:
    """``obs`` with one ``n_<type>`` column per activity type: the account's activities of
    that type in the ``days`` up to and including the score date (0 when none)."""
    acts = activities.select(
        pl.col("account_id").cast(pl.Utf8),
        pl.col("date").cast(pl.Date),
        pl.col("type").cast(pl.Utf8).str.to_lowercase(),
    ).drop_nulls()
    types = sorted(acts.get_column("type").unique().to_list())
    keys = obs.select("account_id", "score_date").unique()
    hits = (
        acts.join(keys, on="account_id", how="inner")
        .filter(
            (pl.col("date") <= pl.col("score_date"))
            & (pl.col("date") > pl.col("score_date") - pl.duration(days=days))
        )
        .group_by("account_id", "score_date", "type")
        .len()
    )
    if hits.height == 0:
        wide = keys.with_columns([pl.lit(0.0).alias(f"n_{t}") for t in types])
    else:
        wide = hits.pivot(
            on="type", index=["account_id", "score_date"], values="len", on_columns=types
        ).rename({t: f"n_{t}" for t in types})
    cols = [f"n_{t}" for t in types]
    out = obs.join(wide, on=["account_id", "score_date"], how="left").with_columns(
        [pl.col(c).fill_null(0).cast(pl.Float64) for c in cols]
    )
    # A type nobody did in the window carries no information.
    kept = [t for t in types if out.get_column(f"n_{t}").sum() > 0]
    return out, kept


def activity_label(activity: str) -> str:
    return _ACTIVITY_LABELS.get(activity, activity.replace("_", " "))


# --------------------------------------------------------------------------- models


def _check_size(data: pl.DataFrame, what: str) -> None:
    n = data.height
    if n == 0:
        raise InputError([Problem("renewals", f"no scored renewals: {what} needs some")])
    renewed = int(data.get_column(RENEWED).sum())
    if renewed in (0, n):
        kind = "renewed" if renewed == n else "churned"
        raise InputError(
            [Problem("renewals", f"all {n} scored renewals {kind}: {what} needs both outcomes")]
        )
    if n < MIN_ROWS or min(renewed, n - renewed) < MIN_CLASS:
        raise InputError(
            [
                Problem(
                    "renewals",
                    f"too little data for {what}: {n} scored renewals ({n - renewed} churned); "
                    f"it needs at least {MIN_ROWS} renewals and {MIN_CLASS} of each outcome",
                )
            ]
        )


def _segment_dummies(data: pl.DataFrame) -> tuple[np.ndarray, list[str]]:
    if "segment" not in data.columns:
        return np.empty((data.height, 0)), []
    seg = data.get_column("segment").fill_null("unknown")
    counts = seg.value_counts().filter(pl.col("count") >= _SEGMENT_MIN)
    common = counts.get_column("segment").to_list()
    seg = pl.select(
        pl.when(seg.is_in(common)).then(seg).otherwise(pl.lit("other")).alias("s")
    ).to_series()
    levels = sorted(seg.unique().to_list())
    if len(levels) < 2:
        return np.empty((data.height, 0)), []
    # The largest segment is the baseline.
    base = seg.value_counts().sort("count", descending=True).get_column("s")[0]
    rest = [lv for lv in levels if lv != base]
    mat = np.column_stack([(seg == lv).cast(pl.Float64).to_numpy() for lv in rest])
    return mat, [f"segment: {lv}" for lv in rest]


def _fit_quietly(fit: Any) -> tuple[Any, bool]:
    from statsmodels.tools.sm_exceptions import PerfectSeparationError, PerfectSeparationWarning

    with warnings.catch_warnings(record=True) as caught, one_blas_thread():
        warnings.simplefilter("always")
        try:
            res = fit()
        except (PerfectSeparationError, np.linalg.LinAlgError):
            return None, True
    bad = any(
        issubclass(w.category, PerfectSeparationWarning) or "converge" in str(w.message)
        for w in caught
    )
    return res, bad


def _logit_table(
    y: np.ndarray, x: np.ndarray, names: list[str], labels: Mapping[str, str]
) -> tuple[pl.DataFrame, bool]:
    import statsmodels.api as sm

    x, names = _drop_constant(x, names)
    res, separated = _fit_quietly(lambda: sm.Logit(y, x).fit(disp=0, maxiter=200))
    if res is None:
        res, _ = _fit_quietly(
            lambda: sm.Logit(y, x).fit_regularized(disp=0, alpha=1.0, maxiter=500)
        )
        separated = True
    params = np.asarray(res.params)
    ci = np.asarray(res.conf_int())
    pvals = np.asarray(res.pvalues)
    ame = np.full(len(names), np.nan)
    ame_ci = np.full((len(names), 2), np.nan)
    try:
        with warnings.catch_warnings(), one_blas_thread():
            warnings.simplefilter("ignore")
            marg = res.get_margeff(at="overall")
            ame[1:] = np.asarray(marg.margeff) * 100
            ame_ci[1:] = np.asarray(marg.conf_int()) * 100
    except (ValueError, np.linalg.LinAlgError):
        pass
    table = pl.DataFrame(
        {
            "term": names,
            "label": [_term_label(n, labels) for n in names],
            "coef": params,
            "ci_low": ci[:, 0],
            "ci_high": ci[:, 1],
            "odds_ratio": np.exp(np.clip(params, -50, 50)),
            "p_value": pvals,
            "ame_pp": ame,
            "ame_low": ame_ci[:, 0],
            "ame_high": ame_ci[:, 1],
        }
    ).filter(pl.col("term") != "const")
    return table.with_columns(pl.col(pl.Float64).fill_nan(None)), separated


def _ols_table(
    y: np.ndarray, x: np.ndarray, names: list[str], labels: Mapping[str, str]
) -> pl.DataFrame:
    import statsmodels.api as sm

    x, names = _drop_constant(x, names)
    if len(y) <= x.shape[1] + 1:
        return pl.DataFrame()
    with warnings.catch_warnings(), one_blas_thread():
        warnings.simplefilter("ignore")
        res = sm.OLS(y, x).fit(cov_type="HC1")
    ci = np.asarray(res.conf_int())
    return (
        pl.DataFrame(
            {
                "term": names,
                "label": [_term_label(n, labels) for n in names],
                "coef": np.asarray(res.params),
                "ci_low": ci[:, 0],
                "ci_high": ci[:, 1],
                "p_value": np.asarray(res.pvalues),
            }
        )
        .filter(pl.col("term") != "const")
        .with_columns(pl.col(pl.Float64).fill_nan(None))
    )


def _drop_constant(x: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """Drop columns (other than the intercept) that never vary: they cannot be estimated."""
    keep = [0] + [j for j in range(1, x.shape[1]) if np.nanstd(x[:, j]) > 0]
    return x[:, keep], [names[j] for j in keep]


def _activity_models(
    counts: pl.DataFrame,
    types: list[str],
    groups: list[str],
    labels: Mapping[str, str],
    messages: list[str],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    seg, seg_names = _segment_dummies(counts)
    acts = counts.select([pl.col(f"n_{t}") for t in types]).to_numpy()
    base = (
        np.column_stack([np.ones(counts.height), acts, seg])
        if seg_names
        else np.column_stack([np.ones(counts.height), acts])
    )
    names = ["const", *types, *seg_names]
    frames = []
    for g in groups:
        yv = counts.get_column(g).cast(pl.Float64).to_numpy()
        ok = np.isfinite(yv)
        tab = _ols_table(yv[ok], base[ok], names, {})
        if tab.height:
            frames.append(
                tab.filter(pl.col("term").is_in(types)).select(
                    pl.lit(g).alias("group"),
                    pl.lit(labels[g]).alias("group_label"),
                    pl.col("term").alias("activity"),
                    pl.col("term")
                    .map_elements(activity_label, return_dtype=pl.Utf8)
                    .alias("activity_label"),
                    "coef",
                    "ci_low",
                    "ci_high",
                    "p_value",
                )
            )
    act_tab = pl.concat(frames) if frames else pl.DataFrame()
    y = counts.get_column(RENEWED).cast(pl.Float64).to_numpy()
    renew, sep = _logit_table(y, base, names, {})
    if sep:
        messages.append("Renewal is perfectly separated by activity counts: read with care.")
    renew = renew.filter(pl.col("term").is_in(types)).with_columns(
        pl.col("term").map_elements(activity_label, return_dtype=pl.Utf8).alias("label")
    )
    return act_tab, renew


def _term_label(term: str, labels: Mapping[str, str]) -> str:
    return labels.get(term, term)


# --------------------------------------------------------------------------- sentences


def _signed(x: float, unit: str, nd: int = 1) -> str:
    return f"{x:+.{nd}f}{unit}"


def _ci(lo: float | None, hi: float | None, unit: str, nd: int = 1) -> str:
    if lo is None or hi is None:
        return ""
    return f" (95% CI {lo:+.{nd}f} to {hi:+.{nd}f}{unit})"


def _sig(p: float | None) -> str:
    if p is None:
        return ""
    return "" if p < 0.05 else "; not significant at 5%"


def _sentences(
    renewal: pl.DataFrame,
    arr: pl.DataFrame,
    acts: pl.DataFrame,
    act_renew: pl.DataFrame,
    labels: Mapping[str, str],
    ranking: list[str],
) -> list[str]:
    out = []
    if ranking:
        order = ", ".join(labels[g] for g in ranking)
        out.append(
            f"Strongest to weakest link with renewal, other groups and segment held equal: {order}."
        )
    for row in renewal.filter(pl.col("term").is_in(list(labels))).iter_rows(named=True):
        if row["ame_pp"] is None:
            continue
        out.append(
            f"Each 10 points of {row['label']} go with {_signed(row['ame_pp'], ' pp')} renewal "
            f"probability{_ci(row['ame_low'], row['ame_high'], ' pp')}"
            f"{_sig(row['p_value'])}."
        )
    for row in (
        arr.filter(pl.col("term").is_in(list(labels))).iter_rows(named=True) if arr.height else []
    ):
        out.append(
            f"Each 10 points of {row['label']} go with {_signed(row['coef'], '%')} ARR change at "
            f"renewal{_ci(row['ci_low'], row['ci_high'], '%')}{_sig(row['p_value'])}."
        )
    if acts.height:
        for row in acts.iter_rows(named=True):
            out.append(
                f"Accounts with one more {row['activity_label']} in the preceding quarter score "
                f"{_signed(row['coef'], ' points')} on {row['group_label']}"
                f"{_ci(row['ci_low'], row['ci_high'], ' points')}{_sig(row['p_value'])}."
            )
    if act_renew.height:
        for row in act_renew.iter_rows(named=True):
            if row["ame_pp"] is None:
                continue
            out.append(
                f"Each {row['label']} in the preceding quarter goes with "
                f"{_signed(row['ame_pp'], ' pp')} renewal probability"
                f"{_ci(row['ame_low'], row['ame_high'], ' pp')}{_sig(row['p_value'])}."
            )
    return out


__all__ = [
    "QUARTER_DAYS",
    "DriversResult",
    "activity_counts",
    "activity_label",
    "drivers",
    "drivers_from_observations",
]
