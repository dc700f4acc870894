"""The scorecard designer: draft state, editor widgets, the live preview and version actions.

``pages/designer.py`` composes these; the arithmetic is in the engine (:mod:`engine.rescore`
re-scores a draft over values prepared once, :mod:`engine.preview` compares it with the scores
in force and explains every grade change).

**The draft.** Each scorecard id has its own draft in session state (:data:`DRAFTS`), a frozen
:class:`~engine.scorecard.Scorecard`. Widgets own their keys; each key carries a *generation*
number (:data:`GEN`) and is initialised once from the draft of that generation. When the draft
is replaced from outside the widgets (a version loaded, a file imported, the scheme type
changed), the generation moves on and every widget starts again from the new draft. A table
edited with ``st.data_editor`` always receives the rows it was first drawn with
(:data:`ORIGINS`, per widget), because a data editor keeps its edits as a delta to its input.
Only the open editor tab is drawn (stateful ``st.tabs``); a hidden tab's widgets are dropped
and start again from the draft when the tab opens.

**Every run** turns the widget values back into the scorecard file shape, parses it with
:func:`engine.scorecard.parse_scorecard` and validates it (:func:`engine.validate.validate`),
so a problem (an empty cell, points out of order) shows as a problem with its path, and an
invalid draft is neither previewed nor saved.

**Speed.** The editor and the preview run in one ``st.fragment``: an edit reruns only them.
The values at the as-of date are read and pivoted once per (data, as-of date, change windows)
(``st.cache_resource``: shared by sessions, never copied), the active scorecards' scores once
per active versions on top of that, and a draft re-scores only the accounts it can change.

**Writes** (save a version, activate, revert) check the role on the server
(:func:`ui.auth.require_role`) right before writing, whatever the session holds.

Coordination: the session keys below belong in :mod:`ui.state` and the writes in
:mod:`ui.cached` (its owner may move them there); ``_con`` reaches ``ui.cached``'s private
connection helper until it has a public one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from engine import store
from engine.preview import (
    NO_SCORE,
    Baseline,
    Preview,
    baseline,
    compare_versions,
    describe_action,
    describe_condition,
    diff,
    preview_draft,
)
from engine.problems import Problem, ScorecardError
from engine.rescore import Prepared, change_windows, prepare, with_draft
from engine.scorecard import (
    DEFAULT_BANDS,
    BandsMap,
    LevelsMap,
    LinearMap,
    MissingPolicy,
    Rollup,
    Scheme,
    SchemeType,
    Scorecard,
    StalePolicy,
    parse_scorecard,
    parse_scorecard_yaml,
)
from engine.validate import validate, validate_set
from ui import cached, state, summaries
from ui import format as fmt
from ui.auth import Role, User, require_role
from ui.charts import FONT, NO_GRADE, NO_GRADE_COLOR

# --------------------------------------------------------------------------- session state

DRAFTS = "designer_drafts"  # {scorecard id: Scorecard}: the drafts being edited
ORIGINS = "designer_origins"  # {data editor key: the rows it was first drawn with}
TAB_KEY = "designer_tab"  # the open editor tab
BASES = "designer_bases"  # {scorecard id: version number the draft started from, or None}
CARD = "designer_card"  # the scorecard id being edited (a selectbox key)
GEN = "designer_gen"  # widget generation (see the module docstring)
DRAFT_YAML = "designer_draft_yaml"  # the draft handed to pages/backtest.py
PREVIEW_MS = "designer_preview_ms"  # server time of the last preview computation, ms
NOTICE = "designer_notice"  # a one-shot message after an action: (kind, text)
BUILDER_ERROR = "designer_builder_error"  # the override/assignment builders' last error

BACKTEST_PAGE = "pages/backtest.py"
EXPLAIN_LIMIT = 200  # accounts whose grade change is explained in the preview
ATTRIBUTE_SKIP = {"account_id", "name", "arr", "renewal_date", "customer_since", "churned_on"}
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def _con(src: str) -> Any:
    return cached._con(src)  # private helper of ui.cached (see "Coordination" above)


def _gen() -> int:
    value = st.session_state.get(GEN)
    return value if isinstance(value, int) else 0


def wkey(*parts: object) -> str:
    """The session key of a designer widget: of the current generation and of the scorecard
    being edited (two scorecards share group ids, not widgets)."""
    card = st.session_state.get(CARD) or "_"
    return "dz." + ".".join(str(p) for p in (_gen(), card, *parts))


def _init(key: str, value: Any) -> None:
    # Not ``key in st.session_state``: that builds a filtered copy of the whole state.
    try:
        st.session_state[key]
    except KeyError:
        st.session_state[key] = value


def _drafts() -> dict[str, Scorecard]:
    value = st.session_state.get(DRAFTS)
    if not isinstance(value, dict):
        value = {}
        st.session_state[DRAFTS] = value
    return value


def _origin_rows(key: str, rows: pl.DataFrame) -> pl.DataFrame:
    """The rows a data editor was first drawn with (``rows`` when it is drawn afresh)."""
    origins = st.session_state.get(ORIGINS)
    if not isinstance(origins, dict):
        origins = {}
        st.session_state[ORIGINS] = origins
    try:
        st.session_state[key]
    except KeyError:  # a new widget (first run, new generation, tab opened again)
        origins[key] = rows
    return origins.get(key, rows)


def _bases() -> dict[str, int | None]:
    value = st.session_state.get(BASES)
    if not isinstance(value, dict):
        value = {}
        st.session_state[BASES] = value
    return value


def new_generation() -> None:
    """Restart every widget from the drafts as they are now."""
    st.session_state[GEN] = _gen() + 1
    st.session_state[ORIGINS] = {}


def draft(card_id: str) -> Scorecard | None:
    return _drafts().get(card_id)


def set_draft(card: Scorecard, *, base_version: int | str | None = "keep", reset: bool) -> None:
    """Put ``card`` as the draft of its id; ``reset`` restarts the widgets from it."""
    _drafts()[card.id] = card
    if base_version != "keep":
        _bases()[card.id] = base_version  # type: ignore[assignment]
    if reset:
        new_generation()


def notice(kind: str, text: str) -> None:
    st.session_state[NOTICE] = (kind, text)


def show_notice() -> None:
    value = st.session_state.pop(NOTICE, None)
    if isinstance(value, tuple) and len(value) == 2:
        kind, text = value
        {"success": st.success, "error": st.error, "warning": st.warning}.get(kind, st.info)(text)


# --------------------------------------------------------------------------- context


def _data_key(src: str) -> str:
    """Changes when the data a score reads changes, but not when a scorecard version is saved
    or activated (those change the scorecards, not the values): the newest audited write that
    is not a scorecard action, and the row counts of the tables a score reads."""
    con = _con(src)
    try:
        audit = store.audit_entries(con, limit=200)
        data = audit.filter(~pl.col("action").cast(pl.Utf8).str.starts_with("scorecard"))
        if data.height:
            mark = f"a{int(data.get_column('id').max())}"  # type: ignore[arg-type]
        elif audit.height == 200:
            mark = f"s{int(audit.get_column('id').min())}"  # type: ignore[arg-type]
        else:
            mark = "a0"
        counts = [
            store.row_count(con, t) for t in ("accounts", "metric_values", "manual_overrides")
        ]
    except Exception:  # a database being created: fall back to the app's data version
        return f"dv:{cached.data_version(src)}"
    return f"{mark}:{':'.join(str(c) for c in counts)}"


@st.cache_resource(max_entries=2, show_spinner="Reading the portfolio for the live preview…")
def _prepared(src: str, data_key: str, as_of: date, windows: tuple[int, ...]) -> Prepared:
    """The values at ``as_of`` (and ``as_of - days`` for each change window), read once."""
    con = _con(src)
    accounts = store.load_accounts(con, active_on=as_of)
    frames = [store.latest_metric_values(con, as_of)]
    frames += [store.latest_metric_values(con, as_of - timedelta(days=d)) for d in windows]
    metrics = pl.concat(frames, how="diagonal_relaxed")
    manual = store.load_manual_overrides(con, as_of=as_of)
    products = store.load_products(con)
    return prepare(
        accounts,
        metrics,
        as_of,
        windows=windows,
        manual_overrides=manual if manual.height else None,
        product_arr=products if products.height else None,
    )


@st.cache_resource(max_entries=4, show_spinner="Scoring the portfolio with the active scorecards…")
def _baseline(
    src: str,
    data_key: str,
    as_of: date,
    windows: tuple[int, ...],
    fingerprints: tuple[str, ...],
    _cards: Mapping[str, Scorecard],
) -> Baseline:
    """The active scorecards' scores (keyed by their fingerprints; ``_cards`` not hashed)."""
    prepared = _prepared(src, data_key, as_of, windows)
    return baseline(prepared, _cards, default=default_id(_cards))


