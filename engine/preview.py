"""What a draft scorecard would change: the designer's live preview, as pure Polars.

Given the base scores (the scorecards in force) and the draft scores (the same portfolio and
as-of date with the draft in place of its scorecard), :func:`compare` returns

- the grade **distribution** before and after (accounts and ARR per grade) and a score
  **histogram** (5-point bins) before and after;
- the grade **transition matrix** (every before x after pair, with accounts and ARR);
- the **accounts that change grade**, biggest ARR first;
- a **summary** (how many move up or down, the mean score before and after, the ARR moved).

:func:`reasons` says why each of those accounts moved: the exact split of its score change
from :func:`engine.explain.explain_change`, summed per DEAR group, the measure that moved most
inside each group, the overrides that started or stopped firing and a change of scorecard.
:func:`preview_draft` runs it all on prepared values (:mod:`engine.rescore`), fast enough to
rerun on every edit.

Grades are compared by label. A scorecard without bands (``numeric``) grades by the rounded
score; those are grouped in tens (``70-79``) so the matrix stays readable. An account without a
score is in the grade :data:`NO_SCORE`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from engine.explain import explain_change
from engine.rescore import (
    MeasureCache,
    Prepared,
    affected_accounts,
    measure_cache,
    rescore,
    rescore_draft,
    with_draft,
)
from engine.scorecard import (
    Action,
    ActionType,
    AllOf,
    AnyOf,
    BandsMap,
    Change,
    Compare,
    Condition,
    LevelsMap,
    LinearMap,
    Measure,
    NotOf,
    Op,
    Override,
    Scorecard,
    Target,
)
from engine.scoring import ScoreDetail

NO_SCORE = "No score"
HIST_BIN = 5  # points per histogram bin
REASON_PARTS = 3  # groups named in a reason
_EPS = 1e-9
_ACCOUNT_COLS = ("name", "arr", "segment", "region", "csm", "renewal_date")


@dataclass(frozen=True)
class Summary:
    accounts: int
    scored_before: int
    scored_after: int
    changed: int  # accounts whose grade changed
    up: int  # ... to a better grade (later in the grade order)
    down: int
    score_changed: int  # accounts whose score moved by more than 0.05 points
    mean_before: float | None
    mean_after: float | None
    arr_changed: float  # ARR of the accounts whose grade changed
    arr_down: float


@dataclass(frozen=True)
class Preview:
    """See the module docstring. ``grades`` is the grade order used (worst first, then
    :data:`NO_SCORE` when some account has no score)."""

    grades: tuple[str, ...]
    distribution: pl.DataFrame  # grade, accounts_before, accounts_after, arr_before, arr_after
    histogram: pl.DataFrame  # bin (lower edge), accounts_before, accounts_after
    transitions: pl.DataFrame  # grade_before, grade_after, accounts, arr (every pair)
    changes: pl.DataFrame  # one row per account whose grade changed (see :func:`compare`)
    summary: Summary
    reasons: pl.DataFrame = field(default_factory=pl.DataFrame)  # see :func:`reasons`

    def matrix(self, value: str = "accounts") -> list[list[float]]:
        """The transition matrix as rows (before) x columns (after), in grade order."""
        idx = {g: i for i, g in enumerate(self.grades)}
        out = [[0.0] * len(self.grades) for _ in self.grades]
        for row in self.transitions.iter_rows(named=True):
            out[idx[row["grade_before"]]][idx[row["grade_after"]]] = float(row[value])
        return out


# --------------------------------------------------------------------------- grades


def band_order(cards: Sequence[Scorecard]) -> list[str]:
    """Band labels worst first, in the order the scorecards list them (first card first)."""
    out: list[str] = []
    for card in cards:
        for band in card.scheme.bands:
            if band.label not in out:
                out.append(band.label)
    return out


def _grade_class(grades: Sequence[str]) -> pl.Expr:
    """The grade as compared: a known band label, tens of the score for unbanded grades, or
    :data:`NO_SCORE`."""
    tens = (pl.col("score").clip(0, 99.999) // 10 * 10).cast(pl.Int64)
    decade = pl.format("{}-{}", tens, tens + 9)
    return (
        pl.when(pl.col("score").is_null())
        .then(pl.lit(NO_SCORE))
        .when(pl.col("grade").is_in(list(grades)))
        .then(pl.col("grade"))
        .otherwise(decade)
    )


def _side(scores: pl.DataFrame, grades: Sequence[str], suffix: str) -> pl.DataFrame:
    return scores.select(
        "account_id",
        pl.col("scorecard").alias(f"scorecard_{suffix}"),
        pl.col("score").alias(f"score_{suffix}"),
        _grade_class(grades).alias(f"grade_{suffix}"),
        pl.col("overrides").alias(f"overrides_{suffix}"),
    )


# --------------------------------------------------------------------------- compare


def compare(
    base: pl.DataFrame,
    draft: pl.DataFrame,
    accounts: pl.DataFrame | None = None,
    *,
    grades: Sequence[str] = (),
) -> Preview:
    """Compare two score frames of the same accounts (``engine.scoring.score`` output).

    ``accounts`` (optional) brings ``name``, ``arr`` and other attributes for the changed
    accounts; without it ARR counts as 0. ``grades``: band labels worst first; grades not
    among them are grouped by tens of the score. ``changes`` columns: ``account_id``, the
    attributes, ``scorecard_before``/``_after``, ``score_before``/``_after``, ``change``
    (points), ``grade_before``/``_after``, ``direction`` (``up``/``down``), ``overrides_before``
    /``_after``; sorted by ARR (largest first), then by the size of the change.
    """
    both = _side(base, grades, "before").join(
        _side(draft, grades, "after"), on="account_id", how="full", coalesce=True
    )
    both = both.with_columns(
        pl.col("grade_before").fill_null(NO_SCORE), pl.col("grade_after").fill_null(NO_SCORE)
    )
    attrs = _attributes(accounts)
    both = both.join(attrs, on="account_id", how="left").with_columns(pl.col("arr").fill_null(0.0))

    present = set(both.get_column("grade_before").unique().to_list()) | set(
        both.get_column("grade_after").unique().to_list()
    )
    order = [g for g in grades if g in present]
    order += sorted(g for g in present if g not in order and g != NO_SCORE)
    if NO_SCORE in present:
        order.append(NO_SCORE)
    rank = {g: i for i, g in enumerate(order)}

    distribution = _distribution(both, order)
    transitions = _transitions(both, order)
    rank_expr_before = pl.col("grade_before").replace_strict(rank, return_dtype=pl.Int64)
    rank_expr_after = pl.col("grade_after").replace_strict(rank, return_dtype=pl.Int64)
    # "No score" is last in the order but is not better than a grade: a move to or from it is
    # neither up nor down by rank, so name it by the score instead.
    moved = both.filter(pl.col("grade_before") != pl.col("grade_after")).with_columns(
        (pl.col("score_after") - pl.col("score_before")).alias("change"),
        pl.when(pl.col("grade_before") == NO_SCORE)
        .then(pl.lit("up"))
        .when(pl.col("grade_after") == NO_SCORE)
        .then(pl.lit("down"))
        .when(rank_expr_after > rank_expr_before)
        .then(pl.lit("up"))
        .otherwise(pl.lit("down"))
        .alias("direction"),
    )
    lead = ["account_id", *[c for c in attrs.columns if c != "account_id"]]
    changes = moved.select(
        *lead,
        "scorecard_before",
        "scorecard_after",
        "score_before",
        "score_after",
        "change",
        "grade_before",
        "grade_after",
        "direction",
        "overrides_before",
        "overrides_after",
    ).sort(
        ["arr", pl.col("change").abs(), "account_id"],
        descending=[True, True, False],
        nulls_last=True,
    )

    delta = (pl.col("score_after") - pl.col("score_before")).abs()
    summary = Summary(
        accounts=both.height,
        scored_before=int(both.get_column("score_before").is_not_null().sum()),
        scored_after=int(both.get_column("score_after").is_not_null().sum()),
        changed=changes.height,
        up=int((changes.get_column("direction") == "up").sum()),
        down=int((changes.get_column("direction") == "down").sum()),
        score_changed=int(both.select((delta > 0.05).fill_null(False).sum()).item()),
        mean_before=_mean(both, "score_before"),
        mean_after=_mean(both, "score_after"),
        arr_changed=float(changes.get_column("arr").sum()),
        arr_down=float(changes.filter(pl.col("direction") == "down").get_column("arr").sum()),
    )
    return Preview(
        grades=tuple(order),
        distribution=distribution,
        histogram=_histogram(both),
        transitions=transitions,
        changes=changes,
        summary=summary,
    )


def _attributes(accounts: pl.DataFrame | None) -> pl.DataFrame:
    if accounts is None:
        return pl.DataFrame(schema={"account_id": pl.Utf8, "arr": pl.Float64})
    cols = [c for c in _ACCOUNT_COLS if c in accounts.columns]
    out = accounts.select(pl.col("account_id").cast(pl.Utf8), *cols)
    if "arr" not in out.columns:
        out = out.with_columns(pl.lit(0.0).alias("arr"))
    return out.with_columns(pl.col("arr").cast(pl.Float64))


def _mean(frame: pl.DataFrame, col: str) -> float | None:
    value = frame.get_column(col).mean()
    return None if value is None else float(value)  # type: ignore[arg-type]


def _distribution(both: pl.DataFrame, order: Sequence[str]) -> pl.DataFrame:
    grid = pl.DataFrame({"grade": list(order)}, schema={"grade": pl.Utf8})
    before = both.group_by(pl.col("grade_before").alias("grade")).agg(
        pl.len().alias("accounts_before"), pl.col("arr").sum().alias("arr_before")
    )
    after = both.group_by(pl.col("grade_after").alias("grade")).agg(
        pl.len().alias("accounts_after"), pl.col("arr").sum().alias("arr_after")
    )
    out = grid.join(before, on="grade", how="left").join(after, on="grade", how="left")
    return out.select(
        "grade",
        pl.col("accounts_before").fill_null(0).cast(pl.Int64),
        pl.col("accounts_after").fill_null(0).cast(pl.Int64),
        pl.col("arr_before").fill_null(0.0),
        pl.col("arr_after").fill_null(0.0),
    )


def _transitions(both: pl.DataFrame, order: Sequence[str]) -> pl.DataFrame:
    grid = pl.DataFrame({"grade_before": list(order)}).join(
        pl.DataFrame({"grade_after": list(order)}), how="cross"
    )
    counts = both.group_by("grade_before", "grade_after").agg(
        pl.len().alias("accounts"), pl.col("arr").sum().alias("arr")
    )
    out = grid.join(counts, on=["grade_before", "grade_after"], how="left", maintain_order="left")
    return out.with_columns(
        pl.col("accounts").fill_null(0).cast(pl.Int64), pl.col("arr").fill_null(0.0)
    )


def _histogram(both: pl.DataFrame) -> pl.DataFrame:
    edges = list(range(0, 100, HIST_BIN))
    grid = pl.DataFrame({"bin": edges}, schema={"bin": pl.Int64})

    def counts(col: str, name: str) -> pl.DataFrame:
        b = (pl.col(col).clip(0, 100 - _EPS) // HIST_BIN * HIST_BIN).cast(pl.Int64)
        return (
            both.filter(pl.col(col).is_not_null())
            .group_by(b.alias("bin"))
            .agg(pl.len().cast(pl.Int64).alias(name))
        )

    out = grid.join(counts("score_before", "accounts_before"), on="bin", how="left").join(
        counts("score_after", "accounts_after"), on="bin", how="left"
    )
    return out.with_columns(
        pl.col("accounts_before").fill_null(0), pl.col("accounts_after").fill_null(0)
    )


# --------------------------------------------------------------------------- reasons


def reasons(
    changes: pl.DataFrame,
    parts: pl.DataFrame,
    labels: Mapping[str, str] | None = None,
    *,
    top: int = REASON_PARTS,
) -> pl.DataFrame:
    """Why each account in ``changes`` (from :func:`compare`) moved, in words.

    ``parts``: :func:`engine.explain.explain_change` of the base and draft details of these
    accounts (points of the overall score per measure and kind, summing to the change).
    ``labels``: group and measure id -> label. Returns ``account_id``, ``reason`` (text, e.g.
    ``Adoption +6.2 (weights; Weekly active users +3.1) · ROI -2.0 (weights)``), ``parts``
    (a list of ``{group, measure, kind, amount}`` structs, largest first) and ``explained``
    (their sum: the score change)."""
    labels = dict(labels or {})
    if changes.height == 0:
        return pl.DataFrame(
            schema={"account_id": pl.Utf8, "reason": pl.Utf8, "explained": pl.Float64}
        )
    ids = changes.select("account_id")
    parts = parts.join(ids, on="account_id", how="semi")
    by_account: dict[str, list[dict[str, Any]]] = {}
    for row in parts.iter_rows(named=True):
        by_account.setdefault(row["account_id"], []).append(row)
    out_rows = []
    for row in changes.iter_rows(named=True):
        acc_parts = by_account.get(row["account_id"], [])
        text = _reason_text(row, acc_parts, labels, top)
        out_rows.append(
            {
                "account_id": row["account_id"],
                "reason": text,
                "explained": float(sum(p["amount"] for p in acc_parts)),
            }
        )
    return pl.DataFrame(
        out_rows, schema={"account_id": pl.Utf8, "reason": pl.Utf8, "explained": pl.Float64}
    )


_KIND_WORDS = {"weight": "weights", "score": "measure maps", "missing": "missing values"}


def _reason_text(
    row: Mapping[str, Any], parts: Sequence[Mapping[str, Any]], labels: Mapping[str, str], top: int
) -> str:
    """Text for one account (see :func:`reasons`); the parts go in order of size."""
    out: list[str] = []
    if row.get("scorecard_before") != row.get("scorecard_after") and row.get("scorecard_after"):
        out.append(f"now scored by {row['scorecard_after']} (was {row['scorecard_before']})")
    if row.get("score_before") is None:
        out.append("had no score")
    elif row.get("score_after") is None:
        out.append("has no score now")
    fired_before = set(row.get("overrides_before") or [])
    fired_after = set(row.get("overrides_after") or [])
    for o in sorted(fired_after - fired_before):
        out.append(f"override {labels.get('override:' + o, o)} now applies")
    for o in sorted(fired_before - fired_after):
        out.append(f"override {labels.get('override:' + o, o)} no longer applies")

    groups: dict[str, dict[str, Any]] = {}
    override_amount = 0.0
    for p in parts:
        if p["kind"] == "override":
            override_amount += p["amount"]
            continue
        g = groups.setdefault(p["group"] or "", {"amount": 0.0, "kinds": {}, "measures": {}})
        g["amount"] += p["amount"]
        g["kinds"][p["kind"]] = g["kinds"].get(p["kind"], 0.0) + p["amount"]
        m = p["measure"] or ""
        g["measures"][m] = g["measures"].get(m, 0.0) + p["amount"]
    items: list[tuple[float, str]] = []
    for gid, g in groups.items():
        if abs(g["amount"]) < 0.05:
            continue
        kind = max(g["kinds"].items(), key=lambda kv: abs(kv[1]))[0]
        measure, amount = max(g["measures"].items(), key=lambda kv: abs(kv[1]))
        detail = _KIND_WORDS.get(kind, kind)
        if len(g["measures"]) > 1 and abs(amount) >= 0.05:
            detail += f"; {labels.get(measure, measure)} {_signed(amount)}"
        items.append(
            (abs(g["amount"]), f"{labels.get(gid, gid)} {_signed(g['amount'])} ({detail})")
        )
    if abs(override_amount) >= 0.05:
        items.append((abs(override_amount), f"overrides {_signed(override_amount)}"))
    items.sort(key=lambda x: -x[0])
    out.extend(text for _, text in items[:top])
    if not items and row.get("score_before") is not None and row.get("score_after") is not None:
        out.append("grade bands moved (score unchanged)")
    return " · ".join(out)


def _signed(x: float) -> str:
    return f"{x:+.1f}".replace("-", "−")


def labels_of(cards: Sequence[Scorecard]) -> dict[str, str]:
    """Group, measure and override ids -> labels (first card wins; overrides as
    ``override:<id>`` -> reason)."""
    out: dict[str, str] = {}
    for card in cards:
        for g in card.groups:
            out.setdefault(g.id, g.title)
            for m in g.measures:
                out.setdefault(m.id, m.title)
        for o in card.overrides:
            out.setdefault(f"override:{o.id}", f"{o.id} ({o.reason})" if o.reason else o.id)
    return out


# --------------------------------------------------------------------------- all together

DETAIL_UP_TO = 20_000  # a baseline keeps every account's contributions up to this many accounts


@dataclass(frozen=True, eq=False)
class Baseline:
    """The scores in force, computed once per data, as-of date and active versions.

    ``detail`` (small portfolios only) holds every account's per-measure contributions, so
    explaining a change needs no base re-score."""

    prepared: Prepared
    cards: Mapping[str, Scorecard]
    scores: pl.DataFrame
    default: str = "default"
    detail: ScoreDetail | None = None
    _caches: dict[str, MeasureCache] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def cache_for(self, card_id: str) -> MeasureCache:
        """The measure scores of one scorecard's accounts (computed on first use, then kept):
        most drafts of that scorecard re-score from them (:class:`MeasureCache`)."""
        with self._lock:
            cache = self._caches.get(card_id)
            if cache is None:
                cache = measure_cache(self.prepared, self.cards, card_id, default=self.default)
                self._caches[card_id] = cache
            return cache

    def detail_of(self, ids: pl.Series) -> ScoreDetail:
        if self.detail is None:
            return rescore(
                self.prepared, self.cards, default=self.default, accounts=ids, detail=True
            )
        keep = ids.cast(pl.Utf8).implode()
        d = self.detail
        return ScoreDetail(
            d.company.filter(pl.col("account_id").is_in(keep)),
            d.products.filter(pl.col("account_id").is_in(keep)),
            d.contributions.filter(pl.col("account_id").is_in(keep)),
        )


def baseline(
    prepared: Prepared,
    cards: Mapping[str, Scorecard],
    *,
    default: str = "default",
    detail_up_to: int = DETAIL_UP_TO,
) -> Baseline:
    """Score the prepared values with the scorecards in force (see :class:`Baseline`)."""
    if prepared.account_count <= detail_up_to:
        detail = rescore(prepared, cards, default=default, detail=True)
        return Baseline(prepared, dict(cards), detail.company, default, detail)
    scores = rescore(prepared, cards, default=default).company
    return Baseline(prepared, dict(cards), scores, default, None)


def preview_draft(
    base: Baseline,
    draft: Scorecard,
    *,
    grades: Sequence[str] | None = None,
    explain_limit: int = 200,
) -> Preview:
    """The preview of ``draft`` replacing its scorecard in the baseline's set. Reasons are
    given for the first ``explain_limit`` changed accounts (largest ARR first)."""
    prepared, default = base.prepared, base.default
    after_cards = with_draft(base.cards, draft)
    cache = base.cache_for(draft.id) if draft.id in base.cards else None
    draft_scores = rescore_draft(
        prepared, base.cards, base.scores, draft, default=default, cache=cache
    )
    if grades is None:
        grades = band_order([draft, *base.cards.values()])
    preview = compare(base.scores, draft_scores, prepared.accounts, grades=grades)
    head = preview.changes.head(explain_limit)
    if head.height == 0:
        return preview
    ids = head.get_column("account_id")
    before = base.detail_of(ids)
    after = rescore(prepared, after_cards, default=default, accounts=ids, detail=True)
    parts = explain_change(before, after)
    labels = labels_of([draft, *base.cards.values()])
    return replace(preview, reasons=reasons(head, parts, labels))


# --------------------------------------------------------------------------- versions


def compare_versions(
    prepared: Prepared,
    cards: Mapping[str, Scorecard],
    before: Scorecard,
    after: Scorecard,
    *,
    default: str = "default",
    grades: Sequence[str] | None = None,
) -> Preview:
    """The grade transition from scorecard ``before`` to ``after`` (two versions of one
    scorecard id), each in place of its id among ``cards``, on the prepared values."""
    base_cards = with_draft(cards, before)
    base_scores = rescore(prepared, base_cards, default=default).company
    after_scores = rescore_draft(prepared, base_cards, base_scores, after, default=default)
    if grades is None:
        grades = band_order([after, before, *cards.values()])
    return compare(base_scores, after_scores, prepared.accounts, grades=grades)


def describe_condition(cond: Condition) -> str:
    """A condition in words: ``weekly_active_user_share changed <= -40% in 30 days``."""
    if isinstance(cond, Compare):
        value = cond.value
        shown = ", ".join(_text(v) for v in value) if isinstance(value, tuple) else _text(value)
        if cond.op in (Op.IN, Op.NOT_IN):
            shown = f"[{shown}]"
        what = (
            "overall score" if cond.target is Target.OVERALL else f"{cond.target.value} {cond.name}"
        )
        return f"{what} {cond.op.value} {shown}"
    if isinstance(cond, Change):
        unit = "%" if cond.relative else ""
        return f"{cond.metric} changed {cond.op.value} {cond.value:g}{unit} in {cond.days} days"
    if isinstance(cond, AllOf | AnyOf):
        joiner = " and " if isinstance(cond, AllOf) else " or "
        inner = joiner.join(describe_condition(c) for c in cond.items)
        return f"({inner})" if len(cond.items) > 1 else inner
    assert isinstance(cond, NotOf)
    return f"not ({describe_condition(cond.item)})"


def _text(v: object) -> str:
    """A value as a person writes it: ``1`` not ``1.0``."""
    return f"{v:g}" if isinstance(v, float) else str(v)


def describe_action(action: Action) -> str:
    match action.type:
        case ActionType.GRADE:
            return f"force grade {action.value}"
        case ActionType.CAP:
            return f"cap the score at {_text(action.value)}"
        case ActionType.SET:
            return f"set the score to {_text(action.value)}"


def _map_text(m: Measure) -> str:
    mp = m.map
    if isinstance(mp, LinearMap):
        return "linear " + ", ".join(f"{x:g}→{y:g}" for x, y in mp.points)
    if isinstance(mp, BandsMap):
        return "bands " + ", ".join(
            f"≤{s.max:g}:{s.score:g}" if s.max is not None else f"else:{s.score:g}"
            for s in mp.steps
        )
    assert isinstance(mp, LevelsMap)
    return "levels " + ", ".join(f"{lv.label}:{lv.score:g}" for lv in mp.levels)


def _override_text(o: Override) -> str:
    parts = [f"when {describe_condition(o.when)}", describe_action(o.then)]
    if o.expires_after_days is not None:
        parts.append(f"for {o.expires_after_days} days after the data")
    if o.starts_on is not None:
        parts.append(f"from {o.starts_on.isoformat()}")
    if o.expires_on is not None:
        parts.append(f"until {o.expires_on.isoformat()}")
    return "; ".join(parts)


def effective_weights(card: Scorecard) -> dict[str, float]:
    """Each measure's share of the overall score (percent) when every measure has a value:
    group weight share x measure weight share inside the group."""
    total = sum(g.weight for g in card.groups)
    out: dict[str, float] = {}
    for g in card.groups:
        inner = sum(m.weight for m in g.measures)
        for m in g.measures:
            share = (g.weight / total if total else 0.0) * (m.weight / inner if inner else 0.0)
            out[m.id] = 100.0 * share
    return out


def diff(before: Scorecard, after: Scorecard) -> pl.DataFrame:
    """What changed between two scorecards, one row per changed item: ``section`` (settings,
    grading, group, measure, override, assignment), ``item`` (a label), ``field``, ``before``,
    ``after`` (text; empty when absent) and ``change`` (the numeric difference of weights and
    band edges, else null). Measures also get their effective share of the overall score
    (``share %``) when it moved by 0.05 points or more."""
    rows: list[dict[str, Any]] = []

    def add(
        section: str, item: str, fld: str, a: object, b: object, change: float | None = None
    ) -> None:
        rows.append(
            {
                "section": section,
                "item": item,
                "field": fld,
                "before": "" if a is None else str(a),
                "after": "" if b is None else str(b),
                "change": change,
            }
        )

    for fld in ("name", "missing", "stale", "rollup"):
        a, b = getattr(before, fld), getattr(after, fld)
        if a != b:
            add("settings", "scorecard", fld, getattr(a, "value", a), getattr(b, "value", b))
    if before.scheme.type != after.scheme.type:
        add("grading", "scheme", "type", before.scheme.type.value, after.scheme.type.value)
    bands_a = {bd.label: bd.below for bd in before.scheme.bands}
    bands_b = {bd.label: bd.below for bd in after.scheme.bands}
    for label in [*bands_a, *[x for x in bands_b if x not in bands_a]]:
        a_below, b_below = bands_a.get(label, "absent"), bands_b.get(label, "absent")
        if a_below != b_below:
            change = (
                float(b_below) - float(a_below)
                if isinstance(a_below, int | float) and isinstance(b_below, int | float)
                else None
            )
            add("grading", label, "below", _edge(a_below), _edge(b_below), change)

    groups_a = {g.id: g for g in before.groups}
    groups_b = {g.id: g for g in after.groups}
    for gid in [*groups_a, *[x for x in groups_b if x not in groups_a]]:
        ga, gb = groups_a.get(gid), groups_b.get(gid)
        label = (gb or ga).title  # type: ignore[union-attr]
        if ga is None or gb is None:
            add(
                "group",
                label,
                "group",
                "absent" if ga is None else "present",
                "absent" if gb is None else "present",
            )
            continue
        if ga.weight != gb.weight:
            add("group", label, "weight", f"{ga.weight:g}", f"{gb.weight:g}", gb.weight - ga.weight)
    eff_a, eff_b = effective_weights(before), effective_weights(after)
    measures_a = {m.id: m for _, m in before.measures}
    measures_b = {m.id: m for _, m in after.measures}
    for mid in [*measures_a, *[x for x in measures_b if x not in measures_a]]:
        ma, mb = measures_a.get(mid), measures_b.get(mid)
        label = (mb or ma).title  # type: ignore[union-attr]
        if ma is None or mb is None:
            add(
                "measure",
                label,
                "measure",
                "absent" if ma is None else "present",
                "absent" if mb is None else "present",
            )
            continue
        if ma.weight != mb.weight:
            add(
                "measure",
                label,
                "weight",
                f"{ma.weight:g}",
                f"{mb.weight:g}",
                mb.weight - ma.weight,
            )
        if abs(eff_a.get(mid, 0.0) - eff_b.get(mid, 0.0)) >= 0.05:
            add(
                "measure",
                label,
                "share %",
                f"{eff_a[mid]:.1f}",
                f"{eff_b[mid]:.1f}",
                eff_b[mid] - eff_a[mid],
            )
        if ma.map != mb.map:
            add("measure", label, "map", _map_text(ma), _map_text(mb))
        if ma.validity_days != mb.validity_days:
            add("measure", label, "validity_days", ma.validity_days, mb.validity_days)
        if ma.metric != mb.metric:
            add("measure", label, "metric", ma.metric, mb.metric)

    ov_a = {o.id: o for o in before.overrides}
    ov_b = {o.id: o for o in after.overrides}
    for oid in [*ov_a, *[x for x in ov_b if x not in ov_a]]:
        oa, ob = ov_a.get(oid), ov_b.get(oid)
        if oa != ob:
            add(
                "override",
                oid,
                "rule",
                _override_text(oa) if oa else "absent",
                _override_text(ob) if ob else "absent",
            )
    rules_a = [f"{describe_condition(r.when)} → {r.scorecard}" for r in before.assignment]
    rules_b = [f"{describe_condition(r.when)} → {r.scorecard}" for r in after.assignment]
    if rules_a != rules_b:
        add("assignment", "rules", "order", " | ".join(rules_a), " | ".join(rules_b))
    return pl.DataFrame(
        rows,
        schema={
            "section": pl.Utf8,
            "item": pl.Utf8,
            "field": pl.Utf8,
            "before": pl.Utf8,
            "after": pl.Utf8,
            "change": pl.Float64,
        },
    )


def _edge(x: object) -> str:
    if x is None:
        return "top band"
    return f"{x:g}" if isinstance(x, int | float) else str(x)


__all__ = [
    "NO_SCORE",
    "Baseline",
    "Preview",
    "Summary",
    "affected_accounts",
    "band_order",
    "baseline",
    "compare",
    "compare_versions",
    "describe_action",
    "describe_condition",
    "diff",
    "effective_weights",
    "labels_of",
    "preview_draft",
    "reasons",
]
