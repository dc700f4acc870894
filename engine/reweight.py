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
        gpresent = []
        for g in card.groups:
            k = len(g.measures)
            s, p = self.scores[:, col : col + k], self.present[:, col : col + k]
            col += k
            groups[g.id] = weighted_mean(s, p, [m.weight for m in g.measures], policy)
            gpresent.append(
                np.ones(len(s), dtype=bool) if policy == MissingPolicy.ZERO else p.any(axis=1)
            )
        gmat = np.column_stack([groups[g.id] for g in card.groups])
        gp = np.column_stack(gpresent)
        raw = weighted_mean(gmat, gp, [g.weight for g in card.groups], policy)
        raw[self.present.sum(axis=1) == 0] = np.nan
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
    if not bands:
        rounded = pl.Series(score, nan_to_null=True).round(0).cast(pl.Int64).cast(pl.Utf8)
        return rounded.alias("grade")
    edges = np.array([b.below for b in bands[:-1]], dtype=np.float64)
    idx = np.searchsorted(edges, np.nan_to_num(score), side="right")
    labels = np.array([b.label for b in bands], dtype=object)[idx]
    labels[np.isnan(score)] = None
    return pl.Series("grade", labels, dtype=pl.Utf8)
