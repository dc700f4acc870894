"""The scorecard model: frozen, typed, parsed in one place.

A scorecard file is YAML (see ``docs/scorecard.md``). Loose shorthand in the file, such as
``map: {linear: [[0.2, 0], [0.8, 100]]}`` or ``when: {metric: nps, op: "<", value: 0}``, is
normalised here into canonical models with an explicit ``kind`` on every union; the rest of the
engine only ever sees the canonical models.

Parsing checks shape and types only and reports every problem at once as a
:class:`ScorecardError`. Semantic rules (weights, ordering of points and bands, references) live
in :mod:`engine.validate`; :func:`load_scorecard` runs both.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.problems import Problem, ScorecardError, format_path

MAX_BANDS = 12


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- enums


class SchemeType(StrEnum):
    NUMERIC = "numeric"
    LETTER = "letter"
    RYG = "ryg"


class MissingPolicy(StrEnum):
    RENORMALIZE = "renormalize"
    ZERO = "zero"
    FIXED = "fixed"


class StalePolicy(StrEnum):
    EXCLUDE = "exclude"
    KEEP = "keep"


class Rollup(StrEnum):
    ARR_WEIGHTED = "arr_weighted"
    MEAN = "mean"
    WORST = "worst"


class Category(StrEnum):
    """Whether a group counts towards the outcomes score or the experience score."""

    OUTCOMES = "outcomes"
    EXPERIENCE = "experience"


class Op(StrEnum):
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="
    NE = "!="
    IN = "in"
    NOT_IN = "not in"


class Target(StrEnum):
    METRIC = "metric"
    MEASURE = "measure"
    GROUP = "group"
    OVERALL = "overall"
    ATTRIBUTE = "attribute"


# --------------------------------------------------------------------------- grading


class Band(_Frozen):
    """A grade band: scores strictly below ``below`` (and at or above the previous edge).

    The last band has no ``below``. A score exactly on an edge belongs to the higher band.
    """

    label: str
    below: float | None = None
    color: str | None = None


class Scheme(_Frozen):
    type: SchemeType = SchemeType.RYG
    bands: tuple[Band, ...] = ()

    def band_edges(self) -> list[tuple[str, float, float]]:
        """``(label, lower, upper)`` per band; lower inclusive, upper exclusive (last: 100)."""
        out: list[tuple[str, float, float]] = []
        lower = 0.0
        for band in self.bands:
            upper = 100.0 if band.below is None else float(band.below)
            out.append((band.label, lower, upper))
            lower = upper
        return out


DEFAULT_BANDS: dict[SchemeType, tuple[Band, ...]] = {
    SchemeType.RYG: (
        Band(label="Red", below=50, color="#d1495b"),
        Band(label="Yellow", below=75, color="#edae49"),
        Band(label="Green", color="#00a878"),
    ),
    SchemeType.LETTER: (
        Band(label="F", below=60),
        Band(label="D", below=70),
        Band(label="C", below=80),
        Band(label="B", below=90),
        Band(label="A"),
    ),
    SchemeType.NUMERIC: (),
}


# --------------------------------------------------------------------------- measure maps


class LinearMap(_Frozen):
    """Piecewise-linear through ``points`` ``(value, score)``, clamped outside the ends."""

    kind: Literal["linear"] = "linear"
    points: tuple[tuple[float, float], ...]


class Step(_Frozen):
    """A step of a ``bands`` map: values up to and including ``max`` score ``score``."""

    max: float | None = None
    score: float


class BandsMap(_Frozen):
    """Step function: the first step whose ``max`` is >= the value; the last may be open."""

    kind: Literal["bands"] = "bands"
    steps: tuple[Step, ...]


class Level(_Frozen):
    """A categorical or subjective level, matched on its label (case-insensitive) or value."""

    label: str
    score: float
    help: str = ""
    value: float | None = None


class LevelsMap(_Frozen):
    kind: Literal["levels"] = "levels"
    levels: tuple[Level, ...]


MeasureMap = Annotated[LinearMap | BandsMap | LevelsMap, Field(discriminator="kind")]


class Measure(_Frozen):
    id: str
    metric: str
    label: str = ""
    help: str = ""
    weight: float = 1.0
    map: MeasureMap
    validity_days: int | None = None

    @property
    def title(self) -> str:
        return self.label or self.id


class Group(_Frozen):
    id: str
    label: str = ""
    weight: float = 1.0
    category: Category = Category.OUTCOMES
    help: str = ""
    measures: tuple[Measure, ...] = ()

    @property
    def title(self) -> str:
        return self.label or self.id


# --------------------------------------------------------------------------- conditions


class Compare(_Frozen):
    """``<target> <op> value``: a metric, measure score, group score, overall or attribute."""

    kind: Literal["compare"] = "compare"
    target: Target
    name: str = ""  # metric, measure or group id, or attribute name; empty for overall
    op: Op
    value: float | str | bool | date | tuple[float | str, ...] | None = None


class Change(_Frozen):
    """The change of a metric over ``days``: relative (percent) or absolute.

    ``relative`` compares ``100 * (now - then) / then``; ``then`` is the latest value on or
    before ``as_of - days``. No earlier value, or a zero base for a relative change, means the
    condition is false.
    """

    kind: Literal["change"] = "change"
    metric: str
    days: int
    op: Op
    value: float
    relative: bool = True


class AllOf(_Frozen):
    kind: Literal["all"] = "all"
    items: tuple[Condition, ...]


class AnyOf(_Frozen):
    kind: Literal["any"] = "any"
    items: tuple[Condition, ...]


class NotOf(_Frozen):
    kind: Literal["not"] = "not"
    item: Condition


Condition = Annotated[Compare | Change | AllOf | AnyOf | NotOf, Field(discriminator="kind")]
AllOf.model_rebuild()
AnyOf.model_rebuild()
NotOf.model_rebuild()


# --------------------------------------------------------------------------- overrides


class ActionType(StrEnum):
    GRADE = "grade"
    CAP = "cap"
    SET = "set"


class Action(_Frozen):
    """``grade``: move the score into that band; ``cap``: at most ``value``; ``set``: exactly."""

    type: ActionType
    value: float | str


class Override(_Frozen):
    """A structured rule. ``expires_after_days``: fires only while every metric value its
    condition reads is at most that many days old at the as-of date (a one-off event such as
    a sponsor leaving stops counting after that). ``starts_on``/``expires_on`` bound it in
    calendar time (``expires_on`` exclusive)."""

    id: str
    reason: str = ""
    when: Condition
    then: Action
    expires_after_days: int | None = None
    starts_on: date | None = None
    expires_on: date | None = None


class Assignment(_Frozen):
    scorecard: str
    when: Condition


class Scorecard(_Frozen):
    id: str = "default"
    name: str = ""
    description: str = ""
    scheme: Scheme = Scheme()
    missing: MissingPolicy = MissingPolicy.RENORMALIZE
    stale: StalePolicy = StalePolicy.EXCLUDE
    rollup: Rollup = Rollup.ARR_WEIGHTED
    groups: tuple[Group, ...] = ()
    overrides: tuple[Override, ...] = ()
    assignment: tuple[Assignment, ...] = ()

    # ---- convenience views -------------------------------------------------------------
    @property
    def measures(self) -> list[tuple[Group, Measure]]:
        return [(g, m) for g in self.groups for m in g.measures]

    @property
    def metrics(self) -> set[str]:
        return {m.metric for _, m in self.measures}

    def measure(self, measure_id: str) -> Measure | None:
        for _, m in self.measures:
            if m.id == measure_id:
                return m
        return None

    def group(self, group_id: str) -> Group | None:
        return next((g for g in self.groups if g.id == group_id), None)

    def to_dict(self) -> dict[str, Any]:
        """The canonical file shape (shorthand form), ready for ``yaml.safe_dump``."""
        return _denormalise(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100)

    def fingerprint(self) -> str:
        """A short stable hash of the canonical content: a small cache key."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- parsing