@st.cache_resource(max_entries=2, show_spinner=False)
def _metric_ids(src: str, data_key: str, as_of: date, windows: tuple[int, ...]) -> frozenset[str]:
    prepared = _prepared(src, data_key, as_of, windows)
    return frozenset(prepared.metrics.get_column("metric").unique().to_list())


def default_id(cards: Mapping[str, Scorecard]) -> str:
    return "default" if "default" in cards else sorted(cards)[0]


@dataclass
class Context:
    """What the designer works with: who, which data, which date, the scorecards in force."""

    user: User
    src: str
    dv: str
    as_of: date
    active: dict[str, Scorecard]
    versions: pl.DataFrame  # stored versions, newest first (without YAML)
    palette: str = "standard"
    data: str = ""  # the data key (see _data_key): read once per run
    _known: set[str] | None = None

    @classmethod
    def of(cls, user: User, src: str, dv: str, as_of: date, palette: str) -> Context:
        return cls(
            user=user,
            src=src,
            dv=dv,
            as_of=as_of,
            active=dict(cached.scorecards(src, dv, "active")),
            versions=cached.versions(src, dv),
            palette=palette,
            data=_data_key(src),
        )

    @property
    def default(self) -> str:
        return default_id(self.active)

    def data_key(self) -> str:
        if not self.data:
            self.data = _data_key(self.src)
        return self.data

    def windows(self, extra: Iterable[Scorecard] = ()) -> tuple[int, ...]:
        return tuple(sorted(change_windows([*self.active.values(), *extra])))

    def baseline(self, draft: Scorecard | None = None) -> Baseline:
        windows = self.windows([draft] if draft is not None else [])
        fps = tuple(f"{k}:{c.fingerprint()}" for k, c in sorted(self.active.items()))
        return _baseline(self.src, self.data_key(), self.as_of, windows, fps, self.active)

    def prepared(self) -> Prepared:
        return _prepared(self.src, self.data_key(), self.as_of, self.windows())

    def known_metrics(self) -> set[str]:
        """Metric ids the data holds or the metric definitions name."""
        if self._known is not None:
            return self._known
        known = set(_metric_ids(self.src, self.data_key(), self.as_of, self.windows()))
        defs = cached.metric_definitions()
        if defs.height and "id" in defs.columns:
            known |= set(defs.get_column("id").to_list())
        for card in self.active.values():  # the scorecards in force read them, by definition
            known |= card.metrics
        self._known = known
        return known

    def attributes(self) -> list[str]:
        """Account attributes an assignment rule or an override may compare."""
        return [c for c in self.prepared().accounts.columns if c not in ATTRIBUTE_SKIP]

    def active_version(self, card_id: str) -> int | None:
        rows = self.versions.filter(
            (pl.col("scorecard_id") == card_id) & (pl.col("status") == "active")
        )
        return int(rows.get_column("version")[0]) if rows.height else None

    def versions_of(self, card_id: str) -> pl.DataFrame:
        return self.versions.filter(pl.col("scorecard_id") == card_id)

    def card_ids(self) -> list[str]:
        ids = [self.default, *sorted(k for k in self.active if k != self.default)]
        ids += sorted(k for k in _drafts() if k not in ids)
        return ids


def ensure_draft(ctx: Context, card_id: str) -> Scorecard:
    """The draft of ``card_id``, started from its active version the first time."""
    current = draft(card_id)
    if current is None:
        current = ctx.active[card_id]
        set_draft(current, base_version=ctx.active_version(card_id), reset=False)
    return current


def load_version(ctx: Context, version: int) -> Scorecard:
    """Replace the draft of a version's scorecard id with that version."""
    sv = store.get_scorecard_version(_con(ctx.src), version)
    card = parse_scorecard_yaml(sv.yaml, default_id=sv.scorecard_id)
    set_draft(card, base_version=version, reset=True)
    return card


def import_yaml(text: str) -> Scorecard:
    """A scorecard from an uploaded YAML file becomes the draft of its id (raises
    :class:`ScorecardError` with every shape problem; semantic problems show in the editor)."""
    card = parse_scorecard_yaml(text)
    set_draft(card, base_version=None, reset=True)
    return card


# --------------------------------------------------------------------------- writes


def save_draft(ctx: Context, card: Scorecard, comment: str, *, activate: bool) -> int:
    """Store the draft as a new version (author: the signed-in user), optionally active.

    Editors only, checked here on the server. Raises :class:`ScorecardError` with every
    problem when the draft is invalid (nothing is stored)."""
    user = require_role(Role.EDITOR)
    problems = check(ctx, card)
    if problems:
        raise ScorecardError(problems)
    version = store.save_scorecard_version(
        _con(ctx.src),
        card.to_yaml(),
        author=user.username,
        comment=comment.strip(),
        status="active" if activate else "draft",
    )
    cached.invalidate()
    _bases()[card.id] = version
    return version


def activate_version(ctx: Context, version: int) -> User:
    """Make a stored version the active one of its scorecard id (a revert, when it is older).
    Editors only, checked here. The resulting set of active scorecards must be valid."""
    user = require_role(Role.EDITOR)
    con = _con(ctx.src)
    sv = store.get_scorecard_version(con, version)
    card = parse_scorecard_yaml(sv.yaml, default_id=sv.scorecard_id)
    problems = validate_set(with_draft(ctx.active, card))
    if problems:
        raise ScorecardError(problems)
    store.set_scorecard_status(con, version, "active", author=user.username)
    cached.invalidate()
    return user


def backfill_active(ctx: Context, progress: Any) -> int:
    """Recompute the stored weekly history under the active versions (editors only)."""
    require_role(Role.EDITOR)
    from engine import history

    con = _con(ctx.src)
    dates = store.snapshot_dates(con)
    start = min(dates) if dates else None
    end = max(dates) if dates else None
    result = history.backfill(
        con, start=start, end=end, progress=lambda i, n, d: progress(i / max(n, 1), str(d))
    )
    cached.invalidate()
    return int(result.rows)


# --------------------------------------------------------------------------- validation


def check(ctx: Context, card: Scorecard) -> list[Problem]:
    """Every problem of the draft: its own rules (with the data's metrics) and, for the set it
    would join, the assignment references."""
    problems = validate(card, known_metrics=ctx.known_metrics())
    problems += validate_set(with_draft(ctx.active, card))
    return problems


# --------------------------------------------------------------------------- editor

TABS = ("Weights", "Measure maps", "Grading", "Overrides", "Assignment", "Policies")


def editor(ctx: Context, card: Scorecard) -> tuple[Scorecard | None, list[Problem]]:
    """Render the editor tabs for ``card`` (the draft) and return the edited draft, or None
    and the shape problems when the widget values do not make a scorecard."""
    data = card.to_dict()
    tabs = st.tabs(list(TABS), key=TAB_KEY, on_change="rerun")
    sections = (
        lambda: _weights_editor(data, card),
        lambda: _maps_editor(data, card),
        lambda: _grading_editor(data, card),
        lambda: _overrides_editor(ctx, card),
        lambda: _assignment_editor(ctx, card),
        lambda: _policies_editor(data, card),
    )
    for tab, section in zip(tabs, sections, strict=True):
        if tab.open is not False:  # only the open tab is drawn (None: all, untracked)
            with tab:
                section()
    try:
        edited = parse_scorecard(data)
    except ScorecardError as exc:
        return None, exc.problems
    return edited, []


