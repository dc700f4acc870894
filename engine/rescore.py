"""Fast re-scoring of draft scorecards over metric values prepared once.

:func:`engine.scoring.score` reads the long metric history on every call: picking the latest
value per account, product and metric and pivoting them into one wide row per scored unit is
most of its time (seconds at 100,000 accounts). The scorecard designer re-scores the same data
at the same as-of date on every edit, so :func:`prepare` does that part once and
:func:`rescore` runs only what depends on the scorecards: assignment, measure maps, weights,
the missing and stale policies, overrides, the product roll-up and manual overrides.

The result is exactly :func:`engine.scoring.score` (or ``score_detail``) on the same inputs:
the steps are the scoring module's own, in the same order (tests compare the two). The wide
frame depends on the set of metrics and change windows the scorecards read; a draft that reads
another set (an override on a new metric) is pivoted once more, and the last few sets are
memoised. Values prepared for a few change windows only (the latest values at ``as_of`` and at
``as_of - days``) cannot serve a draft with a new window: :meth:`Prepared.covers` says so.

:func:`rescore_draft` re-scores only the accounts a draft can change: the accounts its
scorecard is assigned to, or everybody when the draft is the default scorecard and its
assignment rules changed. Every other account keeps its base row. With a
:class:`MeasureCache` of the draft's scorecard (its accounts' measure scores, computed once),
most edits (weights, measure maps and validity, grade bands, overrides) re-score those
accounts with a few NumPy operations instead of a full pass.

Coordination note: this module builds on private helpers of :mod:`engine.scoring`
(``_wide_values``, ``_score_units``, ``_measure_exprs``, ``_weighted``'s semantics,
``_rollup_weights``, ``_roll_up``, ``_apply_manual`` ...). Tests compare every path with
:func:`engine.scoring.score`, so a change there that this module does not follow fails them.
If the scoring module grows a public "prepared values" API, this module should become a thin
wrapper around it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl

from engine import scoring as _s
from engine.conditions import changes
from engine.reweight import apply_action_array, weighted_mean
from engine.scorecard import Scorecard
from engine.scoring import ScoreDetail

_MEMO_SIZE = 4

WideKey = tuple[tuple[str, ...], tuple[tuple[str, int], ...]]


def _change_keys(cards: Iterable[Scorecard]) -> tuple[tuple[str, int], ...]:
    out: set[tuple[str, int]] = set()
    for card in cards:
        for o in card.overrides:
            out |= changes(o.when)
    return tuple(sorted(out))


def _wide_key(cards: Iterable[Scorecard]) -> WideKey:
    cards = list(cards)
    return tuple(sorted(_s._needed_metrics(cards))), _change_keys(cards)


@dataclass(frozen=True, eq=False)
class Prepared:
    """Metric values at one as-of date, ready to be scored by any scorecards.

    ``metrics``: the long frame of the data contract. It may be the whole history
    (``windows`` None), or only what a score at ``as_of`` reads: the latest row per
    (account, product, metric) at ``as_of`` and, for each number of days in ``windows``, at
    ``as_of - days`` (what ``engine.store.latest_metric_values`` returns). Immutable from the
    outside; the memo of wide frames inside is thread-safe."""

    accounts: pl.DataFrame
    metrics: pl.DataFrame
    as_of: date
    windows: frozenset[int] | None = None
    manual_overrides: pl.DataFrame | None = None
    product_arr: pl.DataFrame | None = None
    _memo: OrderedDict[WideKey, pl.DataFrame] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def account_count(self) -> int:
        return self.accounts.height

    def covers(self, cards: Iterable[Scorecard]) -> bool:
        """Whether the values hold every change window the cards' overrides read."""
        if self.windows is None:
            return True
        return {days for _, days in _change_keys(cards)} <= self.windows

    def wide_for(self, cards: Iterable[Scorecard]) -> pl.DataFrame:
        """One row per scored unit with the value, level and age of every metric the cards
        read and the base value of every change window (``engine.scoring``'s wide frame).
        Raises ``ValueError`` when a change window is not covered (see :meth:`covers`)."""
        cards = list(cards)
        if not self.covers(cards):
            missing = sorted({d for _, d in _change_keys(cards)} - (self.windows or frozenset()))
            raise ValueError(
                f"the prepared values do not cover the change windows {missing} (days): "
                "prepare them with these windows"
            )
        key = _wide_key(cards)
        with self._lock:
            hit = self._memo.get(key)
            if hit is not None:
                self._memo.move_to_end(key)
                return hit
        wide = _s._wide_values(self.metrics, list(key[0]), self.as_of)
        wide = _s._add_change_bases(wide, self.metrics, cards, self.as_of)
        with self._lock:
            self._memo[key] = wide
            while len(self._memo) > _MEMO_SIZE:
                self._memo.popitem(last=False)
        return wide


