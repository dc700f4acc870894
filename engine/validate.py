"""Semantic rules of a scorecard: each a small named function returning problems.

:func:`engine.scorecard.parse_scorecard` checks shape and types; the rules here check meaning
(weights, the order of points and bands, references between parts, what an override may
do). Every rule runs, none raises, and every problem comes back at once with a file-shaped
path (``groups[2].measures[0].map.linear[1]``) and a message that names the value, so the
scorecard designer can list them all and a file is never half-applied.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from engine.problems import Problem
from engine.scorecard import (
    MAX_BANDS,
    ActionType,
    AllOf,
    AnyOf,
    BandsMap,
    Change,
    Compare,
    Condition,
    Group,
    LevelsMap,
    LinearMap,
    Measure,
    NotOf,
    Op,
    SchemeType,
    Scorecard,
    Target,
)

# Output columns of ``engine.scoring.score``: a group or measure id becomes a column too, so
# it may not take one of these names (docs/contracts.md).
RESERVED_IDS = frozenset(
    {
        "account_id",
        "scorecard",
        "score",
        "raw_score",
        "grade",
        "missing",
        "stale",
        "overrides",
        "incomplete",
        "outcomes_score",
        "experience_score",
        "product",
        "name",
        "arr",
    }
)

_ORDERED_OPS = frozenset({Op.LT, Op.LE, Op.GT, Op.GE})
_LIST_OPS = frozenset({Op.IN, Op.NOT_IN})
_SCORE_TARGETS = frozenset({Target.METRIC, Target.MEASURE, Target.GROUP, Target.OVERALL})
_TARGET_NOUN = {
    Target.METRIC: "a metric",
    Target.MEASURE: "a measure score",
    Target.GROUP: "a group score",
    Target.OVERALL: "the overall score",
    Target.ATTRIBUTE: "an account attribute",
}


@dataclass(frozen=True)
class _Context:
    card: Scorecard
    known_metrics: set[str] | None


Rule = Callable[[_Context], Iterator[Problem]]


def validate(card: Scorecard, *, known_metrics: set[str] | None = None) -> list[Problem]:
    """Every semantic problem of one scorecard, in rule order; empty when it is usable.

    ``known_metrics``: the metric ids the data provides; when given, every metric a measure
    or an override reads must be one of them. Cross-scorecard rules (assignment targets)
    are in :func:`validate_set`.
    """
    ctx = _Context(card, known_metrics)
    return [problem for rule in RULES for problem in rule(ctx)]


def validate_set(cards: Mapping[str, Scorecard]) -> list[Problem]:
    """The rules across a set of scorecards ``{id: Scorecard}``: each problem's path starts
    with the id of the scorecard it is in (``default: assignment[0].scorecard``).

    Run :func:`validate` on each scorecard too; this only checks what one card cannot.
    """
    problems: list[Problem] = []
    known = ", ".join(repr(k) for k in sorted(cards)) or "none"
    for key, card in cards.items():
        if card.id != key:
            problems.append(
                Problem("id", f"scorecard id {card.id!r} is filed under {key!r}").within(key)
            )
        for i, a in enumerate(card.assignment):
            if a.scorecard and a.scorecard not in cards:
                problems.append(
                    Problem(
                        f"assignment[{i}].scorecard",
                        f"assigns to scorecard {a.scorecard!r}, which does not exist "
                        f"(known: {known})",
                    ).within(key)
                )
    return problems


# --------------------------------------------------------------------------- helpers


def _num(x: float | int) -> str:
    """A number as a person writes it: 50 not 50.0, 0.25 as 0.25."""
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return repr(x)


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_score(v: float) -> bool:
    return math.isfinite(v) and 0 <= v <= 100


def _blank(s: str) -> bool:
    return not s.strip()


def _measure_paths(card: Scorecard) -> Iterator[tuple[str, str, Group | Measure]]:
    """``(path, "group" | "measure", model)`` of every group and measure, in file order."""
    for i, g in enumerate(card.groups):
        yield f"groups[{i}]", "group", g
        for j, m in enumerate(g.measures):
            yield f"groups[{i}].measures[{j}]", "measure", m


def _conditions(c: Condition, path: str) -> Iterator[tuple[str, Condition]]:
    """Every condition in a tree with its file path, the root first (``when.all[1].not``)."""
    yield path, c
    if isinstance(c, AllOf | AnyOf):
        for i, item in enumerate(c.items):
            yield from _conditions(item, f"{path}.{c.kind}[{i}]")
    elif isinstance(c, NotOf):
        yield from _conditions(c.item, f"{path}.not")


# --------------------------------------------------------------------------- structure


def _has_groups(ctx: _Context) -> Iterator[Problem]:
    if not ctx.card.groups:
        yield Problem("groups", "the scorecard has no groups; add at least one group of measures")


def _groups_have_measures(ctx: _Context) -> Iterator[Problem]:
    for i, g in enumerate(ctx.card.groups):
        if not g.measures:
            yield Problem(f"groups[{i}].measures", f"group {g.id!r} has no measures")


def _required_text(ctx: _Context) -> Iterator[Problem]:
    card = ctx.card
    if _blank(card.id):
        yield Problem("id", "the scorecard id is empty")
    for path, kind, item in _measure_paths(card):
        if _blank(item.id):
            yield Problem(f"{path}.id", f"the {kind} id is empty")
    for i, g in enumerate(card.groups):
        for j, m in enumerate(g.measures):
            if _blank(m.metric):
                yield Problem(
                    f"groups[{i}].measures[{j}].metric", f"measure {m.id!r} names no metric"
                )
    for i, band in enumerate(card.scheme.bands):
        if _blank(band.label):
            yield Problem(f"scheme.bands[{i}].label", "the band label is empty")
    for i, o in enumerate(card.overrides):
        if _blank(o.id):
            yield Problem(f"overrides[{i}].id", "the override id is empty")
    for i, a in enumerate(card.assignment):
        if _blank(a.scorecard):
            yield Problem(f"assignment[{i}].scorecard", "the scorecard to assign is empty")


# --------------------------------------------------------------------------- ids


def _unique_ids(ctx: _Context) -> Iterator[Problem]:
    """Group and measure ids share one namespace: each becomes an output column."""
    seen: dict[str, str] = {}
    for path, kind, item in _measure_paths(ctx.card):
        key = item.id
        if _blank(key):
            continue  # reported by _required_text
        if key in seen:
            yield Problem(
                f"{path}.id",
                f"{kind} id {key!r} is already used at {seen[key]}; group and measure ids "
                "must be unique because each becomes an output column",
            )
        else:
            seen[key] = path
    seen_overrides: dict[str, str] = {}
    for i, o in enumerate(ctx.card.overrides):
        if _blank(o.id):
            continue
        if o.id in seen_overrides:
            yield Problem(
                f"overrides[{i}].id",
                f"override id {o.id!r} is already used at {seen_overrides[o.id]}",
            )
        else:
            seen_overrides[o.id] = f"overrides[{i}]"


def _reserved_ids(ctx: _Context) -> Iterator[Problem]:
    for path, kind, item in _measure_paths(ctx.card):
        key = item.id
        if key in RESERVED_IDS:
            yield Problem(
                f"{path}.id",
                f"{kind} id {key!r} is reserved for an output column; choose another id",
            )


# --------------------------------------------------------------------------- weights


def _weights_not_negative(ctx: _Context) -> Iterator[Problem]:
    for path, kind, item in _measure_paths(ctx.card):
        w = item.weight
        if not math.isfinite(w):
            yield Problem(f"{path}.weight", f"{kind} weight {_num(w)} is not a finite number")
        elif w < 0:
            yield Problem(
                f"{path}.weight", f"{kind} weight {_num(w)} is negative; weights must be 0 or more"
            )


def _weights_not_all_zero(ctx: _Context) -> Iterator[Problem]:
    groups = ctx.card.groups
    for i, g in enumerate(groups):
        if g.measures and all(m.weight == 0 for m in g.measures):
            yield Problem(
                f"groups[{i}].measures",
                f"every measure weight of group {g.id!r} is 0; at least one must be above 0",
            )
    if groups and all(g.weight == 0 for g in groups):
        yield Problem("groups", "every group weight is 0; at least one must be above 0")


# --------------------------------------------------------------------------- measure maps


def _maps(ctx: _Context) -> Iterator[Problem]:
    for i, g in enumerate(ctx.card.groups):
        for j, m in enumerate(g.measures):
            path = f"groups[{i}].measures[{j}].map"
            if isinstance(m.map, LinearMap):
                yield from _linear_map(m.map, f"{path}.linear")
            elif isinstance(m.map, BandsMap):
                yield from _bands_map(m.map, f"{path}.bands")
            elif isinstance(m.map, LevelsMap):
                yield from _levels_map(m.map, f"{path}.levels")


def _linear_map(mp: LinearMap, path: str) -> Iterator[Problem]:
    if len(mp.points) < 2:
        yield Problem(
            path,
            f"a linear map needs at least 2 points [value, score]; it has {len(mp.points)}",
        )
    for k, (x, score) in enumerate(mp.points):
        if not math.isfinite(x):
            yield Problem(f"{path}[{k}]", f"value {_num(x)} is not a finite number")
        elif k > 0 and math.isfinite(prev := mp.points[k - 1][0]) and x <= prev:
            what = "repeats" if x == prev else "is below"
            yield Problem(
                f"{path}[{k}]",
                f"value {_num(x)} {what} the previous value {_num(prev)}; the points must be "
                "in strictly increasing order of value",
            )
        if not _is_score(score):
            yield Problem(f"{path}[{k}]", f"score {_num(score)} is outside 0-100")


def _bands_map(mp: BandsMap, path: str) -> Iterator[Problem]:
    if not mp.steps:
        yield Problem(path, "a bands map needs at least one step {max, score}")
    last = len(mp.steps) - 1
    prev: float | None = None
    for k, step in enumerate(mp.steps):
        if step.max is None:
            if k != last:
                yield Problem(
                    f"{path}[{k}].max",
                    "only the last step may be open (no max); this step is not the last",
                )
        elif not math.isfinite(step.max):
            yield Problem(f"{path}[{k}].max", f"max {_num(step.max)} is not a finite number")
        else:
            if prev is not None and step.max <= prev:
                yield Problem(
                    f"{path}[{k}].max",
                    f"max {_num(step.max)} is not above the previous max {_num(prev)}; "
                    "steps must be in strictly increasing order of max",
                )
            prev = step.max
        if not _is_score(step.score):
            yield Problem(f"{path}[{k}].score", f"score {_num(step.score)} is outside 0-100")


def _levels_map(mp: LevelsMap, path: str) -> Iterator[Problem]:
    if not mp.levels:
        yield Problem(path, "a levels map needs at least one level {label, score}")
    labels: dict[str, int] = {}
    values: dict[float, int] = {}
    for k, level in enumerate(mp.levels):
        key = level.label.strip().casefold()
        if not key:
            yield Problem(f"{path}[{k}].label", "the level label is empty")
        elif key in labels:
            yield Problem(
                f"{path}[{k}].label",
                f"level label {level.label!r} is already used at {path}[{labels[key]}] "
                "(labels match regardless of case)",
            )
        else:
            labels[key] = k
        if level.value is not None:
            if level.value in values:
                yield Problem(
                    f"{path}[{k}].value",
                    f"level value {_num(level.value)} is already used at "
                    f"{path}[{values[level.value]}]",
                )
            else:
                values[level.value] = k
        if not _is_score(level.score):
            yield Problem(f"{path}[{k}].score", f"score {_num(level.score)} is outside 0-100")


def _validity(ctx: _Context) -> Iterator[Problem]:
    for i, g in enumerate(ctx.card.groups):
        for j, m in enumerate(g.measures):
            if m.validity_days is not None and m.validity_days < 1:
                yield Problem(
                    f"groups[{i}].measures[{j}].validity_days",
                    f"validity_days {m.validity_days} must be at least 1 (or left out)",
                )


def _measure_metrics_known(ctx: _Context) -> Iterator[Problem]:
    if ctx.known_metrics is None:
        return
    for i, g in enumerate(ctx.card.groups):
        for j, m in enumerate(g.measures):
            if m.metric and m.metric not in ctx.known_metrics:
                yield Problem(f"groups[{i}].measures[{j}].metric", f"unknown metric {m.metric!r}")


# --------------------------------------------------------------------------- grading scheme


def _scheme(ctx: _Context) -> Iterator[Problem]:
    scheme = ctx.card.scheme
    bands = scheme.bands
    if scheme.type is not SchemeType.NUMERIC and not bands:
        yield Problem("scheme.bands", f"a {scheme.type.value} scheme needs bands; it has none")
    if len(bands) > MAX_BANDS:
        yield Problem("scheme.bands", f"{len(bands)} bands is more than the maximum of {MAX_BANDS}")
    last = len(bands) - 1
    prev: float | None = None
    labels: dict[str, int] = {}
    for k, band in enumerate(bands):
        path = f"scheme.bands[{k}]"
        if k == last and band.below is not None:
            yield Problem(
                f"{path}.below",
                f"the last band {band.label!r} must have no 'below' (it runs up to 100); "
                f"it has below {_num(band.below)}",
            )
        elif k != last and band.below is None:
            yield Problem(
                f"{path}.below",
                f"band {band.label!r} needs a 'below' edge: only the last may leave it out",
            )
        if band.below is not None:
            if not (math.isfinite(band.below) and 0 < band.below <= 100):
                yield Problem(f"{path}.below", f"below {_num(band.below)} is outside (0, 100]")
            elif prev is not None and band.below <= prev:
                yield Problem(
                    f"{path}.below",
                    f"below {_num(band.below)} is not above the previous edge {_num(prev)}; "
                    "band edges must be strictly increasing",
                )
            if math.isfinite(band.below):
                prev = band.below
        key = band.label.strip().casefold()
        if key and key in labels:
            yield Problem(
                f"{path}.label",
                f"band label {band.label!r} is already used at scheme.bands[{labels[key]}]",
            )
        elif key:
            labels[key] = k


# --------------------------------------------------------------------------- overrides


def _override_conditions(ctx: _Context) -> Iterator[Problem]:
    card = ctx.card
    measure_ids = {m.id for _, m in card.measures}
    group_ids = {g.id for g in card.groups}
    for i, o in enumerate(card.overrides):
        for path, c in _conditions(o.when, f"overrides[{i}].when"):
            if isinstance(c, Compare):
                yield from _compare(c, path, ctx.known_metrics, measure_ids, group_ids)
            elif isinstance(c, Change):
                yield from _change(c, path, ctx.known_metrics)
            elif isinstance(c, AllOf | AnyOf) and not c.items:
                yield Problem(
                    f"{path}.{c.kind}", f"an '{c.kind}' needs at least one condition; it is empty"
                )


def _compare(
    c: Compare,
    path: str,
    known_metrics: set[str] | None,
    measure_ids: set[str],
    group_ids: set[str],
) -> Iterator[Problem]:
    where = f"{path}.{c.target.value}"
    if c.target is not Target.OVERALL and _blank(c.name):
        yield Problem(where, f"the {c.target.value} to compare is empty")
    elif c.target is Target.METRIC and known_metrics is not None and c.name not in known_metrics:
        yield Problem(where, f"unknown metric {c.name!r}")
    elif c.target is Target.MEASURE and c.name not in measure_ids:
        yield Problem(where, f"unknown measure {c.name!r}: no measure of this scorecard has it")
    elif c.target is Target.GROUP and c.name not in group_ids:
        yield Problem(where, f"unknown group {c.name!r}: no group of this scorecard has it")
    yield from _compare_value(c, path)


def _compare_value(c: Compare, path: str) -> Iterator[Problem]:
    v = c.value
    if c.op in _LIST_OPS:
        if not isinstance(v, tuple):
            yield Problem(f"{path}.value", f"op '{c.op.value}' needs a list of values; got {v!r}")
    elif isinstance(v, tuple):
        yield Problem(
            f"{path}.value",
            f"op '{c.op.value}' compares one value; got the list {list(v)!r} "
            "(use 'in' or 'not in' for a list)",
        )
    elif c.op in _ORDERED_OPS and c.target in _SCORE_TARGETS and not _is_number(v):
        yield Problem(
            f"{path}.value",
            f"op '{c.op.value}' on {_TARGET_NOUN[c.target]} needs a number; got {v!r}",
        )
    elif v is None:
        yield Problem(
            f"{path}.value",
            f"op '{c.op.value}' needs a value; got none (a comparison with a missing value "
            "is never true)",
        )


def _change(c: Change, path: str, known_metrics: set[str] | None) -> Iterator[Problem]:
    if _blank(c.metric):
        yield Problem(f"{path}.change", "the metric of the change is empty")
    elif known_metrics is not None and c.metric not in known_metrics:
        yield Problem(f"{path}.change", f"unknown metric {c.metric!r}")
    if c.days < 1:
        yield Problem(f"{path}.days", f"the window of {c.days} days must be at least 1 day")
    if c.op in _LIST_OPS:
        yield Problem(
            f"{path}.op",
            f"op '{c.op.value}' cannot compare a change; use <, <=, >, >=, == or !=",
        )
    if not math.isfinite(c.value):
        what = "pct" if c.relative else "delta"
        yield Problem(f"{path}.{what}", f"{what} {_num(c.value)} is not a finite number")


def _override_actions(ctx: _Context) -> Iterator[Problem]:
    scheme = ctx.card.scheme
    labels = [b.label for b in scheme.bands]
    for i, o in enumerate(ctx.card.overrides):
        act = o.then
        path = f"overrides[{i}].then.{act.type.value}"
        v = act.value
        if act.type is ActionType.GRADE:
            if not labels:
                yield Problem(
                    path,
                    f"grade {v!r} cannot be forced: the {scheme.type.value} scheme has no bands; "
                    "use cap or set",
                )
            elif not isinstance(v, str) or v not in labels:
                near = [x for x in labels if isinstance(v, str) and x.casefold() == v.casefold()]
                hint = f"; did you mean {near[0]!r}?" if near else ""
                yield Problem(
                    path,
                    f"grade {v!r} is not a band of the scheme "
                    f"(bands: {', '.join(repr(x) for x in labels)}){hint}",
                )
        elif isinstance(v, str):
            yield Problem(path, f"{act.type.value} value {v!r} is not a number")
        elif not _is_score(v):
            yield Problem(path, f"{act.type.value} value {_num(v)} is outside 0-100")


def _override_dates(ctx: _Context) -> Iterator[Problem]:
    for i, o in enumerate(ctx.card.overrides):
        path = f"overrides[{i}]"
        if o.expires_after_days is not None and o.expires_after_days < 1:
            yield Problem(
                f"{path}.expires_after_days",
                f"expires_after_days {o.expires_after_days} must be at least 1 (or left out)",
            )
        if o.starts_on is not None and o.expires_on is not None and o.expires_on <= o.starts_on:
            yield Problem(
                f"{path}.expires_on",
                f"expires_on {o.expires_on.isoformat()} is not after starts_on "
                f"{o.starts_on.isoformat()}; the override would never apply",
            )


# --------------------------------------------------------------------------- assignment


def _assignment(ctx: _Context) -> Iterator[Problem]:
    card = ctx.card
    for i, a in enumerate(card.assignment):
        if a.scorecard and a.scorecard == card.id:
            yield Problem(
                f"assignment[{i}].scorecard",
                f"scorecard {card.id!r} assigns to itself; name another scorecard",
            )
        for path, c in _conditions(a.when, f"assignment[{i}].when"):
            if isinstance(c, Compare):
                if c.target is not Target.ATTRIBUTE:
                    yield Problem(
                        f"{path}.{c.target.value}",
                        "assignment may only compare account attributes; got a comparison "
                        f"on {_TARGET_NOUN[c.target]}",
                    )
                    continue
                if _blank(c.name):
                    yield Problem(f"{path}.attribute", "the attribute to compare is empty")
                yield from _compare_value(c, path)
            elif isinstance(c, Change):
                yield Problem(
                    f"{path}.change",
                    f"assignment may only compare account attributes; got a change of {c.metric!r}",
                )
            elif isinstance(c, AllOf | AnyOf) and not c.items:
                yield Problem(
                    f"{path}.{c.kind}", f"an '{c.kind}' needs at least one condition; it is empty"
                )


RULES: tuple[Rule, ...] = (
    _has_groups,
    _groups_have_measures,
    _required_text,
    _unique_ids,
    _reserved_ids,
    _weights_not_negative,
    _weights_not_all_zero,
    _maps,
    _validity,
    _measure_metrics_known,
    _scheme,
    _override_conditions,
    _override_actions,
    _override_dates,
    _assignment,
)
"""Every rule :func:`validate` runs, in the order their problems are listed."""