_COMPARE_KEYS = ("metric", "measure", "group", "attribute", "overall")


def parse_scorecard(data: Any, *, default_id: str = "default") -> Scorecard:
    """Normalise the YAML shorthand and build the model; raise :class:`ScorecardError` with
    every shape or type problem found (paths like ``groups[1].measures[0].map.linear``)."""
    problems: list[Problem] = []
    if not isinstance(data, Mapping):
        raise ScorecardError([Problem("", "a scorecard must be a mapping of keys to values")])
    canon = _normalise_scorecard(dict(data), problems, default_id)
    try:
        card = Scorecard.model_validate(canon)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc, canon))
        card = None
    if problems or card is None:
        raise ScorecardError(problems)
    if not card.scheme.bands and card.scheme.type is not SchemeType.NUMERIC:
        card = card.model_copy(
            update={"scheme": Scheme(type=card.scheme.type, bands=DEFAULT_BANDS[card.scheme.type])}
        )
    return card


class _UniqueKeyLoader(yaml.SafeLoader):
    """The safe loader, but a key given twice in one mapping is an error: plain YAML keeps the
    last one silently, so a second ``weight:`` would quietly win."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, list | dict):
                continue  # unhashable: the base class reports it
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 reads yes/no/on/off as booleans, so `value: NO` (Norway) or a level `Yes` would
# silently become True/False. Only true/false are booleans in a scorecard.
_UniqueKeyLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_scorecard_yaml(text: str, *, default_id: str = "default") -> Scorecard:
    """Parse YAML text; a syntax error or a repeated key is a problem naming line and column."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
        what = ": ".join(str(x) for x in parts if x) or str(exc)
        raise ScorecardError([Problem("", f"not valid YAML{where}: {what}")]) from None
    return parse_scorecard(data, default_id=default_id)


