"""Optimizer: readable scorecard weights that predict renewal, honestly validated.

The overall score is a weighted mean of measure scores, so a scorecard's weights are, up to
scale, the coefficients of a linear score. The optimizer fits those coefficients to past
renewals (scored ``horizon_days`` before, as in :mod:`engine.backtest`) and turns them back into
a scorecard:

1. **Fit.** A logistic regression of ``renewed`` on the measure scores with every coefficient
   constrained to be 0 or more (L-BFGS-B). A missing measure is filled as the scorecard's
   missing policy treats it: with the mean of the row's present measures in its group under
   ``renormalize`` (that is what renormalising does), with 0 under ``zero`` and ``fixed``.
2. **Weights.** Measure coefficient ``b_m`` -> group weight ``sum(b_m in group)`` and measure
   weight ``b_m / group weight``; both rounded to whole numbers summing to 100 per level, in
   steps of 5 when that loses under 0.002 AUC on the training renewals, else in steps of 1. A
   group whose weight rounds to 0 keeps its measure weights (it simply stops counting).
3. **Validation.** The same fit-and-round on older renewals, scored on newer ones:
   time-ordered folds (renewals sorted by date into ``folds + 1`` blocks; fold *i* trains on
   blocks ``0..i`` and tests on block ``i + 1``). When all renewals were scored at one snapshot
   (a single snapshot with a churn label) the folds are random and stratified instead. The
   current scorecard, the suggestion and an unconstrained logistic regression on the same
   (filled) measure scores are scored on the same test folds; ``cv_auc`` is the mean AUC over
   the folds. All three use the pre-override composite recomputed from the company-level
   measure scores, so they are compared on equal terms (overrides and the product roll-up are
   not re-applied; backtest the draft for the full picture).
4. **Stability.** The fit is repeated on bootstrap resamples (Poisson weights); each weight's
   5th-95th percentile range and the share of resamples in which it is above 0 are reported.
5. **Bands.** Edges at multiples of 5 that split renewal rates best (maximum likelihood of a
   renewal rate per band, each band holding at least 5% of renewals), as many bands as the
   scheme has.

Too little data (fewer than 50 scored renewals, or fewer than 10 renewed or churned) is an
:class:`~engine.problems.InputError`; thin data (fewer than 50 of either outcome) adds a
warning. The result is a *draft*: nothing here writes to a database or activates anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from engine.backtest import (
    RENEWED,
    _as_cards,
    _r,
    _rows,
    auc,
    one_blas_thread,
    renewal_observations,
)
from engine.problems import InputError, Problem
from engine.reweight import weighted_mean
from engine.scorecard import Band, MissingPolicy, Scheme, Scorecard

MIN_RENEWALS = 50
MIN_CLASS = 10
THIN_CLASS = 50
ROUNDING_TOLERANCE = 0.002  # AUC a step of 5 may cost before steps of 1 are used
MIN_BAND_SHARE = 0.05

Progress = Callable[[float, str], None]


# --------------------------------------------------------------------------- design matrix


@dataclass(frozen=True)
class _Design:
    """Measure scores of the renewals of one scorecard, in the scorecard's measure order."""

    card: Scorecard
    measure_ids: list[str]
    group_of: np.ndarray  # group index per measure
    scores: np.ndarray  # n x M, NaN = missing (0-100)
    filled: np.ndarray  # n x M, 0-1, missing filled per the policy
    y: np.ndarray  # 1 = renewed
    dates: np.ndarray  # renewal dates (days) for time-ordered folds
    snapshots: int


def _design(obs: pl.DataFrame, card: Scorecard) -> _Design:
    ids = [m.id for _, m in card.measures]
    gindex = {g.id: i for i, g in enumerate(card.groups)}
    group_of = np.array([gindex[g.id] for g, _ in card.measures], dtype=int)
    cols = [
        pl.col(m).cast(pl.Float64) if m in obs.columns else pl.lit(None, dtype=pl.Float64)
        for m in ids
    ]
    scores = obs.select(cols).to_numpy().astype(float)
    filled = _fill(scores, group_of, card.missing)
    y = obs.get_column(RENEWED).cast(pl.Float64).to_numpy()
    dates = obs.get_column("renewal_date").cast(pl.Int64).to_numpy()
    snaps = obs.get_column("score_date").n_unique() if "score_date" in obs.columns else 1
    return _Design(card, ids, group_of, scores, filled / 100.0, y, dates, snaps)