def _weights_editor(data: dict[str, Any], card: Scorecard) -> None:
    st.caption(
        "Group weights set each DEAR group's share of the overall score; measure weights set a "
        "measure's share inside its group. Only the ratios matter (see the share beside each)."
    )
    # Shares from this run's values (the widgets hold them before they are drawn).
    for g in card.groups:
        _init(wkey("g", g.id, "w"), float(g.weight))
        for m in g.measures:
            _init(wkey("m", m.id, "w"), float(m.weight))
    now = {g.id: _num(st.session_state[wkey("g", g.id, "w")]) or 0.0 for g in card.groups}
    gtotal = sum(now.values()) or 1.0
    for gi, g in enumerate(card.groups):
        gd = data["groups"][gi]
        key = wkey("g", g.id, "w")
        with st.container(border=True):
            head = st.columns([2, 1, 3])
            head[0].markdown(f"**{g.title}**", help=g.help or None)
            gd["weight"] = head[1].number_input(
                f"{g.title} weight",
                min_value=0.0,
                step=1.0,
                format="%g",
                key=key,
                label_visibility="collapsed",
            )
            head[2].caption(f"{100 * now[g.id] / gtotal:.0f}% of the overall score")
            inner = {m.id: _num(st.session_state[wkey("m", m.id, "w")]) or 0.0 for m in g.measures}
            mtotal = sum(inner.values()) or 1.0
            cols = st.columns(3)
            for mi, m in enumerate(g.measures):
                mkey = wkey("m", m.id, "w")
                share = inner[m.id] / mtotal
                gd["measures"][mi]["weight"] = cols[mi % 3].number_input(
                    m.title,
                    min_value=0.0,
                    step=1.0,
                    format="%g",
                    key=mkey,
                    help=f"{m.help}\n\n{100 * share:.0f}% of {g.title}; "
                    f"{100 * share * now[g.id] / gtotal:.1f}% of the overall score when every "
                    "measure has a value.",
                )


def _as_polars(frame: Any) -> pl.DataFrame:
    if isinstance(frame, pl.DataFrame):
        return frame
    return pl.from_pandas(frame)


