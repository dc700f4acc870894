"""Re-score after a weight change, in NumPy, from measure scores computed once.

When only the weights of a scorecard change (the most common edit while tuning), the measure
scores, missing and stale flags and every condition that reads metrics, measures or attributes
stay the same. :class:`Reweighter` keeps the measure scores of a scored population as a matrix
and recomputes group scores, the raw overall, the overrides that read groups or the overall,
the final score and the grade with a few matrix-vector products.

It gives exactly :func:`engine.scoring.score`'s numbers (tests compare the two) for
populations scored at company level (no product units) under one scorecard. Anything else
(other maps, policies, bands, products, manual overrides, an override whose condition mixes
group or overall comparisons with metric comparisons) raises :class:`NotReweightable`, and the
caller re-scores in full.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from engine.conditions import condition_expr, metrics_read, walk
from engine.scorecard import Action, ActionType, Compare, MissingPolicy, Scheme, Scorecard, Target


class NotReweightable(ValueError):
    """The change is more than a weight change, or the population has product units."""


def _shape(card: Scorecard) -> dict[str, object]:
    """Everything of a scorecard except its weights."""
    data = card.model_dump(mode="json")
    for g in data["groups"]:
        g.pop("weight")
        for m in g["measures"]:
            m.pop("weight")
    return data


def _weight_dependent(cond: object) -> bool:
    return any(
        isinstance(n, Compare) and n.target in (Target.GROUP, Target.OVERALL)
        for n in walk(cond)  # type: ignore[arg-type]
    )


@dataclass
class Reweighter:
    """Measure-score matrix of one scored population, ready for weight changes."""

    card: Scorecard
    as_of: date
    account_id: pl.Series
    scores: np.ndarray  # n x M, 0 where missing
    present: np.ndarray  # n x M, 1.0 where the measure counts
    measure_frame: pl.DataFrame  # measure score columns, for overrides reading measures
    fixed_fired: dict[str, np.ndarray]  # weight-independent overrides: fired mask from the base

    def __post_init__(self) -> None:
        # constant across weight changes: scores times presence, group sizes and presence
        self._sp = self.scores * self.present
        self._sizes = [len(g.measures) for g in self.card.groups]
        self._gp: dict[str, np.ndarray] = {}  # group has a value (always, under zero)
        col = 0
        zero = self.card.missing == MissingPolicy.ZERO
        for g, k in zip(self.card.groups, self._sizes, strict=True):
            block = self.present[:, col : col + k]
            self._gp[g.id] = (
                np.ones(len(block), dtype=bool) if zero else np.asarray(block.any(axis=1))
            )
            col += k
        self._any: np.ndarray = np.asarray(self.present.any(axis=1))

    @classmethod
    def from_units(cls, units: pl.DataFrame, card: Scorecard, as_of: date) -> Reweighter:
        """``units``: ``score_detail(...).products`` (or ``score(...)``) for accounts scored
        with ``card`` only."""
        if "product" in units.columns and units.get_column("product").null_count() != units.height:
            raise NotReweightable("accounts with product units need a full re-score")
        if (units.get_column("scorecard") != card.id).any():
            raise NotReweightable("more than one scorecard in the population")
        if units.get_column("overrides").list.contains("manual").any():
            raise NotReweightable("manual overrides need a full re-score")
        ids = [m.id for _, m in card.measures]
        mat = units.select(ids).to_numpy().astype(np.float64, copy=False)
        if card.missing == MissingPolicy.ZERO:
            present = np.ones_like(mat)
            missing_lists = units.get_column("missing")
            for j, mid in enumerate(ids):
                present[:, j] = ~missing_lists.list.contains(mid).to_numpy()
        else:
            present = (~np.isnan(mat)).astype(np.float64)
        fired: dict[str, np.ndarray] = {}
        for o in card.overrides:
            if _weight_dependent(o.when):
                if metrics_read(o.when):
                    raise NotReweightable(f"override {o.id!r} mixes metric and score conditions")
                continue
            fired[o.id] = units.get_column("overrides").list.contains(o.id).to_numpy()
        return cls(
            card=card,
            as_of=as_of,
            account_id=units.get_column("account_id"),
            scores=np.nan_to_num(mat, nan=0.0),
            present=present,
            measure_frame=units.select(ids),
            fixed_fired=fired,
        )

    def score(self, card: Scorecard) -> pl.DataFrame:
        """``account_id``, ``score``, ``raw_score``, ``grade`` and the group scores under the
        weights of ``card`` (which must differ from the prepared scorecard only in weights)."""
        if _shape(card) != _shape(self.card):
            raise NotReweightable("the scorecard changed more than its weights")
        policy = card.missing
        col = 0
        groups: dict[str, np.ndarray] = {}
        for g, k in zip(card.groups, self._sizes, strict=True):
            w = np.array([m.weight for m in g.measures], dtype=np.float64)
            groups[g.id] = _matvec_mean(
                self._sp[:, col : col + k],
                self.present[:, col : col + k],
                w,
                policy,
                self._gp[g.id],
            )
            col += k
        gmat = np.column_stack([np.nan_to_num(groups[g.id]) for g in card.groups])
        gpresent = np.column_stack([self._gp[g.id] for g in card.groups]).astype(np.float64)
        gw = np.array([g.weight for g in card.groups], dtype=np.float64)
        raw = _matvec_mean(gmat * gpresent, gpresent, gw, policy, self._any)
        raw[~self._any] = np.nan  # no measure value at all: no score, under every policy
        final = self._apply_overrides(card, raw, groups)
        out = pl.DataFrame(
            {
                "account_id": self.account_id,
                "score": final,
                "raw_score": raw,
                "grade": _grades(final, card),
                **groups,
            },
            nan_to_null=True,
        )
        return out

    def _apply_overrides(
        self, card: Scorecard, raw: np.ndarray, groups: dict[str, np.ndarray]
    ) -> np.ndarray:
        current = raw.copy()
        frame = None
        for o in card.overrides:
            if o.id in self.fixed_fired:
                fired = self.fixed_fired[o.id]
            else:
                if (o.starts_on and self.as_of < o.starts_on) or (
                    o.expires_on and self.as_of >= o.expires_on
                ):
                    continue
                if frame is None:
                    frame = self.measure_frame.with_columns(
                        pl.Series("raw_score", raw, nan_to_null=True),
                        *[pl.Series(k, v, nan_to_null=True) for k, v in groups.items()],
                    )
                fired = frame.select(condition_expr(o.when)).to_series().to_numpy()
            fired = fired & ~np.isnan(raw)
            current = np.where(fired, apply_action_array(current, o.then, card.scheme), current)
        return current


def _matvec_mean(
    sp: np.ndarray, p: np.ndarray, w: np.ndarray, policy: object, has: np.ndarray
) -> np.ndarray:
    """:func:`weighted_mean` as matrix-vector products (``sp`` = scores x presence): the
    weight-change path's speed, equal to the column-by-column sum up to float rounding."""
    numer = sp @ w
    denom = p @ w if policy == MissingPolicy.RENORMALIZE else np.full(len(sp), w.sum())
    ok = denom > 0 if policy == MissingPolicy.ZERO else has & (denom > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, np.clip(numer / denom, 0.0, 100.0), np.nan)