def change_windows(cards: Iterable[Scorecard]) -> frozenset[int]:
    """The days of every change window the cards' overrides read."""
    return frozenset(days for _, days in _change_keys(cards))


def prepare(
    accounts: pl.DataFrame,
    metrics: pl.DataFrame,
    as_of: date,
    scorecards: Scorecard | Mapping[str, Scorecard] | None = None,
    *,
    windows: Iterable[int] | None = None,
    manual_overrides: pl.DataFrame | None = None,
    product_arr: pl.DataFrame | None = None,
) -> Prepared:
    """Hold the values for re-scoring (see :class:`Prepared`); when ``scorecards`` are given,
    pivot the values for them now so that the first :func:`rescore` is fast too."""
    prepared = Prepared(
        accounts=accounts.with_columns(pl.col("account_id").cast(pl.Utf8)),
        metrics=metrics,
        as_of=as_of,
        windows=None if windows is None else frozenset(int(d) for d in windows),
        manual_overrides=manual_overrides,
        product_arr=product_arr,
    )
    if scorecards is not None:
        prepared.wide_for(_as_cards(scorecards).values())
    return prepared


def _as_cards(
    scorecards: Scorecard | Mapping[str, Scorecard], default: str = "default"
) -> dict[str, Scorecard]:
    return _s._as_mapping(scorecards, default)


def rescore(
    prepared: Prepared,
    scorecards: Scorecard | Mapping[str, Scorecard],
    *,
    default: str = "default",
    accounts: Iterable[str] | pl.Series | None = None,
    detail: bool = False,
) -> ScoreDetail:
    """Score the prepared values with ``scorecards``: the same result as
    :func:`engine.scoring.score_detail` (``detail=True``) or, in ``company``, as
    :func:`engine.scoring.score`. ``accounts`` restricts the work to those account ids
    (rows of other accounts are left out; each account's row does not depend on the others)."""
    cards = _as_cards(scorecards, default)
    frame = prepared.accounts
    wide = prepared.wide_for(cards.values())
    product_arr, manual = prepared.product_arr, prepared.manual_overrides
    if accounts is not None:
        ids = (
            accounts
            if isinstance(accounts, pl.Series)
            else pl.Series(list(accounts), dtype=pl.Utf8)
        )
        keep = pl.col("account_id").cast(pl.Utf8).is_in(ids.cast(pl.Utf8).implode())
        # Narrow every frame first: the joins below then touch these accounts only.
        frame = frame.filter(keep)
        wide = wide.filter(keep)
        product_arr = product_arr.filter(keep) if product_arr is not None else None
        manual = manual.filter(keep) if manual is not None else None
    assigned = _s.assigned_accounts(frame, cards, default)
    units = assigned.join(wide, on="account_id", how="left")
    return _s._score_prepared(units, cards, prepared.as_of, manual, product_arr, detail=detail)


def with_draft(cards: Mapping[str, Scorecard], draft: Scorecard) -> dict[str, Scorecard]:
    """The scorecard set with ``draft`` in place of the card of the same id (or added)."""
    return {**cards, draft.id: draft}


def affected_accounts(
    base_cards: Mapping[str, Scorecard],
    base_scores: pl.DataFrame,
    draft: Scorecard,
    *,
    default: str = "default",
) -> pl.Series | None:
    """The account ids whose row a draft can change, or ``None`` for every account (the draft
    is the default scorecard and its assignment rules differ from the base's)."""
    base_default = base_cards.get(default)
    if draft.id == default and (
        base_default is None or base_default.assignment != draft.assignment
    ):
        return None
    return base_scores.filter(pl.col("scorecard") == draft.id).get_column("account_id")