def _num(x: Any) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if v != v else v  # NaN -> None


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows of an edited table, without the rows left completely empty."""
    out = []
    for row in frame.iter_rows(named=True):
        if all(v is None or (isinstance(v, float) and v != v) or v == "" for v in row.values()):
            continue
        out.append(row)
    return out


def _map_rows_editor(
    key: str, table: pl.DataFrame, columns: dict[str, Any]
) -> list[dict[str, Any]]:
    """An editable table of a measure map's rows (points, steps or levels), with the shared
    0-100 score column; returns the edited rows."""
    edited = st.data_editor(
        _origin_rows(key, table),
        key=key,
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
        column_config={
            **columns,
            "score": st.column_config.NumberColumn("Score (0-100)", min_value=0, max_value=100),
        },
    )
    return _rows(_as_polars(edited))


def _maps_editor(data: dict[str, Any], card: Scorecard) -> None:
    measures = [
        (gi, mi, g, m) for gi, g in enumerate(card.groups) for mi, m in enumerate(g.measures)
    ]
    if not measures:
        st.info("This scorecard has no measures.")
        return
    ids = [m.id for _, _, _, m in measures]
    key = wkey("map", "measure")
    _init(key, ids[0])
    if st.session_state.get(key) not in ids:
        st.session_state[key] = ids[0]
    labels = {m.id: f"{g.title} › {m.title}" for _, _, g, m in measures}
    chosen = st.selectbox("Measure", ids, key=key, format_func=lambda i: labels.get(i, i))
    gi, mi, _, m = next(x for x in measures if x[3].id == chosen)
    md = data["groups"][gi]["measures"][mi]
    st.caption(f"Metric `{m.metric}` · {m.help}" if m.help else f"Metric `{m.metric}`")
    cols = [st.container(), st.container()]  # stacked: the editor column is narrow
    with cols[0]:
        mp = m.map
        if isinstance(mp, LinearMap):
            st.markdown("**Linear map**: points (metric value, score), interpolated and clamped.")
            table = pl.DataFrame(
                {
                    "value": [float(x) for x, _ in mp.points],
                    "score": [float(y) for _, y in mp.points],
                },
                schema={"value": pl.Float64, "score": pl.Float64},
            )
            rows = _map_rows_editor(
                wkey("map", m.id, "linear"),
                table,
                {"value": st.column_config.NumberColumn("Metric value", format="%g")},
            )
            md["map"] = {"linear": [[_num(r["value"]), _num(r["score"])] for r in rows]}
        elif isinstance(mp, BandsMap):
            st.markdown(
                "**Bands**: each step scores the values up to and including its max; leave the "
                "last max empty for everything above."
            )
            table = pl.DataFrame(
                {"max": [s.max for s in mp.steps], "score": [float(s.score) for s in mp.steps]},
                schema={"max": pl.Float64, "score": pl.Float64},
            )
            rows = _map_rows_editor(
                wkey("map", m.id, "bands"),
                table,
                {"max": st.column_config.NumberColumn("Up to (max)", format="%g")},
            )
            md["map"] = {
                "bands": [{"max": _num(r["max"]), "score": _num(r["score"])} for r in rows]
            }
        else:
            assert isinstance(mp, LevelsMap)
            st.markdown("**Levels**: a score per level (matched on the label or the value).")
            table = pl.DataFrame(
                {
                    "label": [lv.label for lv in mp.levels],
                    "score": [float(lv.score) for lv in mp.levels],
                    "value": [lv.value for lv in mp.levels],
                    "help": [lv.help for lv in mp.levels],
                },
                schema={
                    "label": pl.Utf8,
                    "score": pl.Float64,
                    "value": pl.Float64,
                    "help": pl.Utf8,
                },
            )
            rows = _map_rows_editor(
                wkey("map", m.id, "levels"),
                table,
                {
                    "label": st.column_config.TextColumn("Level"),
                    "value": st.column_config.NumberColumn("Numeric value", format="%g"),
                    "help": st.column_config.TextColumn("Help text", width="large"),
                },
            )
            levels = []
            for r in rows:
                lv: dict[str, Any] = {"label": r["label"] or "", "score": _num(r["score"])}
                if _num(r["value"]) is not None:
                    lv["value"] = _num(r["value"])
                if r.get("help"):
                    lv["help"] = r["help"]
                levels.append(lv)
            md["map"] = {"levels": levels}
        vkey = wkey("map", m.id, "validity")
        _init(vkey, m.validity_days)
        validity = st.number_input(
            "Valid for (days)",
            min_value=1,
            step=1,
            value=None,
            key=vkey,
            placeholder="no limit",
            help="A value older than this is stale: flagged, and dropped or kept per the stale "
            "policy. Leave empty for no limit.",
        )
        if validity is None:
            md.pop("validity_days", None)
        else:
            md["validity_days"] = int(validity)
    with cols[1]:
        fig = map_figure(m)
        if fig is not None:
            st.plotly_chart(fig, key=wkey("map", "chart"), config={"displayModeBar": False})


def _grading_editor(data: dict[str, Any], card: Scorecard) -> None:
    types = [t.value for t in SchemeType]
    tkey = wkey("scheme", "type")
    _init(tkey, card.scheme.type.value)
    st.selectbox(
        "Grading scheme",
        types,
        key=tkey,
        format_func=lambda t: {
            "ryg": "Red / Yellow / Green",
            "letter": "Letters A-F",
            "numeric": "Numeric 0-100",
        }.get(t, t),
        on_change=_scheme_type_changed,
        args=(card.id, tkey),
        help="Changing the scheme starts from its default bands.",
    )
    st.caption(
        "A band holds the scores below its edge and at or above the previous edge: a score "
        "exactly on an edge belongs to the higher band. The last band has no edge. Up to 12 "
        "bands."
    )
    table = pl.DataFrame(
        {
            "label": [b.label for b in card.scheme.bands],
            "below": [b.below for b in card.scheme.bands],
            "color": [b.color or "" for b in card.scheme.bands],
        },
        schema={"label": pl.Utf8, "below": pl.Float64, "color": pl.Utf8},
    )
    edited = st.data_editor(
        _origin_rows(wkey("scheme", "bands"), table),
        key=wkey("scheme", "bands"),
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
        column_config={
            "label": st.column_config.TextColumn("Band"),
            "below": st.column_config.NumberColumn(
                "Scores below", min_value=0, max_value=100, format="%g"
            ),
            "color": st.column_config.TextColumn("Colour (#hex, optional)"),
        },
    )
    bands = []
    for r in _rows(_as_polars(edited)):
        band: dict[str, Any] = {"label": r["label"] or ""}
        if _num(r["below"]) is not None:
            band["below"] = _num(r["below"])
        if r.get("color"):
            band["color"] = r["color"]
        bands.append(band)
    data["scheme"] = {"type": st.session_state.get(tkey, card.scheme.type.value), "bands": bands}


def _scheme_type_changed(card_id: str, key: str) -> None:
    current = draft(card_id)
    if current is None:
        return
    kind = SchemeType(st.session_state[key])
    scheme = Scheme(type=kind, bands=DEFAULT_BANDS[kind])
    set_draft(current.model_copy(update={"scheme": scheme}), reset=True)


def _policies_editor(data: dict[str, Any], card: Scorecard) -> None:
    nkey = wkey("name")
    _init(nkey, card.name)
    data["name"] = st.text_input("Scorecard name", key=nkey)
    missing_help = {
        "renormalize": "Missing measures drop out and the others' weights are rescaled.",
        "zero": "A missing measure scores 0.",
        "fixed": "Weights never rescale; the account is flagged incomplete.",
    }
    key = wkey("missing")
    _init(key, card.missing.value)
    data["missing"] = st.radio(
        "Missing values",
        [p.value for p in MissingPolicy],
        key=key,
        format_func=lambda p: f"{p}: {missing_help[p]}",
    )
    key = wkey("stale")
    _init(key, card.stale.value)
    data["stale"] = st.radio(
        "Stale values (older than a measure's validity)",
        [p.value for p in StalePolicy],
        key=key,
        format_func=lambda p: {
            "exclude": "exclude: treat as missing",
            "keep": "keep: use, and flag as stale",
        }[p],
    )
    key = wkey("rollup")
    _init(key, card.rollup.value)
    data["rollup"] = st.radio(
        "Products roll up to the company by",
        [r.value for r in Rollup],
        key=key,
        format_func=lambda r: {
            "arr_weighted": "ARR-weighted mean",
            "mean": "plain mean",
            "worst": "the worst product",
        }[r],
        horizontal=True,
    )


# ---- overrides: a structured builder (no free-text code) -------------------------------------

TARGETS = ("metric", "measure", "group", "overall", "attribute", "change")
OPS = ("<", "<=", ">", ">=", "==", "!=", "in", "not in")
ACTIONS = ("grade", "cap", "set")


def _overrides_editor(ctx: Context, card: Scorecard) -> None:
    st.caption(
        "An override fires when its condition holds (on the values before overrides) and "
        "forces a grade, caps the score or sets it. Rules apply in this order."
    )
    if not card.overrides:
        st.info("No override rules.")
    for i, o in enumerate(card.overrides):
        with st.container(border=True):
            cols = st.columns([6, 1])
            expiry = []
            if o.expires_after_days:
                expiry.append(f"only while its data is at most {o.expires_after_days} days old")
            if o.starts_on:
                expiry.append(f"from {o.starts_on.isoformat()}")
            if o.expires_on:
                expiry.append(f"until {o.expires_on.isoformat()}")
            cols[0].markdown(
                f"**{o.id}** · {o.reason or 'no reason given'}  \n"
                f"When {describe_condition(o.when)} → {describe_action(o.then)}"
                + (f"  \n_{'; '.join(expiry)}_" if expiry else "")
            )
            cols[1].button(
                "Remove",
                key=wkey("ov", "del", i, o.id),
                on_click=_remove_override,
                args=(card.id, i),
                icon=":material/delete:",
            )
    with st.expander("Add an override", expanded=not card.overrides):
        _override_builder(ctx, card)


def _remove_override(card_id: str, index: int) -> None:
    current = draft(card_id)
    if current is None or index >= len(current.overrides):
        return
    kept = current.overrides[:index] + current.overrides[index + 1 :]
    set_draft(current.model_copy(update={"overrides": kept}), reset=False)


def _names_for(target: str, ctx: Context, card: Scorecard) -> list[str]:
    if target in ("metric", "change"):
        return sorted(ctx.known_metrics())
    if target == "measure":
        return [m.id for _, m in card.measures]
    if target == "group":
        return [g.id for g in card.groups]
    if target == "attribute":
        return ctx.attributes()
    return []


def _clause_widgets(
    prefix: str, i: int, ctx: Context, card: Scorecard, *, attributes_only: bool
) -> None:
    cols = st.columns([2, 3, 1, 2, 1])
    targets = ("attribute",) if attributes_only else TARGETS
    tkey = wkey(prefix, i, "target")
    _init(tkey, targets[0])
    target = cols[0].selectbox("Compare", targets, key=tkey)
    names = _names_for(target, ctx, card)
    nkey = wkey(prefix, i, "name", target)
    if names:
        _init(nkey, names[0])
        if st.session_state.get(nkey) not in names:
            st.session_state[nkey] = names[0]
        cols[1].selectbox("Name", names, key=nkey)
    else:
        cols[1].text_input("Name", value="the overall score", disabled=True, key=nkey + ".na")
    ops = [o for o in OPS if not (target == "change" and o in ("in", "not in"))]
    okey = wkey(prefix, i, "op")
    _init(okey, "<")
    if st.session_state.get(okey) not in ops:
        st.session_state[okey] = ops[0]
    cols[2].selectbox("Op", ops, key=okey)
    vkey = wkey(prefix, i, "value")
    _init(vkey, "")
    cols[3].text_input(
        "Value",
        key=vkey,
        help="A number, or text (a level such as Weak, an attribute value); for 'in' and "
        "'not in' a comma-separated list. For a change: the change in percent (or points).",
    )
    if target == "change":
        dkey = wkey(prefix, i, "days")
        _init(dkey, 30)
        cols[4].number_input("Days", min_value=1, step=1, key=dkey)
        pkey = wkey(prefix, i, "pct")
        _init(pkey, True)
        st.checkbox("Change in percent (else in points)", key=pkey)


def _parse_value(text: str, op: str) -> Any:
    def one(x: str) -> Any:
        x = x.strip()
        try:
            return float(x) if ("." in x or "e" in x.lower()) else int(x)
        except ValueError:
            return x

    if op in ("in", "not in"):
        return [one(x) for x in text.split(",") if x.strip()]
    return one(text) if text.strip() else None


def _clause(prefix: str, i: int) -> dict[str, Any]:
    """The condition shorthand of builder clause ``i`` (the file's shape, parsed later)."""
    ss = st.session_state
    target = ss.get(wkey(prefix, i, "target"), "metric")
    op = ss.get(wkey(prefix, i, "op"), "<")
    value = _parse_value(str(ss.get(wkey(prefix, i, "value"), "")), op)
    name = ss.get(wkey(prefix, i, "name", target))
    if target == "change":
        key = "pct" if ss.get(wkey(prefix, i, "pct"), True) else "delta"
        return {
            "change": name,
            "days": int(ss.get(wkey(prefix, i, "days"), 30)),
            "op": op,
            key: value,
        }
    if target == "overall":
        return {"overall": True, "op": op, "value": value}
    return {target: name, "op": op, "value": value}


def _override_builder(ctx: Context, card: Scorecard) -> None:
    cols = st.columns(2)
    _init(wkey("ob", "id"), "")
    cols[0].text_input(
        "Rule id",
        key=wkey("ob", "id"),
        placeholder="usage_drop",
        help="Lower-case letters, digits and _.",
    )
    _init(wkey("ob", "reason"), "")
    cols[1].text_input("Reason (shown on the Customer 360)", key=wkey("ob", "reason"))
    _init(wkey("ob", "n"), 1)
    n = int(st.number_input("Conditions", min_value=1, max_value=4, step=1, key=wkey("ob", "n")))
    if n > 1:
        _init(wkey("ob", "join"), "all")
        st.radio(
            "Combine",
            ["all", "any"],
            key=wkey("ob", "join"),
            horizontal=True,
            format_func=lambda j: {"all": "all must hold", "any": "any may hold"}[j],
        )
    for i in range(n):
        _clause_widgets("ob", i, ctx, card, attributes_only=False)
    then = st.columns([2, 2, 2, 2])
    _init(wkey("ob", "action"), "grade")
    action = then[0].selectbox(
        "Then",
        ACTIONS,
        key=wkey("ob", "action"),
        format_func=lambda a: {
            "grade": "force grade",
            "cap": "cap score at",
            "set": "set score to",
        }[a],
    )
    labels = [b.label for b in card.scheme.bands]
    if action == "grade" and labels:
        akey = wkey("ob", "grade")
        _init(akey, labels[0])
        if st.session_state.get(akey) not in labels:
            st.session_state[akey] = labels[0]
        then[1].selectbox("Grade", labels, key=akey)
    else:
        akey = wkey("ob", "amount")
        _init(akey, 50.0)
        then[1].number_input("Score", min_value=0.0, max_value=100.0, step=1.0, key=akey)
    _init(wkey("ob", "fresh"), None)
    then[2].number_input(
        "Only while data is at most (days) old",
        min_value=1,
        step=1,
        value=None,
        key=wkey("ob", "fresh"),
        placeholder="always",
    )
    _init(wkey("ob", "until"), None)
    then[3].date_input("Expires on", value=None, key=wkey("ob", "until"))
    st.button(
        "Add override",
        key=wkey("ob", "add"),
        on_click=_add_override,
        args=(card.id,),
        icon=":material/add:",
        type="primary",
    )
    error = st.session_state.get(BUILDER_ERROR)
    if isinstance(error, tuple) and error[0] == "ob":
        st.error(error[1])


def _add_override(card_id: str) -> None:
    ss = st.session_state
    current = draft(card_id)
    if current is None:
        return
    oid = str(ss.get(wkey("ob", "id"), "")).strip()
    if not _ID_RE.match(oid):
        ss[BUILDER_ERROR] = ("ob", "The rule id must start with a letter and use a-z, 0-9 and _.")
        return
    if any(o.id == oid for o in current.overrides):
        ss[BUILDER_ERROR] = ("ob", f"There is already an override {oid!r}.")
        return
    n = int(ss.get(wkey("ob", "n"), 1))
    clauses = [_clause("ob", i) for i in range(n)]
    when = clauses[0] if n == 1 else {ss.get(wkey("ob", "join"), "all"): clauses}
    action = ss.get(wkey("ob", "action"), "grade")
    amount = ss.get(wkey("ob", "grade")) if action == "grade" else ss.get(wkey("ob", "amount"))
    rule: dict[str, Any] = {
        "id": oid,
        "reason": str(ss.get(wkey("ob", "reason"), "")).strip(),
        "when": when,
        "then": {action: amount},
    }
    if ss.get(wkey("ob", "fresh")):
        rule["expires_after_days"] = int(ss[wkey("ob", "fresh")])
    if ss.get(wkey("ob", "until")):
        rule["expires_on"] = ss[wkey("ob", "until")]
    data = current.to_dict()
    data["overrides"].append(rule)
    try:
        updated = parse_scorecard(data)
    except ScorecardError as exc:
        ss[BUILDER_ERROR] = ("ob", "; ".join(str(p) for p in exc.problems))
        return
    problems = [
        p
        for p in validate(updated)
        if p.path.startswith(f"overrides[{len(data['overrides']) - 1}]")
    ]
    if problems:
        ss[BUILDER_ERROR] = ("ob", "; ".join(str(p) for p in problems))
        return
    ss.pop(BUILDER_ERROR, None)
    ss[wkey("ob", "id")] = ""
    set_draft(updated, reset=False)


# ---- assignment -------------------------------------------------------------------------------


def _assignment_editor(ctx: Context, card: Scorecard) -> None:
    if card.id != ctx.default:
        st.info(
            f"Assignment rules live in the default scorecard ({ctx.default!r}): they pick the "
            "scorecard of each account. Edit that scorecard to change them."
        )
        return
    st.caption(
        "Ordered rules: the first whose condition holds picks the scorecard; the accounts no "
        "rule picks are scored by this default scorecard."
    )
    if not card.assignment:
        st.info("No rules: every account is scored by this scorecard.")
    for i, a in enumerate(card.assignment):
        cols = st.columns([6, 1, 1, 1])
        cols[0].markdown(f"{i + 1}. When {describe_condition(a.when)} → **{a.scorecard}**")
        cols[1].button(
            "Up",
            key=wkey("as", "up", i),
            on_click=_move_rule,
            args=(card.id, i, -1),
            disabled=i == 0,
            icon=":material/arrow_upward:",
        )
        cols[2].button(
            "Down",
            key=wkey("as", "down", i),
            on_click=_move_rule,
            args=(card.id, i, 1),
            disabled=i == len(card.assignment) - 1,
            icon=":material/arrow_downward:",
        )
        cols[3].button(
            "Remove",
            key=wkey("as", "del", i),
            on_click=_remove_rule,
            args=(card.id, i),
            icon=":material/delete:",
        )
    with st.expander("Add a rule"):
        targets = [k for k in ctx.active if k != card.id] or ["(no other scorecard)"]
        _init(wkey("ab", "card"), targets[0])
        if st.session_state.get(wkey("ab", "card")) not in targets:
            st.session_state[wkey("ab", "card")] = targets[0]
        st.selectbox("Scorecard", targets, key=wkey("ab", "card"))
        _clause_widgets("ab", 0, ctx, card, attributes_only=True)
        st.button(
            "Add rule",
            key=wkey("ab", "add"),
            on_click=_add_rule,
            args=(card.id,),
            icon=":material/add:",
        )
        error = st.session_state.get(BUILDER_ERROR)
        if isinstance(error, tuple) and error[0] == "ab":
            st.error(error[1])


def _move_rule(card_id: str, index: int, step: int) -> None:
    current = draft(card_id)
    if current is None:
        return
    rules = list(current.assignment)
    j = index + step
    if 0 <= index < len(rules) and 0 <= j < len(rules):
        rules[index], rules[j] = rules[j], rules[index]
        set_draft(current.model_copy(update={"assignment": tuple(rules)}), reset=False)


def _remove_rule(card_id: str, index: int) -> None:
    current = draft(card_id)
    if current is None or index >= len(current.assignment):
        return
    rules = current.assignment[:index] + current.assignment[index + 1 :]
    set_draft(current.model_copy(update={"assignment": rules}), reset=False)


def _add_rule(card_id: str) -> None:
    ss = st.session_state
    current = draft(card_id)
    if current is None:
        return
    data = current.to_dict()
    data["assignment"].append({"scorecard": ss.get(wkey("ab", "card")), "when": _clause("ab", 0)})
    try:
        updated = parse_scorecard(data)
    except ScorecardError as exc:
        ss[BUILDER_ERROR] = ("ab", "; ".join(str(p) for p in exc.problems))
        return
    index = len(data["assignment"]) - 1
    problems = [p for p in validate(updated) if p.path.startswith(f"assignment[{index}]")]
    if problems:
        ss[BUILDER_ERROR] = ("ab", "; ".join(str(p) for p in problems))
        return
    ss.pop(BUILDER_ERROR, None)
    set_draft(updated, reset=False)


# --------------------------------------------------------------------------- preview


def grade_order(ctx: Context, card: Scorecard) -> list[str]:
    return summaries.grade_order(with_draft(ctx.active, card))


def grade_colors(ctx: Context, card: Scorecard) -> dict[str, str]:
    colors = summaries.grade_palette(with_draft(ctx.active, card), ctx.palette)
    colors.setdefault(NO_SCORE, NO_GRADE_COLOR)
    colors.setdefault(NO_GRADE, NO_GRADE_COLOR)
    return colors


def compute_preview(ctx: Context, card: Scorecard) -> tuple[Preview, float]:
    """The preview of ``card`` against the active scorecards, and its server time (ms)."""
    base = ctx.baseline(card)
    t0 = time.perf_counter()
    result = preview_draft(base, card, grades=grade_order(ctx, card), explain_limit=EXPLAIN_LIMIT)
    ms = 1000 * (time.perf_counter() - t0)
    st.session_state[PREVIEW_MS] = ms
    return result, ms


def show_problems(problems: Sequence[Problem], *, what: str | None = None) -> None:
    """Every problem, with its path in the scorecard file and the rule broken."""
    lines = "\n".join(f"- `{p.path or 'scorecard'}`: {p.message}" for p in problems)
    head = what or (
        f"{fmt.plural(len(problems), 'problem')} to fix before this draft can be previewed or saved"
    )
    st.error(f"**{head}:**\n{lines}", icon=":material/error:")


def show_preview(ctx: Context, card: Scorecard, pv: Preview, ms: float) -> None:
    """The preview, for a half-width column: the headline numbers, the transition matrix, the
    grade mix and score distribution before and after, and the accounts that change grade."""
    s = pv.summary
    colors = grade_colors(ctx, card)
    row = st.columns(2)
    row[0].metric(
        "Accounts changing grade",
        fmt.number(s.changed),
        delta=f"{s.up} up · {s.down} down" if s.changed else None,
        delta_color="off",
    )
    row[1].metric(
        "ARR changing grade",
        fmt.currency(s.arr_changed),
        delta=f"{fmt.currency(s.arr_down)} moving down" if s.arr_down else None,
        delta_color="inverse" if s.arr_down else "off",
    )
    row = st.columns(2)
    row[0].metric(
        "Average score",
        fmt.score(s.mean_after),
        delta=fmt.signed((s.mean_after or 0) - (s.mean_before or 0))
        if s.mean_before is not None
        else None,
    )
    row[1].metric(
        "Scores that move",
        fmt.number(s.score_changed),
        help="Accounts whose score moves by more than 0.05 points.",
    )
    st.caption(
        f"Draft against the active scorecards at {fmt.day(ctx.as_of)}, "
        f"{fmt.plural(s.accounts, 'account')} · preview computed in {ms:.0f} ms"
    )
    st.plotly_chart(
        transition_figure(pv), key=wkey("pv", "matrix"), config={"displayModeBar": False}
    )
    by = (
        st.segmented_control(
            "Grade mix by", ["Accounts", "ARR"], default="Accounts", key=wkey("pv", "by")
        )
        or "Accounts"
    )
    st.plotly_chart(
        distribution_figure(pv, colors, arr=by == "ARR"),
        key=wkey("pv", "dist"),
        config={"displayModeBar": False},
    )
    st.plotly_chart(histogram_figure(pv), key=wkey("pv", "hist"), config={"displayModeBar": False})
    st.markdown(f"**Accounts that change grade** ({fmt.number(s.changed)})")
    if s.changed == 0:
        st.info("No account changes grade with this draft.", icon=":material/check:")
        return
    st.dataframe(
        changes_table(pv),
        hide_index=True,
        width="stretch",
        key=wkey("pv", "table"),
        column_config={
            "Account": st.column_config.TextColumn(width="medium"),
            "ARR": st.column_config.NumberColumn("ARR ($)", format="compact"),
            "Score before": st.column_config.NumberColumn(format="%.1f"),
            "Score after": st.column_config.NumberColumn(format="%.1f"),
            "Change": st.column_config.NumberColumn(format="%+.1f"),
            "Why": st.column_config.TextColumn(width="large"),
        },
    )
    if s.changed > EXPLAIN_LIMIT:
        st.caption(f"Reasons are given for the {EXPLAIN_LIMIT} largest accounts by ARR.")


def changes_table(pv: Preview) -> pl.DataFrame:
    """The accounts that change grade, for people: name, ARR, grades, scores, the reason."""
    ch = pv.changes
    if pv.reasons.height:
        ch = ch.join(pv.reasons.select("account_id", "reason"), on="account_id", how="left")
    else:
        ch = ch.with_columns(pl.lit(None, dtype=pl.Utf8).alias("reason"))
    name = pl.col("name") if "name" in ch.columns else pl.col("account_id")
    return ch.select(
        name.alias("Account"),
        pl.col("arr").alias("ARR"),
        pl.format("{} → {}", "grade_before", "grade_after").alias("Grade"),
        pl.col("score_before").alias("Score before"),
        pl.col("score_after").alias("Score after"),
        pl.col("change").alias("Change"),
        pl.col("reason").fill_null("").alias("Why"),
    )


# --------------------------------------------------------------------------- figures


# A light template built once: ``template="plotly_white"`` copies plotly's whole template on
# every figure (about 50 ms each, and 7 KB more JSON); this costs about 1 ms.
_TEMPLATE = go.layout.Template(
    layout=go.Layout(
        paper_bgcolor="white",
        plot_bgcolor="white",
        xaxis={"gridcolor": "#ebf0f8", "zerolinecolor": "#ebf0f8", "linecolor": "#c8d4e3"},
        yaxis={"gridcolor": "#ebf0f8", "zerolinecolor": "#ebf0f8", "linecolor": "#c8d4e3"},
        hoverlabel={"font_size": 13},
    )
)


def _figure(traces: list[Any], *, title: str, height: int = 320, **layout: Any) -> go.Figure:
    """One figure in one step (the layout as a dict): much cheaper than building a figure and
    then calling ``update_layout``/``update_xaxes``, which re-parse property paths."""
    base: dict[str, Any] = {
        "template": _TEMPLATE,
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
        "font": FONT,
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 1, "xanchor": "right"},
    }
    return go.Figure(data=traces, layout=base | layout)