def weighted_mean(s: np.ndarray, p: np.ndarray, weights: list[float], policy: object) -> np.ndarray:
    """``engine.scoring._weighted`` on arrays, column by column in the same order, so the same
    floating-point result: parts ``s`` (n x k) present where ``p``, weights per column, the
    missing policy; NaN where the result is null. A NaN part that is present adds nothing,
    as a null does in Polars."""
    n = s.shape[0]
    numer = np.zeros(n)
    present_w = np.zeros(n)
    for j, w in enumerate(weights):
        pj = p[:, j].astype(bool)
        numer = numer + np.nan_to_num(np.where(pj, s[:, j] * w, 0.0), nan=0.0)
        present_w = present_w + np.where(pj, w, 0.0)
    any_present = p.astype(bool).any(axis=1) if weights else np.zeros(n, dtype=bool)
    total = float(sum(weights))
    if policy == MissingPolicy.RENORMALIZE:
        denom, ok = present_w, any_present & (present_w > 0)
    elif policy == MissingPolicy.ZERO:
        denom = np.full(n, total)
        ok = denom > 0
    else:
        denom = np.full(n, total)
        ok = any_present & (denom > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, np.clip(numer / denom, 0.0, 100.0), np.nan)


def apply_action_array(current: np.ndarray, action: Action, scheme: Scheme) -> np.ndarray:
    """``engine.scoring.apply_action`` on an array."""
    if action.type == ActionType.SET:
        return np.full(len(current), float(action.value))
    if action.type == ActionType.CAP:
        return np.fmin(current, float(action.value))
    for label, lower, upper in scheme.band_edges():
        if label == action.value:
            top = 100.0 if upper >= 100.0 else upper - min(1.0, (upper - lower) / 2)
            return np.clip(current, lower, top)
    raise ValueError(f"grade {action.value!r} is not a band of the scheme")


def _grades(score: np.ndarray, card: Scorecard) -> pl.Series:
    bands = card.scheme.bands
    valid = pl.Series(~np.isnan(score))
    if not bands:
        rounded = pl.Series(score, nan_to_null=True).round(0).cast(pl.Int64).cast(pl.Utf8)
        return rounded.alias("grade")
    edges = np.array([b.below for b in bands[:-1]], dtype=np.float64)
    idx = pl.Series(np.searchsorted(edges, np.nan_to_num(score), side="right").astype(np.uint32))
    labels = pl.Series("grade", [b.label for b in bands], dtype=pl.Utf8).gather(idx)
    return pl.select(pl.when(valid).then(labels)).to_series().alias("grade")