def rescore_draft(
    prepared: Prepared,
    base_cards: Mapping[str, Scorecard],
    base_scores: pl.DataFrame,
    draft: Scorecard,
    *,
    default: str = "default",
    cache: MeasureCache | None = None,
) -> pl.DataFrame:
    """Company scores with ``draft`` replacing its card: equal to :func:`rescore` of the whole
    set, but only the accounts the draft can change are scored again; the others keep their
    row of ``base_scores`` (which must be ``rescore(prepared, base_cards).company``).

    With ``cache`` (:func:`measure_cache` of the draft's base card) and a draft it supports,
    the accounts are re-scored by :class:`MeasureCache` and the result has the :data:`LEAN`
    columns only."""
    cards = with_draft(base_cards, draft)
    ids = affected_accounts(base_cards, base_scores, draft, default=default)
    if ids is not None and cache is not None and cache.supports(draft):
        fresh = cache.rescore(draft)
        kept = base_scores.select(LEAN).join(
            fresh.select("account_id"), on="account_id", how="anti"
        )
        return pl.concat([kept, fresh], how="vertical_relaxed").sort("account_id")
    if ids is None:
        return rescore(prepared, cards, default=default).company
    fresh = rescore(prepared, cards, default=default, accounts=ids).company
    kept = base_scores.join(fresh.select("account_id"), on="account_id", how="anti")
    merged = pl.concat([kept, fresh], how="diagonal_relaxed")
    return _s._order(merged, cards, drop_product=True)


# --------------------------------------------------------------------------- measure cache

LEAN = ["account_id", "scorecard", "score", "raw_score", "grade", "overrides"]
"""The columns :class:`MeasureCache` returns (what a preview compares)."""


def _structure(card: Scorecard) -> tuple[object, ...]:
    """What a :class:`MeasureCache` cannot change: the scorecard id, the groups and measures
    (ids, metrics, order, categories), the missing, stale and roll-up policies and the
    assignment rules. Weights, maps, validity, grade bands and overrides may all change."""
    return (
        card.id,
        tuple((g.id, g.category, tuple((m.id, m.metric) for m in g.measures)) for g in card.groups),
        card.missing,
        card.stale,
        card.rollup,
        card.assignment,
    )


def _measure_key(m: object) -> tuple[object, ...]:
    return (m.map, m.validity_days)  # type: ignore[attr-defined]


def _reads(cond: object, *, measures: set[str]) -> bool:
    """Whether a condition reads a group or overall score, or one of ``measures``."""
    from engine.conditions import walk
    from engine.scorecard import Compare, Target

    for n in walk(cond):  # type: ignore[arg-type]
        if isinstance(n, Compare):
            if n.target in (Target.GROUP, Target.OVERALL):
                return True
            if n.target is Target.MEASURE and n.name in measures:
                return True
    return False


def _columns_read(o: object) -> set[str]:
    """The frame columns an override's condition reads (metric values, ages, change bases,
    attributes, measures)."""
    from engine.conditions import age_col, change_col, changes, level_col, value_col, walk
    from engine.scorecard import Compare, Target

    out: set[str] = set()
    cond = o.when  # type: ignore[attr-defined]
    for n in walk(cond):
        if isinstance(n, Compare) and n.target is Target.METRIC:
            out |= {value_col(n.name), level_col(n.name), age_col(n.name)}
        elif isinstance(n, Compare) and n.target in (Target.ATTRIBUTE, Target.MEASURE):
            out.add(n.name)
    for metric, days in changes(cond):
        out |= {value_col(metric), age_col(metric), change_col(metric, days)}
    return out