def distribution_figure(pv: Preview, colors: Mapping[str, str], *, arr: bool = False) -> go.Figure:
    """Accounts (or ARR) per grade: the active scorecards (faded) beside the draft."""
    dist = pv.distribution
    grades = dist.get_column("grade").to_list()
    b_col, a_col = ("arr_before", "arr_after") if arr else ("accounts_before", "accounts_after")
    before = dist.get_column(b_col).to_list()
    after = dist.get_column(a_col).to_list()
    bar_colors = [colors.get(g, NO_GRADE_COLOR) for g in grades]

    def shown(v: float) -> str:
        return fmt.currency(v) if arr else fmt.number(v)

    traces = [
        go.Bar(
            name="Active",
            x=grades,
            y=before,
            marker={"color": bar_colors, "opacity": 0.4},
            text=[shown(v) for v in before],
            textposition="outside",
            hovertemplate="%{x}, active: %{text}<extra></extra>",
        ),
        go.Bar(
            name="Draft",
            x=grades,
            y=after,
            marker={"color": bar_colors},
            text=[shown(v) for v in after],
            textposition="outside",
            hovertemplate="%{x}, draft: %{text}<extra></extra>",
        ),
    ]
    return _figure(
        traces,
        title="Grade mix: active → draft",
        barmode="group",
        bargap=0.25,
        yaxis={"title": {"text": "ARR" if arr else "Accounts"}, "rangemode": "tozero"},
        xaxis={"type": "category"},
    )