def load_scorecard(path: str | Path, *, known_metrics: set[str] | None = None) -> Scorecard:
    """Read, parse and validate one scorecard file; every problem is raised at once."""
    from engine.validate import validate

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScorecardError(
            [Problem("", f"cannot read {p}: {exc.strerror}")], source=str(p)
        ) from None
    try:
        card = parse_scorecard_yaml(text, default_id=p.stem)
    except ScorecardError as exc:
        raise ScorecardError(exc.problems, source=str(p)) from None
    problems = validate(card, known_metrics=known_metrics)
    if problems:
        raise ScorecardError(problems, source=str(p))
    return card


def load_scorecards(
    path: str | Path, *, known_metrics: set[str] | None = None
) -> dict[str, Scorecard]:
    """A file or a folder of ``*.yaml`` files -> ``{id: Scorecard}``; assignment references
    across the set are checked too. Every problem of every file is raised at once."""
    from engine.validate import validate_set

    p = Path(path)
    files = sorted([*p.glob("*.yaml"), *p.glob("*.yml")]) if p.is_dir() else [p]
    if p.is_dir() and not files:
        raise ScorecardError([Problem("", f"no *.yaml scorecard in folder {p}")], source=str(p))
    cards: dict[str, Scorecard] = {}
    problems: list[Problem] = []
    for f in files:
        try:
            card = load_scorecard(f, known_metrics=known_metrics)
        except ScorecardError as exc:
            problems.extend(pr.within(f.name) for pr in exc.problems)
            continue
        if card.id in cards:
            problems.append(Problem("id", f"scorecard id {card.id!r} is used twice").within(f.name))
        cards[card.id] = card
    if not problems:
        problems.extend(validate_set(cards))
    if problems:
        raise ScorecardError(problems, source=str(p))
    return cards


# ---- shorthand normalisation --------------------------------------------------------------