@dataclass(eq=False)
class MeasureCache:
    """One scorecard's accounts with their measure scores computed once, so that a draft of
    that scorecard is re-scored with a few vector operations (NumPy) instead of a full pass.

    Supported drafts (:meth:`supports`) may change weights, measure maps and validity, the
    grade bands and the overrides; the measures whose map or validity changed are scored again
    (one Polars pass over these accounts), overrides whose condition reads a group, the overall
    or a re-scored measure (or that are new or changed) are evaluated again, the others fire
    as before. Then it follows :mod:`engine.scoring` step by step: weighted means under the
    missing policy with the same sums in the same order, overrides in order on the values
    before overrides, the product roll-up, manual overrides and grades. It returns
    :data:`LEAN` columns equal to ``score``'s (tests compare them for many random drafts)."""

    card: Scorecard
    as_of: date
    cards: dict[str, Scorecard]
    units: pl.DataFrame  # one row per unit: the scoring frame plus measure columns
    scores: np.ndarray  # units x measures, 0 where absent
    present: np.ndarray  # units x measures, bool
    fixed: dict[str, np.ndarray]  # override id -> fired (before the raw-score check)
    account: np.ndarray  # unit -> account index
    account_ids: list[str]
    multi: np.ndarray  # account index -> has several units
    product_arr: pl.DataFrame | None
    manual: pl.DataFrame | None

    def supports(self, draft: Scorecard) -> bool:
        """Whether :meth:`rescore` can score ``draft`` (see the class docstring)."""
        if _structure(draft) != _structure(self.card):
            return False
        columns = set(self.units.columns)
        return all(_columns_read(o) <= columns for o in draft.overrides)

    def rescore(self, draft: Scorecard) -> pl.DataFrame:
        """Company rows (:data:`LEAN` columns, sorted by account) of these accounts under
        ``draft``."""
        if not self.supports(draft):
            raise ValueError("this draft changes what the cache holds: re-score it in full")
        from engine.conditions import RAW_SCORE

        scores, present, units, changed = self._measures(draft)
        policy = draft.missing
        col = 0
        groups: dict[str, np.ndarray] = {}
        gpresent: dict[str, np.ndarray] = {}
        for g in draft.groups:
            k = len(g.measures)
            s, p = scores[:, col : col + k], present[:, col : col + k]
            col += k
            groups[g.id] = weighted_mean(s, p, [m.weight for m in g.measures], policy)
            gpresent[g.id] = np.asarray(p.any(axis=1)) if k else np.zeros(len(s), dtype=bool)
        gs = np.column_stack([groups[g.id] for g in draft.groups])
        gp = np.column_stack([gpresent[g.id] for g in draft.groups])
        overall = weighted_mean(gs, gp, [g.weight for g in draft.groups], policy)
        raw = np.where(present.any(axis=1), overall, np.nan)

        base_rules = {o.id: o for o in self.card.overrides}
        current = raw.copy()
        fired: list[tuple[str, np.ndarray]] = []
        frame: pl.DataFrame | None = None
        for o in draft.overrides:
            if (o.starts_on and self.as_of < o.starts_on) or (
                o.expires_on and self.as_of >= o.expires_on
            ):
                continue
            same = base_rules.get(o.id) == o and not _reads(o.when, measures=changed)
            if same and o.id in self.fixed:
                hit = self.fixed[o.id] & ~np.isnan(raw)
            else:
                if frame is None:
                    frame = units.with_columns(
                        pl.Series(RAW_SCORE, raw, nan_to_null=True),
                        *[pl.Series(k, v, nan_to_null=True) for k, v in groups.items()],
                    )
                hit = (
                    frame.select((_condition(o) & pl.col(RAW_SCORE).is_not_null()).fill_null(False))
                    .to_series()
                    .to_numpy()
                )
            fired.append((o.id, hit))
            current = np.where(hit, apply_action_array(current, o.then, draft.scheme), current)

        company = self._roll_up(fired, current, raw)
        cards = {**self.cards, draft.id: draft}
        company = _s._apply_manual(company, cards, self.manual, self.as_of)
        company = _s._regrade(company, cards)
        return company.select(LEAN).sort("account_id")

    def _measures(self, draft: Scorecard) -> tuple[np.ndarray, np.ndarray, pl.DataFrame, set[str]]:
        """Measure scores under ``draft``: the cached ones, and the measures whose map or
        validity changed scored again."""
        from engine.scorecard import MissingPolicy

        before = {m.id: _measure_key(m) for _, m in self.card.measures}
        changed = [m for _, m in draft.measures if _measure_key(m) != before.get(m.id)]
        if not changed:
            return self.scores, self.present, self.units, set()
        exprs: dict[str, pl.Expr] = {}
        for m in changed:
            raw_expr, present_expr, _stale = _s._measure_exprs(m, draft)
            exprs[f"__s::{m.id}"] = raw_expr
            exprs[f"__p::{m.id}"] = present_expr
        outs: dict[str, pl.Expr] = {}
        for m in changed:
            s, p = pl.col(f"__s::{m.id}"), pl.col(f"__p::{m.id}")
            outs[m.id] = (
                pl.when(p).then(s).otherwise(0.0)
                if draft.missing is MissingPolicy.ZERO
                else pl.when(p).then(s)
            )
        units = self.units.lazy().with_columns(**exprs).with_columns(**outs).collect()
        ids = [m.id for _, m in draft.measures]
        scores, present = self.scores.copy(), self.present.copy()
        for m in changed:
            j = ids.index(m.id)
            scores[:, j] = units.get_column(f"__s::{m.id}").fill_null(0.0).to_numpy()
            present[:, j] = units.get_column(f"__p::{m.id}").to_numpy().astype(bool)
        return scores, present, units, {m.id for m in changed}

    def _roll_up(
        self, fired: list[tuple[str, np.ndarray]], score: np.ndarray, raw: np.ndarray
    ) -> pl.DataFrame:
        """Company values: a single unit's own; for several units, the product roll-up with
        ``engine.scoring``'s own weights and sums (in Polars, so that a sum of products lands
        on the same floating-point value, band edges included)."""
        n = len(self.account_ids)
        raw_c = np.full(n, np.nan)
        fin_c = np.full(n, np.nan)
        single = ~self.multi[self.account]
        raw_c[self.account[single]] = raw[single]
        fin_c[self.account[single]] = score[single]
        if self.multi.any():
            many = self.units.select("account_id", "product", "scorecard").filter(
                pl.Series(~single)
            )
            many = many.with_columns(
                pl.Series("raw_score", raw[~single], nan_to_null=True),
                pl.Series("score", score[~single], nan_to_null=True),
                pl.Series("_a", self.account[~single]),
            )
            w_raw = _s._rollup_weights(many, self.cards, self.product_arr, "raw_score")
            w_fin = _s._rollup_weights(many, self.cards, self.product_arr, "score")
            key = ["account_id", "product"]
            m = many.join(w_raw.rename({"_w": "_wr"}), on=key, how="left", nulls_equal=True).join(
                w_fin.rename({"_w": "_wf"}), on=key, how="left", nulls_equal=True
            )
            rolled = m.group_by("_a", maintain_order=True).agg(_s.rollup_score_exprs())
            idx = rolled.get_column("_a").to_numpy()
            raw_c[idx] = rolled.get_column("raw_score").fill_null(np.nan).to_numpy()
            fin_c[idx] = rolled.get_column("score").fill_null(np.nan).to_numpy()
        return pl.DataFrame(
            {
                "account_id": self.account_ids,
                "scorecard": [self.card.id] * n,
                "score": pl.Series(fin_c, nan_to_null=True),
                "raw_score": pl.Series(raw_c, nan_to_null=True),
                "overrides": self._fired_lists(fired),
            }
        )

    def _fired_lists(self, fired: list[tuple[str, np.ndarray]]) -> pl.Series:
        """Per account, the overrides that fired: in rule order for one unit; for several
        units, the union in alphabetical order (as the roll-up lists them)."""
        n = len(self.account_ids)
        units = [np.flatnonzero(hit) for _, hit in fired]
        sizes = [len(u) for u in units]
        if sum(sizes) == 0:  # broadcast one empty list (a Python list of n lists is slow)
            return (
                pl.DataFrame({"_a": np.arange(n)})
                .with_columns(pl.lit([], dtype=pl.List(pl.Utf8)).alias("overrides"))
                .get_column("overrides")
            )
        u = np.concatenate(units)
        names = np.array([oid for oid, _ in fired], dtype=object)
        long = pl.DataFrame(
            {
                "_a": self.account[u],
                "_i": np.repeat(np.arange(len(fired)), sizes),
                "_id": pl.Series(np.repeat(names, sizes).tolist(), dtype=pl.Utf8),
                "_multi": self.multi[self.account[u]],
            }
        )
        one = (
            long.filter(~pl.col("_multi"))
            .sort("_a", "_i")
            .group_by("_a", maintain_order=True)
            .agg(pl.col("_id"))
        )
        many = long.filter(pl.col("_multi")).group_by("_a").agg(pl.col("_id").unique().sort())
        lists = pl.concat([one, many])
        return (
            pl.DataFrame({"_a": np.arange(n)})
            .join(lists, on="_a", how="left")
            .sort("_a")
            .select(pl.col("_id").fill_null(pl.lit([], dtype=pl.List(pl.Utf8))))
            .to_series()
            .alias("overrides")
        )