def histogram_figure(pv: Preview) -> go.Figure:
    """Score distribution (5-point bins), active against draft."""
    h = pv.histogram
    x = [b + 2.5 for b in h.get_column("bin").to_list()]
    traces = [
        go.Bar(
            name="Active",
            x=x,
            y=h.get_column("accounts_before").to_list(),
            marker={"color": "#9e9e9e"},
            opacity=0.55,
            width=5,
            hovertemplate="%{x:.1f} ±2.5: %{y} accounts (active)<extra></extra>",
        ),
        go.Bar(
            name="Draft",
            x=x,
            y=h.get_column("accounts_after").to_list(),
            marker={"color": "#1f6feb"},
            opacity=0.55,
            width=5,
            hovertemplate="%{x:.1f} ±2.5: %{y} accounts (draft)<extra></extra>",
        ),
    ]
    return _figure(
        traces,
        title="Score distribution",
        height=260,
        barmode="overlay",
        xaxis={"title": {"text": "Score"}, "range": [0, 100], "dtick": 10},
        yaxis={"title": {"text": "Accounts"}},
    )


def transition_figure(pv: Preview) -> go.Figure:
    """The grade transition matrix: accounts from each active grade (rows) to each draft grade
    (columns); the diagonal holds the accounts that keep their grade."""
    grades = list(pv.grades)
    z = pv.matrix("accounts")
    arr = pv.matrix("arr")
    text = [[fmt.number(v) for v in row] for row in z]
    custom = [[fmt.currency(v) for v in row] for row in arr]
    # Colour the off-diagonal cells by count and leave the diagonal pale: the moves stand out.
    moves = [[0.0 if i == j else v for j, v in enumerate(row)] for i, row in enumerate(z)]
    heat = go.Heatmap(
        z=moves,
        x=grades,
        y=grades,
        text=text,
        texttemplate="%{text}",
        customdata=custom,
        colorscale=[[0, "#f4f6f9"], [1, "#1f6feb"]],
        showscale=False,
        hovertemplate="%{y} → %{x}: %{text} accounts, %{customdata}<extra></extra>",
        xgap=2,
        ygap=2,
    )
    return _figure(
        [heat],
        title="Grade transitions (rows: active, columns: draft)",
        height=380,
        xaxis={"title": {"text": "Draft grade"}, "type": "category"},
        yaxis={"title": {"text": "Active grade"}, "autorange": "reversed", "type": "category"},
    )