def _fill(scores: np.ndarray, group_of: np.ndarray, policy: MissingPolicy) -> np.ndarray:
    if policy is not MissingPolicy.RENORMALIZE:
        return np.nan_to_num(scores, nan=0.0)
    out = scores.copy()
    present = ~np.isnan(scores)
    row_sum = np.where(present, scores, 0.0).sum(axis=1)
    row_n = present.sum(axis=1)
    row_mean = np.divide(row_sum, row_n, out=np.zeros_like(row_sum), where=row_n > 0)
    for g in np.unique(group_of):
        cols = group_of == g
        gs = np.where(present[:, cols], scores[:, cols], 0.0).sum(axis=1)
        gn = present[:, cols].sum(axis=1)
        gmean = np.where(gn > 0, gs / np.maximum(gn, 1), row_mean)
        block = out[:, cols]
        out[:, cols] = np.where(np.isnan(block), gmean[:, None], block)
    return np.nan_to_num(out, nan=0.0)


def composite(
    scores: np.ndarray,
    group_of: np.ndarray,
    measure_w: np.ndarray,
    group_w: np.ndarray,
    policy: MissingPolicy,
) -> np.ndarray:
    """The pre-override overall score (0-100) of measure scores under a missing policy, as
    :mod:`engine.scoring` computes it for one unit; NaN where it would be null."""
    present = ~np.isnan(scores)
    groups, gpresent = [], []
    for g in range(len(group_w)):
        cols = group_of == g
        groups.append(
            weighted_mean(scores[:, cols], present[:, cols], list(measure_w[cols]), policy)
        )
        gpresent.append(
            np.ones(len(scores), dtype=bool)
            if policy == MissingPolicy.ZERO
            else present[:, cols].any(axis=1)
        )
    out = weighted_mean(np.column_stack(groups), np.column_stack(gpresent), list(group_w), policy)
    return np.where(present.any(axis=1), out, np.nan)


def _card_weights(card: Scorecard) -> tuple[np.ndarray, np.ndarray]:
    mw = np.array([m.weight for _, m in card.measures], dtype=float)
    gw = np.array([g.weight for g in card.groups], dtype=float)
    return mw, gw


# --------------------------------------------------------------------------- fitting


def fit_nonnegative_logistic(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None, *, l2: float = 1e-4
) -> tuple[float, np.ndarray]:
    """``(intercept, coefficients)`` of a logistic regression with every coefficient >= 0.

    ``weights`` are per-row frequency weights (bootstrap); a tiny ridge keeps a perfect
    separation finite."""
    from scipy.optimize import minimize
    from scipy.special import expit

    n, k = x.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    total = w.sum()

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        b0, b = theta[0], theta[1:]
        eta = b0 + x @ b
        nll = float(np.sum(w * (np.logaddexp(0.0, eta) - y * eta)) / total + l2 * b @ b)
        r = w * (expit(eta) - y) / total
        return nll, np.concatenate([[r.sum()], x.T @ r + 2 * l2 * b])

    p = float(np.clip(np.average(y, weights=w), 1e-6, 1 - 1e-6))
    start = np.concatenate([[math.log(p / (1 - p))], np.zeros(k)])
    # Many tiny BLAS calls: threads only add hand-over cost (50x slower on two cores).
    with one_blas_thread():
        res = minimize(
            loss,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=[(None, None)] + [(0.0, None)] * k,
            options={"maxiter": 500},
        )
    return float(res.x[0]), np.asarray(res.x[1:])


def round_to_total(values: np.ndarray, *, total: int = 100, step: int = 5) -> np.ndarray | None:
    """Non-negative ``values`` as multiples of ``step`` summing to ``total`` (largest
    remainder); ``None`` when they are all 0."""
    v = np.clip(np.asarray(values, dtype=float), 0.0, None)
    if v.sum() <= 0:
        return None
    units = total // step
    exact = v / v.sum() * units
    base = np.floor(exact)
    short = int(units - base.sum())
    if short > 0:
        order = np.argsort(-(exact - base), kind="stable")
        base[order[:short]] += 1
    return base * step