def _condition(o: object) -> pl.Expr:
    """An override's condition as scoring evaluates it (with its freshness limit)."""
    from engine.conditions import age_col, condition_expr, metrics_read

    cond = condition_expr(o.when)  # type: ignore[attr-defined]
    days = o.expires_after_days  # type: ignore[attr-defined]
    if days is not None:
        for metric in sorted(metrics_read(o.when)):  # type: ignore[attr-defined]
            cond = cond & (pl.col(age_col(metric)) <= days).fill_null(False)
    return cond


def measure_cache(
    prepared: Prepared,
    cards: Mapping[str, Scorecard],
    card_id: str,
    *,
    default: str = "default",
) -> MeasureCache:
    """Compute the measure scores of the accounts ``cards`` assign to ``card_id`` once."""
    from engine.conditions import RAW_SCORE
    from engine.scorecard import MissingPolicy

    cards = _as_cards(cards, default)
    card = cards[card_id]
    frame = prepared.accounts
    for attr in sorted(_s._attributes_read(cards.values()) - set(frame.columns)):
        frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias(attr))
    assigned = frame.with_columns(_s.assign(frame, cards, default))
    mine = assigned.filter(pl.col("scorecard") == card_id)
    units = mine.join(prepared.wide_for(cards.values()), on="account_id", how="left")
    exprs: dict[str, pl.Expr] = {}
    outs: dict[str, pl.Expr] = {}
    for _, m in card.measures:
        raw_expr, present_expr, _stale = _s._measure_exprs(m, card)
        exprs[f"__s::{m.id}"] = raw_expr
        exprs[f"__p::{m.id}"] = present_expr
        s, p = pl.col(f"__s::{m.id}"), pl.col(f"__p::{m.id}")
        outs[m.id] = (
            pl.when(p).then(s).otherwise(0.0)
            if card.missing is MissingPolicy.ZERO
            else pl.when(p).then(s)
        )
    units = units.lazy().with_columns(**exprs).with_columns(**outs).collect()
    ids = [m.id for _, m in card.measures]
    scores = (
        units.select([pl.col(f"__s::{i}").fill_null(0.0) for i in ids]).to_numpy()
        if ids
        else np.zeros((units.height, 0))
    )
    present = (
        units.select([pl.col(f"__p::{i}") for i in ids]).to_numpy().astype(bool)
        if ids
        else np.zeros((units.height, 0), dtype=bool)
    )
    fixed: dict[str, np.ndarray] = {}
    for o in card.overrides:
        if not _reads(o.when, measures=set()):
            fixed[o.id] = (
                units.with_columns(pl.lit(0.0).alias(RAW_SCORE))
                .select(_condition(o).fill_null(False))
                .to_series()
                .to_numpy()
            )
    account = units.select(pl.col("account_id").rank("dense").cast(pl.Int64) - 1).to_series()
    account_ids = (
        units.select("account_id").unique().sort("account_id").get_column("account_id").to_list()
    )
    counts = np.bincount(account.to_numpy(), minlength=len(account_ids))
    product_arr = prepared.product_arr
    if product_arr is not None and product_arr.height:
        product_arr = product_arr.filter(pl.col("account_id").cast(pl.Utf8).is_in(account_ids))
    manual = prepared.manual_overrides
    if manual is not None and manual.height:
        manual = manual.filter(pl.col("account_id").cast(pl.Utf8).is_in(account_ids))
    return MeasureCache(
        card=card,
        as_of=prepared.as_of,
        cards=dict(cards),
        units=units,
        scores=scores,
        present=present,
        fixed=fixed,
        account=account.to_numpy(),
        account_ids=account_ids,
        multi=counts > 1,
        product_arr=product_arr if product_arr is not None and product_arr.height else None,
        manual=manual if manual is not None and manual.height else None,
    )