def map_figure(m: Any) -> go.Figure | None:
    """The score curve of a linear or bands map (None for levels)."""
    mp = m.map
    if isinstance(mp, LinearMap) and len(mp.points) >= 2:
        pts = sorted(mp.points)
        span = (pts[-1][0] - pts[0][0]) or 1.0
        xs = [pts[0][0] - 0.15 * span, *[p[0] for p in pts], pts[-1][0] + 0.15 * span]
        ys = [pts[0][1], *[p[1] for p in pts], pts[-1][1]]
    elif isinstance(mp, BandsMap) and mp.steps:
        edges = [s.max for s in mp.steps if s.max is not None]
        if not edges:
            return None
        lo, hi = min(edges), max(edges)
        span = (hi - lo) or 1.0
        xs, ys = [lo - 0.3 * span], [mp.steps[0].score]
        for s in mp.steps:
            if s.max is None:
                xs += [xs[-1], hi + 0.3 * span]
                ys += [s.score, s.score]
            else:
                xs += [xs[-1], s.max]
                ys += [s.score, s.score]
    else:
        return None
    line = go.Scatter(
        x=xs,
        y=ys,
        mode="lines+markers",
        line={"color": "#1f6feb"},
        hovertemplate="value %{x:g} → score %{y:.0f}<extra></extra>",
    )
    return _figure(
        [line],
        title="Score by metric value",
        height=260,
        yaxis={"title": {"text": "Score"}, "range": [-5, 105]},
        xaxis={"title": {"text": m.metric}},
    )


# --------------------------------------------------------------------------- versions


def _version_labels(versions: pl.DataFrame) -> dict[int, str]:
    return {int(r["version"]): version_label(r) for r in versions.iter_rows(named=True)}


def version_label(row: Mapping[str, Any]) -> str:
    comment = f" · {row['comment']}" if row.get("comment") else ""
    when = fmt.timestamp(row.get("created_at"))
    return f"v{row['version']} · {row['status']} · {row.get('author') or '?'} · {when}{comment}"


def version_card(ctx: Context, version: int) -> Scorecard:
    sv = store.get_scorecard_version(_con(ctx.src), version)
    return parse_scorecard_yaml(sv.yaml, default_id=sv.scorecard_id)


@st.cache_resource(max_entries=8, show_spinner="Comparing the versions…")
def _version_transition(
    src: str,
    data_key: str,
    as_of: date,
    windows: tuple[int, ...],
    key: tuple[str, ...],
    _cards: Mapping[str, Scorecard],
    _before: Scorecard,
    _after: Scorecard,
    _grades: tuple[str, ...],
) -> Preview:
    prepared = _prepared(src, data_key, as_of, windows)
    return compare_versions(
        prepared, _cards, _before, _after, default=default_id(_cards), grades=_grades
    )


def version_transition(ctx: Context, before: Scorecard, after: Scorecard) -> Preview:
    windows = ctx.windows([before, after])
    key = tuple(f"{k}:{c.fingerprint()}" for k, c in sorted(ctx.active.items()))
    key += (before.fingerprint(), after.fingerprint())
    grades = tuple(summaries.grade_order(with_draft(with_draft(ctx.active, before), after)))
    return _version_transition(
        ctx.src, ctx.data_key(), ctx.as_of, windows, key, ctx.active, before, after, grades
    )


def diff_table(before: Scorecard, after: Scorecard) -> pl.DataFrame:
    return diff(before, after).rename(
        {
            "section": "Part",
            "item": "Item",
            "field": "Field",
            "before": "Before",
            "after": "After",
            "change": "Change",
        }
    )


# --------------------------------------------------------------------------- page sections


def header(ctx: Context) -> None:
    """Title, what the preview compares against, and the one-shot messages."""
    st.title("Scorecard designer")
    accounts = ctx.prepared().account_count
    st.caption(
        f"Edit a draft; the preview compares it with the active scorecards · as of "
        f"{fmt.day(ctx.as_of)} · {fmt.plural(accounts, 'account')} (the whole portfolio; the "
        "sidebar filters do not apply here)"
    )
    if cached.is_sample(ctx.src):
        st.info(
            "You are looking at the 40-account sample (no database yet). Run `make demo` (or "
            "open the Data page) to generate the demo portfolio.",
            icon=":material/info:",
        )
    message = state.pop_flash()
    if message:
        st.success(message)
    show_notice()


@dataclass(frozen=True)
class Edited:
    """The draft after this run's edits (None when the widget values do not parse) and every
    problem it has."""

    card: Scorecard | None
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return self.card is not None and not self.problems


def edit(ctx: Context, card_id: str) -> Edited:
    """The editor tabs for the draft of ``card_id``; the edited draft is kept."""
    current = ensure_draft(ctx, card_id)
    edited, problems = editor(ctx, current)
    if edited is None:
        return Edited(None, problems)
    if edited != current:
        set_draft(edited, reset=False)
    return Edited(edited, check(ctx, edited))


def draft_status(ctx: Context, card_id: str) -> str:
    """``Draft of default, started from v3 (active) · unsaved changes``."""
    current = ensure_draft(ctx, card_id)
    base = _bases().get(card_id)
    if base is None:
        origin = "a file" if card_id not in ctx.active else "the scorecard files"
        return f"Draft of **{card_id}**, started from {origin}"
    rows = ctx.versions.filter(pl.col("version") == base)
    status = rows.get_column("status")[0] if rows.height else "?"
    fp = (
        rows.get_column("fingerprint")[0] if rows.height and "fingerprint" in rows.columns else None
    )
    changed = fp is not None and fp != current.fingerprint()
    tail = " · **unsaved changes**" if changed else " · no changes yet"
    return f"Draft of **{card_id}**, started from v{base} ({status}){tail}"


def preview_section(ctx: Context, edited: Edited) -> None:
    if not edited.ok:
        show_problems(edited.problems)
        return
    assert edited.card is not None
    pv, ms = compute_preview(ctx, edited.card)
    show_preview(ctx, edited.card, pv, ms)


SAVE_KEY = "designer_save"
COMMENT_KEY = "designer_comment"
ACTIVATE_KEY = "designer_activate"