def _normalise_scorecard(
    d: dict[str, Any], problems: list[Problem], default_id: str
) -> dict[str, Any]:
    d.setdefault("id", default_id)
    if isinstance(d.get("scheme"), str):
        d["scheme"] = {"type": d["scheme"]}
    groups = d.get("groups")
    if isinstance(groups, list):
        d["groups"] = [_normalise_group(g, f"groups[{i}]", problems) for i, g in enumerate(groups)]
    overrides = d.get("overrides")
    if overrides is None:
        d["overrides"] = []
    elif isinstance(overrides, list):
        d["overrides"] = [
            _normalise_override(o, f"overrides[{i}]", problems) for i, o in enumerate(overrides)
        ]
    assignment = d.get("assignment")
    if assignment is None:
        d["assignment"] = []
    elif isinstance(assignment, list):
        out = []
        for i, a in enumerate(assignment):
            if isinstance(a, Mapping) and "when" in a:
                a = {
                    **a,
                    "when": _normalise_condition(a["when"], f"assignment[{i}].when", problems),
                }
            out.append(a)
        d["assignment"] = out
    return d


def _normalise_group(g: Any, path: str, problems: list[Problem]) -> Any:
    if not isinstance(g, Mapping):
        return g
    g = dict(g)
    measures = g.get("measures")
    if isinstance(measures, list):
        g["measures"] = [
            _normalise_measure(m, f"{path}.measures[{j}]", problems) for j, m in enumerate(measures)
        ]
    return g


def _normalise_measure(m: Any, path: str, problems: list[Problem]) -> Any:
    if not isinstance(m, Mapping):
        return m
    m = dict(m)
    mp = m.get("map")
    if isinstance(mp, Mapping) and "kind" not in mp:
        kinds = [k for k in ("linear", "bands", "levels") if k in mp]
        if len(kinds) != 1:
            problems.append(
                Problem(f"{path}.map", "a map needs exactly one of linear, bands or levels")
            )
            m["map"] = {"kind": "linear", "points": [[0, 0], [1, 100]]}  # placeholder, reported
        else:
            kind = kinds[0]
            body = mp[kind]
            extra = set(mp) - {kind}
            if extra:
                problems.append(Problem(f"{path}.map", f"unknown keys in a map: {sorted(extra)}"))
            if kind == "linear":
                m["map"] = {"kind": "linear", "points": body}
            elif kind == "bands":
                m["map"] = {"kind": "bands", "steps": body}
            else:
                m["map"] = {"kind": "levels", "levels": body}
    return m


def _normalise_override(o: Any, path: str, problems: list[Problem]) -> Any:
    if not isinstance(o, Mapping):
        return o
    o = dict(o)
    if "when" in o:
        o["when"] = _normalise_condition(o["when"], f"{path}.when", problems)
    then = o.get("then")
    if isinstance(then, Mapping) and "type" not in then:
        acts = [k for k in ("grade", "cap", "set") if k in then]
        if len(acts) != 1:
            problems.append(
                Problem(f"{path}.then", "an action needs exactly one of grade, cap or set")
            )
            o["then"] = {"type": "set", "value": 0}
        else:
            o["then"] = {"type": acts[0], "value": then[acts[0]]}
            extra = set(then) - {acts[0]}
            if extra:
                problems.append(
                    Problem(f"{path}.then", f"unknown keys in an action: {sorted(extra)}")
                )
    return o