def _weights_from_coefs(
    coefs: np.ndarray, d: _Design, step: int, fallback_mw: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n_groups = len(d.card.groups)
    gsum = np.array([coefs[d.group_of == g].sum() for g in range(n_groups)])
    gw = round_to_total(gsum, step=step)
    if gw is None:  # nothing predicts: keep the current weights
        return fallback_mw.copy(), _card_weights(d.card)[1]
    mw = np.zeros_like(coefs)
    for g in range(n_groups):
        cols = d.group_of == g
        within = round_to_total(coefs[cols], step=step)
        mw[cols] = within if within is not None else fallback_mw[cols]
    return mw, gw


def _suggest(
    d: _Design, rows: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Fit on ``rows`` and round: ``(measure weights, group weights, raw coefs, step)``."""
    _, coefs = fit_nonnegative_logistic(d.filled[rows], d.y[rows], weights)
    current_mw, _ = _card_weights(d.card)
    mw5, gw5 = _weights_from_coefs(coefs, d, 5, current_mw)
    exact = d.filled[rows] @ coefs
    a_exact = auc(exact, d.y[rows])
    a5 = auc(composite(d.scores[rows], d.group_of, mw5, gw5, d.card.missing), d.y[rows])
    if a_exact is not None and a5 is not None and a_exact - a5 > ROUNDING_TOLERANCE:
        mw1, gw1 = _weights_from_coefs(coefs, d, 1, current_mw)
        return mw1, gw1, coefs, 1
    return mw5, gw5, coefs, 5


def _logistic_auc(d: _Design, train: np.ndarray, test: np.ndarray) -> float | None:
    import warnings

    from sklearn.linear_model import LogisticRegression

    x_train, x_test = d.filled[train], d.filled[test]
    keep = x_train.std(axis=0) > 0
    if not keep.any():
        return None
    model = LogisticRegression(C=np.inf, max_iter=2000)
    with warnings.catch_warnings(), one_blas_thread():
        warnings.simplefilter("ignore")
        model.fit(x_train[:, keep], d.y[train])
    return auc(model.decision_function(x_test[:, keep]), d.y[test])


# --------------------------------------------------------------------------- folds


def _folds(d: _Design, k: int, seed: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """Time-ordered folds when the renewals were scored at several snapshots: the newer half
    of the renewals (by date) is cut into ``k`` blocks and each block is predicted from all the
    renewals before it. Random stratified folds otherwise."""
    n = d.y.size
    if d.snapshots > 1 and np.unique(d.dates).size > 2 * k:
        order = np.argsort(d.dates, kind="stable")
        half = n // 2
        blocks = np.array_split(order[half:], k)
        folds = []
        start = half
        for block in blocks:
            folds.append((order[:start], block))
            start += block.size
        return folds, (
            f"time-ordered: the newer half of the renewals in {k} blocks, each predicted by a "
            "fit on every older renewal"
        )
    rng = np.random.default_rng(seed)
    fold_of = np.empty(n, dtype=int)
    for cls in (0.0, 1.0):
        idx = np.flatnonzero(d.y == cls)
        rng.shuffle(idx)
        fold_of[idx] = np.arange(idx.size) % k
    folds = [(np.flatnonzero(fold_of != i), np.flatnonzero(fold_of == i)) for i in range(k)]
    return folds, f"random: {k} stratified folds (one snapshot, so no time order to respect)"


# --------------------------------------------------------------------------- bands


def suggest_bands(
    values: np.ndarray,
    y: np.ndarray,
    n_bands: int,
    *,
    step: int = 5,
    min_share: float = MIN_BAND_SHARE,
) -> list[float]:
    """Upper edges (``below``) of ``n_bands - 1`` bands at multiples of ``step`` that split the
    renewal rate best: the partition of the candidate edges maximising the Bernoulli
    likelihood of one renewal rate per band (dynamic programming), every band holding at
    least ``min_share`` of the renewals. Empty when no such split exists."""
    ok = np.isfinite(values)
    v, t = values[ok], y[ok]
    if n_bands < 2 or v.size == 0:
        return []
    cands = np.arange(step, 100, step, dtype=float)
    # cells between consecutive candidate edges
    cell = np.searchsorted(cands, v, side="right")
    n_cells = cands.size + 1
    cnt = np.bincount(cell, minlength=n_cells).astype(float)
    pos = np.bincount(cell, weights=t, minlength=n_cells)
    ccnt = np.concatenate([[0.0], np.cumsum(cnt)])
    cpos = np.concatenate([[0.0], np.cumsum(pos)])
    min_n = max(1.0, min_share * v.size)

    def seg(i: int, j: int) -> float:  # cells i..j-1 as one band
        n = ccnt[j] - ccnt[i]
        if n < min_n:
            return -np.inf
        p = (cpos[j] - cpos[i]) / n
        if p <= 0 or p >= 1:
            return 0.0
        return float(n * (p * math.log(p) + (1 - p) * math.log(1 - p)))

    best = np.full((n_bands + 1, n_cells + 1), -np.inf)
    back = np.zeros((n_bands + 1, n_cells + 1), dtype=int)
    best[0, 0] = 0.0
    for b in range(1, n_bands + 1):
        for j in range(1, n_cells + 1):
            for i in range(b - 1, j):
                if best[b - 1, i] == -np.inf:
                    continue
                val = best[b - 1, i] + seg(i, j)
                if val > best[b, j]:
                    best[b, j], back[b, j] = val, i
    if best[n_bands, n_cells] == -np.inf:
        return []
    cuts = []
    j = n_cells
    for b in range(n_bands, 0, -1):
        i = back[b, j]
        if b > 1:
            cuts.append(float(cands[i - 1]))
        j = i
    return sorted(cuts)


def _band_rows(
    values: np.ndarray, y: np.ndarray, labels: list[str], edges: list[float]
) -> pl.DataFrame:
    ok = np.isfinite(values)
    idx = np.searchsorted(np.asarray(edges), values[ok], side="right")
    frame = pl.DataFrame({"band": idx, "y": y[ok]})
    stats = frame.group_by("band").agg(
        pl.len().alias("accounts"), pl.col("y").mean().alias("renewal_rate")
    )
    lower = [0.0, *edges]
    upper = [*edges, 100.0]
    base = pl.DataFrame(
        {"band": list(range(len(labels))), "grade": labels, "from": lower, "below": upper}
    )
    return (
        base.join(stats, on="band", how="left")
        .with_columns(pl.col("accounts").fill_null(0).cast(pl.Int64))
        .drop("band")
    )


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class OptimizeResult:
    """The suggestion and its validation; ``suggested_card`` is a draft, never active."""

    scorecard: str
    renewals: int
    churned: int
    cv: str
    current_cv_auc: float | None
    suggested_cv_auc: float | None
    logistic_cv_auc: float | None
    current_auc: float | None
    suggested_auc: float | None
    weights: pl.DataFrame
    folds: pl.DataFrame
    bands: pl.DataFrame
    current_bands: pl.DataFrame
    suggested_card: Scorecard
    bootstrap: int
    rounding_step: int
    messages: list[str] = field(default_factory=list)

    @property
    def gap_to_logistic(self) -> float | None:
        if self.suggested_cv_auc is None or self.logistic_cv_auc is None:
            return None
        return self.logistic_cv_auc - self.suggested_cv_auc

    def to_yaml(self) -> str:
        return self.suggested_card.to_yaml()

    def to_dict(self) -> dict[str, Any]:
        def level(kind: str, col: str) -> dict[str, Any]:
            g = self.weights.filter(pl.col("level") == "group")
            m = self.weights.filter(pl.col("level") == "measure")
            return {
                "cv_auc": _r(self.current_cv_auc if kind == "current" else self.suggested_cv_auc),
                "auc": _r(self.current_auc if kind == "current" else self.suggested_auc),
                "weights": {
                    "groups": dict(
                        zip(g.get_column("id").to_list(), g.get_column(col).to_list(), strict=True)
                    ),
                    "measures": dict(
                        zip(m.get_column("id").to_list(), m.get_column(col).to_list(), strict=True)
                    ),
                },
            }

        return {
            "scorecard": self.scorecard,
            "renewals": self.renewals,
            "churned": self.churned,
            "cv": self.cv,
            "current": level("current", "current_file"),
            "suggested": level("suggested", "suggested"),
            "logistic": {"cv_auc": _r(self.logistic_cv_auc)},
            "gap_to_logistic": _r(self.gap_to_logistic),
            "rounding_step": self.rounding_step,
            "bootstrap": self.bootstrap,
            "weights": _rows(self.weights),
            "folds": _rows(self.folds),
            "bands": {"current": _rows(self.current_bands), "suggested": _rows(self.bands)},
            "messages": self.messages,
        }


# --------------------------------------------------------------------------- optimize


def optimize(
    accounts: pl.DataFrame,
    metrics: pl.DataFrame,
    renewals: pl.DataFrame,
    scorecards: Scorecard | Mapping[str, Scorecard],
    *,
    target: str | None = None,
    horizon_days: int = 90,
    default: str = "default",
    folds: int = 4,
    bootstrap: int = 30,
    seed: int = 0,
    history: pl.DataFrame | None = None,
    use_suggested_bands: bool = False,
    progress: Progress | None = None,
) -> OptimizeResult:
    """Score every renewal ``horizon_days`` before it and suggest weights for the scorecard
    ``target`` (default: the default one) from the renewals of the accounts it scores."""
    cards = _as_cards(scorecards, default)
    if progress:
        progress(0.0, "scoring renewals")
    obs, _ = renewal_observations(
        accounts,
        metrics,
        renewals,
        cards,
        horizon_days=horizon_days,
        default=default,
        history=history,
    )
    return optimize_observations(
        obs,
        cards,
        target=target,
        default=default,
        folds=folds,
        bootstrap=bootstrap,
        seed=seed,
        use_suggested_bands=use_suggested_bands,
        progress=progress,
    )


def check_enough(y: np.ndarray, what: str = "the optimizer") -> list[str]:
    """Raise :class:`InputError` on too little data; return warnings for thin data."""
    n = int(y.size)
    renewed = int(y.sum())
    churned = n - renewed
    if n == 0:
        raise InputError([Problem("renewals", f"no scored renewals: {what} needs some")])
    if renewed in (0, n):
        kind = "renewed" if renewed == n else "churned"
        raise InputError(
            [
                Problem(
                    "renewals",
                    f"all {n} scored renewals {kind}: {what} needs both renewed "
                    "and churned accounts to learn what separates them",
                )
            ]
        )
    if n < MIN_RENEWALS or min(renewed, churned) < MIN_CLASS:
        raise InputError(
            [
                Problem(
                    "renewals",
                    f"too little data for {what} to say anything: {n} scored renewals, "
                    f"{churned} churned. It needs at least {MIN_RENEWALS} renewals and "
                    f"{MIN_CLASS} of each outcome",
                )
            ]
        )
    if min(renewed, churned) < THIN_CLASS:
        return [
            f"Only {min(renewed, churned)} {'churned' if churned < renewed else 'renewed'} "
            "renewals: the suggested weights are uncertain; check their stability before "
            "using them."
        ]
    return []


def optimize_observations(
    obs: pl.DataFrame,
    scorecards: Scorecard | Mapping[str, Scorecard],
    *,
    target: str | None = None,
    default: str = "default",
    folds: int = 4,
    bootstrap: int = 30,
    seed: int = 0,
    use_suggested_bands: bool = False,
    progress: Progress | None = None,
) -> OptimizeResult:
    """The optimizer on scored renewals (see :func:`engine.backtest.renewal_observations`)."""
    cards = _as_cards(scorecards, default)
    key = target or default
    if key not in cards:
        raise InputError(f"no scorecard {key!r} among {sorted(cards)}")
    card = cards[key]
    if "scorecard" in obs.columns and len(cards) > 1:
        obs = obs.filter(pl.col("scorecard") == key)
    d = _design(obs, card)
    messages = check_enough(d.y)
    if not card.measures:
        raise InputError(f"scorecard {key!r} has no measures to weigh")
    no_data = [m for j, m in enumerate(d.measure_ids) if np.isnan(d.scores[:, j]).all()]
    if no_data:
        messages.append(
            f"No values for {', '.join(no_data)} at the scored renewals: their weights cannot be "
            "learnt and come out as 0."
        )
    cur_mw, cur_gw = _card_weights(card)
    current_values = composite(d.scores, d.group_of, cur_mw, cur_gw, card.missing)
    all_rows = np.arange(d.y.size)

    # ---- cross-validation
    fold_list, cv_text = _folds(d, max(2, folds), seed)
    fold_rows = []
    for i, (train, test) in enumerate(fold_list):
        if progress:
            progress(
                0.1 + 0.4 * i / len(fold_list), f"cross-validation fold {i + 1} of {len(fold_list)}"
            )
        yt = d.y[test]
        ytr = d.y[train]
        if yt.min() == yt.max() or ytr.min() == ytr.max():
            continue
        mw, gw, _, _ = _suggest(d, train)
        fold_rows.append(
            {
                "fold": i + 1,
                "train": int(train.size),
                "test": int(test.size),
                "current_auc": auc(current_values[test], yt),
                "suggested_auc": auc(
                    composite(d.scores[test], d.group_of, mw, gw, card.missing), yt
                ),
                "logistic_auc": _logistic_auc(d, train, test),
            }
        )
    fold_frame = pl.DataFrame(
        fold_rows,
        schema={
            "fold": pl.Int64,
            "train": pl.Int64,
            "test": pl.Int64,
            "current_auc": pl.Float64,
            "suggested_auc": pl.Float64,
            "logistic_auc": pl.Float64,
        },
    )
    if fold_frame.height < len(fold_list):
        messages.append(
            f"{len(fold_list) - fold_frame.height} fold(s) held only one outcome and were skipped."
        )

    def cv_mean(col: str) -> float | None:
        if fold_frame.height == 0:
            return None
        v = fold_frame.get_column(col).drop_nulls()
        return float(v.mean()) if v.len() else None  # type: ignore[arg-type]

    # ---- the suggestion, fitted on everything
    if progress:
        progress(0.5, "fitting the suggestion on all renewals")
    mw, gw, _, step = _suggest(d, all_rows)
    suggested_values = composite(d.scores, d.group_of, mw, gw, card.missing)

    # ---- bootstrap stability
    rng = np.random.default_rng(seed + 7)
    boot_g, boot_m = [], []
    for b in range(bootstrap):
        if progress and b % 5 == 0:
            progress(0.55 + 0.4 * b / max(1, bootstrap), f"bootstrap {b + 1} of {bootstrap}")
        w = rng.poisson(1.0, size=d.y.size).astype(float)
        _, cb = fit_nonnegative_logistic(d.filled, d.y, w)
        g_sum = np.array([cb[d.group_of == g].sum() for g in range(len(card.groups))])
        boot_g.append(100 * g_sum / g_sum.sum() if g_sum.sum() > 0 else np.zeros_like(g_sum))
        within = np.zeros_like(cb)
        for g in range(len(card.groups)):
            cols = d.group_of == g
            s = cb[cols].sum()
            within[cols] = 100 * cb[cols] / s if s > 0 else 0.0
        boot_m.append(within)

    weights = _weights_table(card, cur_mw, cur_gw, mw, gw, np.array(boot_g), np.array(boot_m))
    if bootstrap and weights.filter(pl.col("stable") == "unstable").height:
        n_uns = weights.filter(pl.col("stable") == "unstable").height
        messages.append(
            f"{n_uns} weight(s) move by more than 25 points across bootstrap resamples: treat "
            "them as a direction, not a number."
        )

    # ---- bands
    band_labels = [b.label for b in card.scheme.bands]
    edges = suggest_bands(suggested_values, d.y, len(band_labels)) if len(band_labels) > 1 else []
    cur_edges = [float(b.below) for b in card.scheme.bands[:-1] if b.below is not None]
    bands = _band_rows(suggested_values, d.y, band_labels, edges) if edges else pl.DataFrame()
    current_bands = (
        _band_rows(current_values, d.y, band_labels, cur_edges) if band_labels else pl.DataFrame()
    )

    suggested = _suggested_card(card, mw, gw, edges if use_suggested_bands else None)
    s_cv, l_cv = cv_mean("suggested_auc"), cv_mean("logistic_auc")
    c_cv = cv_mean("current_auc")
    if s_cv is not None and c_cv is not None and s_cv < c_cv:
        messages.append(
            f"The suggestion predicts newer renewals less well than the current scorecard "
            f"({s_cv:.3f} vs {c_cv:.3f} AUC): keep the current weights."
        )
    if s_cv is not None and l_cv is not None and l_cv - s_cv > 0.01:
        messages.append(
            f"The unconstrained logistic regression does {l_cv - s_cv:.3f} AUC better out of "
            "sample: some measure probably works against renewal (a map pointing the wrong "
            "way?) or the measures interact."
        )
    if progress:
        progress(1.0, "done")
    return OptimizeResult(
        scorecard=key,
        renewals=int(d.y.size),
        churned=int(d.y.size - d.y.sum()),
        cv=cv_text,
        current_cv_auc=c_cv,
        suggested_cv_auc=s_cv,
        logistic_cv_auc=l_cv,
        current_auc=auc(current_values, d.y),
        suggested_auc=auc(suggested_values, d.y),
        weights=weights,
        folds=fold_frame,
        bands=bands,
        current_bands=current_bands,
        suggested_card=suggested,
        bootstrap=bootstrap,
        rounding_step=step,
        messages=messages,
    )


def _normalised(values: np.ndarray) -> np.ndarray:
    s = values.sum()
    return 100 * values / s if s > 0 else np.zeros_like(values)


def _weights_table(
    card: Scorecard,
    cur_mw: np.ndarray,
    cur_gw: np.ndarray,
    mw: np.ndarray,
    gw: np.ndarray,
    boot_g: np.ndarray,
    boot_m: np.ndarray,
) -> pl.DataFrame:
    rows: list[dict[str, Any]] = []
    cur_g_norm = _normalised(cur_gw)

    def stats(samples: np.ndarray) -> tuple[float | None, float | None, float | None, float | None]:
        if samples.size == 0:
            return None, None, None, None
        lo, hi = np.percentile(samples, [5, 95])
        return float(samples.mean()), float(lo), float(hi), float((samples > 0.5).mean())

    for gi, g in enumerate(card.groups):
        mean, lo, hi, share = stats(boot_g[:, gi] if boot_g.size else np.array([]))
        rows.append(
            {
                "level": "group",
                "group": g.id,
                "id": g.id,
                "label": g.title,
                "current_file": float(cur_gw[gi]),
                "current": float(cur_g_norm[gi]),
                "suggested": float(gw[gi]),
                "boot_mean": mean,
                "boot_low": lo,
                "boot_high": hi,
                "share_positive": share,
            }
        )
    offset = 0
    for g in card.groups:
        cols = np.arange(offset, offset + len(g.measures))
        offset += len(g.measures)
        cur_norm = _normalised(cur_mw[cols])
        for k, m in enumerate(g.measures):
            j = cols[k]
            mean, lo, hi, share = stats(boot_m[:, j] if boot_m.size else np.array([]))
            rows.append(
                {
                    "level": "measure",
                    "group": g.id,
                    "id": m.id,
                    "label": m.title,
                    "current_file": float(cur_mw[j]),
                    "current": float(cur_norm[k]),
                    "suggested": float(mw[j]),
                    "boot_mean": mean,
                    "boot_low": lo,
                    "boot_high": hi,
                    "share_positive": share,
                }
            )
    frame = pl.DataFrame(rows)
    width = pl.col("boot_high") - pl.col("boot_low")
    return frame.with_columns(
        pl.when(pl.col("boot_low").is_null())
        .then(pl.lit(None, dtype=pl.Utf8))
        .when(width <= 10)
        .then(pl.lit("stable"))
        .when(width <= 25)
        .then(pl.lit("moderate"))
        .otherwise(pl.lit("unstable"))
        .alias("stable")
    )


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def _suggested_card(
    card: Scorecard, mw: np.ndarray, gw: np.ndarray, edges: list[float] | None
) -> Scorecard:
    groups = []
    j = 0
    for gi, g in enumerate(card.groups):
        measures = []
        for m in g.measures:
            measures.append(m.model_copy(update={"weight": _num(mw[j])}))
            j += 1
        groups.append(g.model_copy(update={"weight": _num(gw[gi]), "measures": tuple(measures)}))
    update: dict[str, Any] = {
        "groups": tuple(groups),
        "name": f"{card.name or card.id} (suggested)",
        "description": (
            "Weights suggested by the Vitals optimizer from past renewals (a draft: review "
            "and backtest before activating). " + card.description
        ).strip(),
    }
    if edges:
        bands = []
        for i, b in enumerate(card.scheme.bands):
            below = edges[i] if i < len(edges) else None
            bands.append(Band(label=b.label, below=below, color=b.color))
        update["scheme"] = Scheme(type=card.scheme.type, bands=tuple(bands))
    return card.model_copy(update=update)