def save_section(ctx: Context, edited: Edited, card_id: str) -> None:
    """Save the draft as a new version (with a comment), export it, backtest it."""
    current = edited.card
    base = _bases().get(card_id)
    rows = (
        ctx.versions.filter(pl.col("version") == base) if base is not None else ctx.versions.clear()
    )
    unchanged = (
        current is not None
        and rows.height > 0
        and "fingerprint" in rows.columns
        and rows.get_column("fingerprint")[0] == current.fingerprint()
    )
    with st.container(border=True):
        st.markdown("**Save the draft**")
        cols = st.columns([5, 2, 2])
        comment = cols[0].text_input(
            "Comment (required)", key=COMMENT_KEY, placeholder="What changed, and why"
        )
        activate = cols[1].checkbox(
            "Make it the active version",
            key=ACTIVATE_KEY,
            help="Scores on every page use the active versions. You can activate it later.",
        )
        why_not = (
            "Fix the problems above first."
            if not edited.ok
            else "Nothing changed since the version it started from."
            if unchanged
            else "Write a comment first."
            if not comment.strip()
            else None
        )
        clicked = cols[2].button(
            "Save as new version",
            key=SAVE_KEY,
            type="primary",
            disabled=why_not is not None,
            help=why_not,
            icon=":material/save:",
        )
        if why_not:
            st.caption(why_not)
        if clicked and current is not None:
            # Checked again on the server (role, problems, comment): the button is a hint.
            if not comment.strip():
                st.error("A version needs a comment.")
                return
            try:
                version = save_draft(ctx, current, comment, activate=activate)
            except ScorecardError as exc:
                show_problems(exc.problems)
                return
            st.session_state.pop(COMMENT_KEY, None)
            verb = "saved and activated" if activate else "saved as a draft version"
            notice("success", f"{current.id} {verb}: v{version}.")
            st.rerun()
        cols = st.columns([2, 2, 4])
        if current is not None:
            cols[0].download_button(
                "Export YAML",
                data=current.to_yaml,  # made on click, not on every rerun
                file_name=f"{current.id}.yaml",
                mime="application/x-yaml",
                key="designer_export",
                icon=":material/download:",
            )
        if _page_exists(BACKTEST_PAGE):
            if (
                cols[1].button(
                    "Backtest this draft",
                    key="designer_backtest",
                    disabled=not edited.ok,
                    icon=":material/fact_check:",
                    help="Open the Backtest page with this draft (nothing is saved).",
                )
                and current is not None
            ):
                st.session_state[DRAFT_YAML] = current.to_yaml()
                st.switch_page(BACKTEST_PAGE)
        else:
            cols[1].caption("Backtest page not installed")


def _page_exists(path: str) -> bool:
    from pathlib import Path

    return (Path(__file__).resolve().parent.parent / path).is_file()


UPLOAD_KEY = "designer_upload"
IMPORT_PROBLEMS = "designer_import_problems"


def _import_clicked() -> None:
    """Load the uploaded file as the draft of its scorecard id (a callback: it may switch the
    scorecard selector before it is drawn)."""
    upload = st.session_state.get(UPLOAD_KEY)
    if upload is None:
        return
    try:
        card = import_yaml(upload.getvalue().decode("utf-8"))
    except ScorecardError as exc:
        st.session_state[IMPORT_PROBLEMS] = exc.problems
        return
    except UnicodeDecodeError:
        st.session_state[IMPORT_PROBLEMS] = [Problem(upload.name, "not UTF-8 text")]
        return
    st.session_state[CARD] = card.id
    notice("info", f"Loaded {upload.name} as the draft of {card.id}.")


def start_section(ctx: Context, card_id: str) -> None:
    """Open a stored version or a YAML file in the editor, or discard the draft."""
    with st.expander("Open a version or a file", icon=":material/folder_open:"):
        cols = st.columns(3)
        versions = ctx.versions_of(card_id)
        with cols[0]:
            if versions.height:
                labels = _version_labels(versions)
                chosen = st.selectbox(
                    "Stored version",
                    list(labels),
                    format_func=lambda v: labels.get(v, str(v)),
                    key="designer_open_version",
                )
                if chosen is not None and st.button(
                    "Open in the editor", key="designer_open", icon=":material/edit:"
                ):
                    load_version(ctx, int(chosen))
                    notice("info", f"Opened v{chosen} in the editor.")
                    st.rerun()
            else:
                st.caption("No stored version of this scorecard yet.")
        with cols[1]:
            upload = st.file_uploader("Scorecard YAML", type=["yaml", "yml"], key=UPLOAD_KEY)
            st.button(
                "Load the file",
                key="designer_import",
                icon=":material/upload:",
                disabled=upload is None,
                on_click=_import_clicked,
            )
            problems = st.session_state.pop(IMPORT_PROBLEMS, None)
            if problems:
                show_problems(problems, what="The file cannot be loaded")
        with cols[2]:
            if card_id in ctx.active and st.button(
                "Discard the draft",
                key="designer_discard",
                icon=":material/undo:",
                help="Start again from the active version.",
            ):
                set_draft(ctx.active[card_id], base_version=ctx.active_version(card_id), reset=True)
                notice("info", "Draft discarded: back to the active version.")
                st.rerun()


def versions_section(ctx: Context, card_id: str) -> None:
    """The stored versions of a scorecard: activate (or revert to) one, compare two."""
    versions = ctx.versions_of(card_id)
    if versions.height == 0:
        st.caption("No stored version yet: save the draft to create the first one.")
        return
    shown = versions.select(
        pl.col("version").alias("Version"),
        pl.col("status").alias("Status"),
        pl.col("author").alias("Author"),
        pl.col("created_at").alias("Saved"),
        pl.col("comment").alias("Comment"),
    )
    st.dataframe(shown, hide_index=True, width="stretch", key="designer_versions")
    labels = _version_labels(versions)
    numbers: list[int] = list(labels)

    def label(v: int) -> str:
        return labels.get(v, f"v{v}")

    active = ctx.active_version(card_id)
    pick = st.columns([3, 2])
    chosen = pick[0].selectbox("Version", numbers, format_func=label, key="designer_pick")
    if chosen is None:
        return
    older = active is not None and int(chosen) < active
    if pick[1].button(
        "Revert to this version" if older else "Activate this version",
        key="designer_activate_version",
        disabled=chosen == active,
        icon=":material/published_with_changes:",
        help="It becomes the active version; the current one is archived (not deleted).",
    ):
        try:
            activate_version(ctx, int(chosen))
        except ScorecardError as exc:
            show_problems(exc.problems)
        else:
            notice("success", f"v{chosen} is now the active version of {card_id}.")
            st.rerun()
    if st.toggle("Compare two versions", key="designer_compare"):
        default_b = numbers.index(active) if active in numbers else 0
        pair = st.columns(2)
        a = pair[0].selectbox(
            "From", numbers, index=min(1, len(numbers) - 1), format_func=label, key="designer_cmp_a"
        )
        b = pair[1].selectbox(
            "To", numbers, index=default_b, format_func=label, key="designer_cmp_b"
        )
        if a is None or b is None:
            return
        before, after = version_card(ctx, int(a)), version_card(ctx, int(b))
        changes = diff_table(before, after)
        if changes.height == 0:
            st.info("The two versions have the same content.")
            return
        st.dataframe(
            changes,
            hide_index=True,
            width="stretch",
            key="designer_diff",
            column_config={"Change": st.column_config.NumberColumn(format="%+.1f")},
        )
        pv = version_transition(ctx, before, after)
        s = pv.summary
        st.caption(
            f"At {fmt.day(ctx.as_of)}: {fmt.plural(s.changed, 'account')} change grade from "
            f"v{a} to v{b} ({s.up} up, {s.down} down; {fmt.currency(s.arr_changed)} of ARR)."
        )
        st.plotly_chart(
            transition_figure(pv), key="designer_cmp_matrix", config={"displayModeBar": False}
        )


def history_section(ctx: Context) -> None:
    """Recompute the stored weekly history with the active versions (trend pages read it)."""
    st.caption(
        "Trends and movers read the stored weekly scores of the active versions. After "
        "activating a version, recompute them (this can take a while on a large portfolio)."
    )
    if st.button("Recompute the score history", key="designer_backfill", icon=":material/history:"):
        bar = st.progress(0.0, text="Scoring the history…")
        rows = backfill_active(ctx, lambda share, label: bar.progress(min(share, 1.0), text=label))
        bar.empty()
        notice("success", f"History recomputed: {fmt.number(rows)} scores stored.")
        st.rerun()