def _normalise_condition(c: Any, path: str, problems: list[Problem]) -> Any:
    if not isinstance(c, Mapping):
        problems.append(Problem(path, "a condition must be a mapping"))
        return {"kind": "all", "items": []}
    c = dict(c)
    if "kind" in c:  # canonical form; its children may still be shorthand
        if c["kind"] in ("all", "any") and isinstance(c.get("items"), list):
            c["items"] = [
                _normalise_condition(x, f"{path}.items[{i}]", problems)
                for i, x in enumerate(c["items"])
            ]
        elif c["kind"] == "not" and "item" in c:
            c["item"] = _normalise_condition(c["item"], f"{path}.item", problems)
        return c
    if "all" in c or "any" in c:
        key = "all" if "all" in c else "any"
        items = c[key]
        if not isinstance(items, list):
            problems.append(Problem(f"{path}.{key}", "must be a list of conditions"))
            items = []
        return {
            "kind": key,
            "items": [
                _normalise_condition(x, f"{path}.{key}[{i}]", problems) for i, x in enumerate(items)
            ],
        }
    if "not" in c:
        return {"kind": "not", "item": _normalise_condition(c["not"], f"{path}.not", problems)}
    if "change" in c:
        amounts = [k for k in ("pct", "delta", "value") if k in c]
        rel = amounts == ["pct"]
        out = {"kind": "change", "metric": c["change"], "relative": rel}
        # Absent keys stay absent so that pydantic reports "required key is missing".
        out |= {k: c[k] for k in ("days", "op") if k in c}
        if len(amounts) != 1:
            problems.append(
                Problem(path, "a change condition needs exactly one of pct (percent) or delta")
            )
            out["value"] = 0  # placeholder, reported
        else:
            out["value"] = c[amounts[0]]
        extra = set(c) - {"change", "days", "op", "pct", "delta", "value"}
        if extra:
            problems.append(Problem(path, f"unknown keys in a change condition: {sorted(extra)}"))
        return out
    targets = [k for k in _COMPARE_KEYS if k in c]
    if len(targets) != 1:
        problems.append(
            Problem(
                path,
                "a condition needs exactly one of metric, measure, group, attribute, overall, "
                "change, all, any or not",
            )
        )
        return {"kind": "all", "items": []}
    t = targets[0]
    extra = set(c) - {t, "op", "value"}
    if extra:
        problems.append(Problem(path, f"unknown keys in a condition: {sorted(extra)}"))
    value = c.get("value")
    if isinstance(value, str) and _ISO_DATE.match(value):
        with contextlib.suppress(ValueError):  # a quoted ISO date compares as a date
            value = date.fromisoformat(value)
    if isinstance(value, list):
        value = tuple(value)
    out = {"kind": "compare", "target": t, "name": "" if t == "overall" else c[t], "value": value}
    if "op" in c:
        out["op"] = c["op"]
    return out


def _pydantic_problems(exc: ValidationError, canon: dict[str, Any]) -> list[Problem]:
    """Turn pydantic errors into problems with file-shaped paths.

    Errors of the members of one union share a path; they become one problem whose message
    lists what each member expected (``should be a valid number or a valid string``).
    """
    by_path: dict[str, list[str]] = {}
    given_at: dict[str, Any] = {}
    for err in exc.errors():
        path = format_path(_file_loc(err["loc"], canon, missing=err["type"] == "missing"))
        # The file says list and mapping where the model says tuple and dictionary.
        msg = err["msg"].replace("valid tuple", "valid list").replace("dictionary", "mapping")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        else:
            given_at.setdefault(path, err.get("input"))
        msgs = by_path.setdefault(path, [])
        if msg not in msgs:
            msgs.append(msg)
    out: list[Problem] = []
    for path, msgs in by_path.items():
        prefix = "Input should be "
        if len(msgs) > 1 and all(m.startswith(prefix) for m in msgs):
            alternatives = [m.removeprefix(prefix) for m in msgs]
            msg = f"{prefix}{', '.join(alternatives[:-1])} or {alternatives[-1]}"
        else:
            msg = "; ".join(msgs)
        if path in given_at and not isinstance(given_at[path], dict):
            msg = f"{msg} (got {given_at[path]!r})"
        out.append(Problem(path, msg))
    return out


def _file_loc(loc: Sequence[Any], canon: Any, *, missing: bool) -> list[Any]:
    """Map a pydantic location in the canonical data back to the keys of the file.

    Walks the canonical data beside the location: a step that is not a key of the current
    node is a union tag that pydantic adds (``linear``, ``compare``, ``float``) and is dropped,
    except the last step of a missing-key error. Canonical field names are renamed to the
    shorthand key the file uses (``points`` -> ``linear``, ``items`` -> ``all``, ``name`` ->
    ``metric``, an action's ``value`` -> ``cap``).
    """
    out: list[Any] = []
    node: Any = canon
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out.append(part)
            node = node[part] if isinstance(node, list | tuple) and part < len(node) else None
            continue
        if not isinstance(node, Mapping) or part not in node:
            if missing and i == len(loc) - 1:
                out.append(_shorthand_key(node, part))
            continue  # a union tag, not a level of the file
        out.append(_shorthand_key(node, part))
        node = node[part]
    return out


def _shorthand_key(node: Any, key: str) -> str:
    if not isinstance(node, Mapping):
        return key
    kind = node.get("kind")
    if kind == "linear" and key == "points":
        return "linear"
    if kind == "bands" and key == "steps":
        return "bands"
    if kind in ("all", "any") and key == "items":
        return str(kind)
    if kind == "not" and key == "item":
        return "not"
    if kind == "compare" and key == "name" and isinstance(node.get("target"), str):
        return str(node["target"])
    if kind == "change" and key == "metric":
        return "change"
    if kind == "change" and key == "value":
        return "pct" if node.get("relative", True) else "delta"
    if kind is None and key == "value" and node.get("type") in ("grade", "cap", "set"):
        return str(node["type"])  # an action: {cap: 40}
    return key


# ---- back to shorthand --------------------------------------------------------------------


def _denormalise(card: Scorecard) -> dict[str, Any]:
    def cond(c: Condition) -> dict[str, Any]:
        if isinstance(c, Compare):
            out: dict[str, Any] = {c.target.value: (True if c.target is Target.OVERALL else c.name)}
            out["op"] = c.op.value
            v = c.value
            out["value"] = list(v) if isinstance(v, tuple) else v
            return out
        if isinstance(c, Change):
            key = "pct" if c.relative else "delta"
            return {"change": c.metric, "days": c.days, "op": c.op.value, key: c.value}
        if isinstance(c, AllOf):
            return {"all": [cond(x) for x in c.items]}
        if isinstance(c, AnyOf):
            return {"any": [cond(x) for x in c.items]}
        return {"not": cond(c.item)}

    def mmap(mp: LinearMap | BandsMap | LevelsMap) -> dict[str, Any]:
        if isinstance(mp, LinearMap):
            return {"linear": [list(p) for p in mp.points]}
        if isinstance(mp, BandsMap):
            return {"bands": [s.model_dump(exclude_none=True) for s in mp.steps]}
        levels = []
        for lv in mp.levels:
            d = lv.model_dump(exclude_none=True)
            if not d.get("help"):
                d.pop("help", None)
            levels.append(d)
        return {"levels": levels}

    out: dict[str, Any] = {"id": card.id, "name": card.name}
    if card.description:
        out["description"] = card.description
    out["scheme"] = {
        "type": card.scheme.type.value,
        "bands": [b.model_dump(exclude_none=True) for b in card.scheme.bands],
    }
    out["missing"] = card.missing.value
    out["stale"] = card.stale.value
    out["rollup"] = card.rollup.value
    out["groups"] = []
    for g in card.groups:
        gd: dict[str, Any] = {
            "id": g.id,
            "label": g.label,
            "weight": g.weight,
            "category": g.category.value,
        }
        if g.help:
            gd["help"] = g.help
        gd["measures"] = []
        for m in g.measures:
            md: dict[str, Any] = {
                "id": m.id,
                "metric": m.metric,
                "label": m.label,
                "help": m.help,
                "weight": m.weight,
                "map": mmap(m.map),
            }
            if m.validity_days is not None:
                md["validity_days"] = m.validity_days
            gd["measures"].append(md)
        out["groups"].append(gd)
    out["overrides"] = []
    for o in card.overrides:
        od: dict[str, Any] = {"id": o.id, "reason": o.reason, "when": cond(o.when)}
        od["then"] = {o.then.type.value: o.then.value}
        for k in ("expires_after_days", "starts_on", "expires_on"):
            if getattr(o, k) is not None:
                od[k] = getattr(o, k)
        out["overrides"].append(od)
    out["assignment"] = [{"scorecard": a.scorecard, "when": cond(a.when)} for a in card.assignment]
    return out
