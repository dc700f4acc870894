"""Cached adapters around the engine: the only way pages reach data.

Cache keys are small: ``src`` (a string naming the data source), ``dv`` (the data version, a
short string that changes whenever anything is written), an as-of date, a scorecard choice key
and an account id. Never a frame.

Data source (:func:`source`):

- ``db:<path>``: the DuckDB file at env ``VITALS_DB`` or ``data/vitals.duckdb``, when it exists.
- ``sample:<folder>``: otherwise the small sample in ``data/sample/*.csv``, loaded into an
  in-memory store with the scorecards of ``data/scorecards/`` and scored at its dates, so every
  page works on a fresh clone. Writes to it last until the process ends.

Data version (:func:`data_version`): a counter bumped by every write made through this module,
plus the newest audit-log id (every engine write is audited: a designer save, a backfill, an
import). The database file is held by this process, so nothing else can write it meanwhile.

Scorecard choices: ``active`` (the active version of every scorecard id), ``v<N>`` (version N
in place of its namesake among the active ones) or ``files`` (the YAML files, when the database
holds no versions).

Writes (:func:`record_subjective_score`, :func:`record_manual_override`, ...) check the role on
the server first (:func:`ui.auth.require_role`), whatever the page showed.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import streamlit as st

from engine import store
from engine.backtest import scorecard_set
from engine.explain import explain_change
from engine.problems import InputError, Problem
from engine.scorecard import Scorecard, load_scorecards, parse_scorecard_yaml
from engine.scoring import ScoreDetail, score, score_detail
from ui.auth import Role, User, require_role

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = ROOT / "data" / "vitals.duckdb"
SAMPLE_DIR = ROOT / "data" / "sample"
SCORECARDS_DIR = ROOT / "data" / "scorecards"
MEMORY = ":memory:"
DEFAULT_CARD = "default"

ACCOUNT_ATTRS = (
    "name",
    "arr",
    "segment",
    "region",
    "csm",
    "lifecycle_stage",
    "industry",
    "renewal_date",
    "parent_account_id",
)

# Live history (no stored snapshots): at most this many as-of dates are scored on the fly.
LIVE_HISTORY_DATES = 26
# Stored history read for the trend pages: at most about this many rows (all of the default
# portfolio's two years; the last 5 weeks of a million accounts), never fewer weeks than this.
HISTORY_ROWS = 5_000_000
MIN_HISTORY_WEEKS = 5


# --------------------------------------------------------------------------- source


def db_path() -> Path:
    raw = os.environ.get("VITALS_DB")
    p = Path(raw) if raw else DEFAULT_DB
    return p if p.is_absolute() else (Path.cwd() / p)


def source() -> str:
    """``db:<path>`` when the database file exists, else ``sample:<folder>``."""
    path = db_path()
    if path.exists():
        return f"db:{path}"
    return f"sample:{SAMPLE_DIR}"


def is_sample(src: str) -> bool:
    return src.startswith("sample:")


def _con(src: str) -> Any:
    """This thread's cursor on the source's store (the sample is loaded on first use).

    DuckDB connections are not thread-safe: the process shares one connection per file
    (:func:`_connection`) and every Streamlit session thread works on its own cursor."""
    if is_sample(src):
        _sample_store(src.removeprefix("sample:"))
        return store.cursor(MEMORY)
    path = src.removeprefix("db:")
    _connection(path)
    return store.cursor(path)


@st.cache_resource(show_spinner="Opening the database…")
def _connection(path: str) -> Any:
    """The process-wide connection (opened, and migrated, once)."""
    return store.connect(path)


@st.cache_resource(show_spinner="Loading the sample portfolio…")
def _sample_store(folder: str) -> str:
    """Load the sample CSVs into the in-memory store once per process; score its dates."""
    from engine import io

    con = store.cursor(MEMORY)
    base = Path(folder)
    tables: dict[str, pl.DataFrame] = {
        "accounts": io.read_accounts(base / "accounts.csv"),
        "metric_values": io.read_metric_values(base / "metric_values.csv"),
    }
    for name, reader in (
        ("renewals", io.read_renewals),
        ("activities", io.read_activities),
        ("products", io.read_product_arr),
    ):
        path = base / f"{name}.csv"
        if path.exists():
            tables[name] = reader(path)
    with store.transaction(con):
        for name, frame in tables.items():
            known = [c for c in store.table_columns(con, name) if c in frame.columns]
            store.upsert(con, name, frame.select(known))
    _ensure_versions(con, "sample")
    mod = _history_module()
    first, last = store.metric_date_range(con)
    if mod is not None and first is not None and last is not None:
        mod.backfill(con, start=max(first, last - timedelta(weeks=26)), end=last)
    _bump()
    return folder


def _ensure_versions(con: Any, author: str) -> None:
    """Store the scorecard files as active versions when the database has none."""
    if store.scorecard_versions(con).height:
        return
    history = _history_module()
    if history is not None and hasattr(history, "ensure_scorecards"):
        history.ensure_scorecards(con, SCORECARDS_DIR, author=author)
        return
    for path in sorted(SCORECARDS_DIR.glob("*.yaml")):
        store.save_scorecard_version(
            con,
            path.read_text(encoding="utf-8"),
            author=author,
            comment=f"from {path.name}",
            status="active",
        )


def _history_module() -> Any:
    try:
        from engine import history
    except ImportError:
        return None
    return history


# --------------------------------------------------------------------------- data version

_lock = threading.Lock()
_writes = {"n": 0}


def _bump() -> None:
    with _lock:
        _writes["n"] += 1


def data_version(src: str) -> str:
    """A short string that changes whenever anything is written (see the module docstring)."""
    try:
        latest = store.audit_entries(_con(src), limit=1)
        audit_id = int(latest.get_column("id")[0]) if latest.height else 0
    except Exception:  # a database being created or migrated: the counter alone will do
        audit_id = -1
    return f"{_writes['n']}:{audit_id}"


def invalidate() -> None:
    """After a write: new data version, and the cached reads are dropped."""
    _bump()
    st.cache_data.clear()


# --------------------------------------------------------------------------- scorecards


@dataclass(frozen=True)
class Choice:
    key: str
    label: str


@st.cache_data(show_spinner=False)
def versions(src: str, dv: str) -> pl.DataFrame:
    """Stored scorecard versions, newest first (without their YAML)."""
    return store.scorecard_versions(_con(src))


def scorecard_choices(src: str, dv: str) -> list[Choice]:
    """The sidebar's scorecard options: the active set first, then every stored version."""
    table = versions(src, dv)
    if table.height == 0:
        return [Choice("files", "Scorecard files (data/scorecards)")]
    active = table.filter(pl.col("status") == "active").sort("scorecard_id")
    summary = ", ".join(
        f"{r['scorecard_id']} v{r['version']}" for r in active.iter_rows(named=True)
    )
    out = [Choice("active", f"Active ({summary})" if summary else "Active")]
    for r in table.iter_rows(named=True):
        comment = f" · {r['comment']}" if r.get("comment") else ""
        out.append(
            Choice(
                f"v{r['version']}", f"v{r['version']} {r['scorecard_id']} · {r['status']}{comment}"
            )
        )
    return out


@st.cache_data(show_spinner=False)
def scorecards(src: str, dv: str, choice: str) -> dict[str, Scorecard]:
    """The scorecard set of a choice (see the module docstring)."""
    con = _con(src)
    if choice == "files":
        return load_scorecards(SCORECARDS_DIR)
    active = {
        sid: parse_scorecard_yaml(v.yaml, default_id=sid)
        for sid, v in store.active_scorecard_versions(con).items()
    }
    if not active:
        active = load_scorecards(SCORECARDS_DIR)
    if choice.startswith("v") and choice[1:].isdigit():
        ver = store.get_scorecard_version(con, int(choice[1:]))
        card = parse_scorecard_yaml(ver.yaml, default_id=ver.scorecard_id)
        return scorecard_set(card, active, default=DEFAULT_CARD)
    return active


def version_numbers(src: str, dv: str, choice: str) -> tuple[int, ...]:
    """The stored version numbers of a choice's scorecards (what score history is keyed on)."""
    table = versions(src, dv)
    if table.height == 0:
        return ()
    active = table.filter(pl.col("status") == "active")
    numbers = dict(
        zip(
            active.get_column("scorecard_id").to_list(),
            active.get_column("version").to_list(),
            strict=True,
        )
    )
    if choice.startswith("v") and choice[1:].isdigit():
        n = int(choice[1:])
        row = table.filter(pl.col("version") == n)
        if row.height:
            numbers[row.get_column("scorecard_id")[0]] = n
    return tuple(sorted(int(v) for v in numbers.values()))


def default_card(cards: Mapping[str, Scorecard]) -> Scorecard:
    return cards.get(DEFAULT_CARD) or next(iter(cards.values()))


# --------------------------------------------------------------------------- contract tables


@st.cache_data(show_spinner=False)
def accounts(src: str, dv: str) -> pl.DataFrame:
    return store.load_accounts(_con(src))


@st.cache_data(show_spinner=False)
def products(src: str, dv: str) -> pl.DataFrame:
    """``account_id``, ``product``, ``arr`` (empty when accounts have no products)."""
    return store.load_products(_con(src))


@st.cache_data(show_spinner=False)
def renewals(src: str, dv: str) -> pl.DataFrame:
    return store.load_renewals(_con(src))


@st.cache_data(show_spinner=False)
def activities(src: str, dv: str) -> pl.DataFrame:
    return store.load_activities(_con(src))


@st.cache_data(show_spinner=False)
def manual_overrides(src: str, dv: str) -> pl.DataFrame:
    return store.load_manual_overrides(_con(src))


@st.cache_data(show_spinner=False)
def metric_dates(src: str, dv: str) -> list[date]:
    return store.metric_dates(_con(src))


def entry_date(src: str, dv: str) -> date:
    """The date new entries (subjective scores, manual overrides) are recorded at: today, or
    the last data date when the data runs ahead of the clock (the sample)."""
    dates = metric_dates(src, dv)
    today = date.today()
    return max(today, dates[-1]) if dates else today


@st.cache_data(show_spinner=False)
def as_of_dates(src: str, dv: str) -> list[date]:
    """The dates the sidebar offers, ascending: the stored snapshot dates (or the metric dates
    when there is no history), and the entry date, scored live."""
    hist = _stored_dates(src, dv)
    dates = hist or metric_dates(src, dv)
    live = entry_date(src, dv)
    return sorted({*dates, live}) if dates else [live]


def _stored_dates(src: str, dv: str) -> list[date]:
    nums = version_numbers(src, dv, "active")
    if not nums:
        return []
    return list(store.snapshot_dates(_con(src), list(nums)))


# --------------------------------------------------------------------------- scores


def _metrics_at(
    con: Any, as_of: date, cards: Mapping[str, Scorecard], accounts_: list[str] | None = None
) -> pl.DataFrame:
    """Exactly the metric rows a score at ``as_of`` reads: the latest value of every metric on
    or before ``as_of``, and on or before ``as_of - days`` for every change condition."""
    from engine.conditions import changes

    if accounts_ is not None:
        return store.load_metric_values(con, end=as_of, accounts=accounts_)
    frames = [store.latest_metric_values(con, as_of)]
    windows: set[int] = set()
    for card in cards.values():
        for o in card.overrides:
            windows |= {days for _, days in changes(o.when)}
    for days in sorted(windows):
        frames.append(store.latest_metric_values(con, as_of - timedelta(days=days)))
    return pl.concat(frames, how="diagonal_relaxed")


@st.cache_data(show_spinner="Scoring the portfolio…")
def scored(src: str, dv: str, as_of: date, choice: str) -> pl.DataFrame:
    """Every account that is a customer at ``as_of``, with its attributes and scores (scored
    live, exactly as a stored snapshot would be, so today's entries count at once)."""
    con = _con(src)
    cards = scorecards(src, dv, choice)
    accts = store.load_accounts(con, active_on=as_of)
    if accts.height == 0:
        return accts
    stored = _stored_set(con, choice)
    if stored is not None:
        from engine import history as history_mod

        result = history_mod.score_at(con, as_of, scorecards=stored)
    else:
        result = score(
            accts,
            _metrics_at(con, as_of, cards),
            cards,
            as_of,
            default=DEFAULT_CARD if DEFAULT_CARD in cards else next(iter(cards)),
            manual_overrides=store.load_manual_overrides(con, as_of=as_of),
            product_arr=products(src, dv),
        )
    attrs = ["account_id", *[c for c in ACCOUNT_ATTRS if c in accts.columns]]
    return accts.select(attrs).join(result, on="account_id", how="left")


def _stored_set(con: Any, choice: str) -> Any:
    """engine.history's scorecard set for a stored choice (None for files or when the
    history module is missing)."""
    mod = _history_module()
    if mod is None or choice == "files":
        return None
    version = int(choice[1:]) if choice.startswith("v") and choice[1:].isdigit() else None
    try:
        return mod.scorecard_set(con, version)
    except InputError:
        return None


@st.cache_data(show_spinner=False)
def account_detail(src: str, dv: str, as_of: date, choice: str, account_id: str) -> ScoreDetail:
    """One account's full score detail at ``as_of`` (measures, products, contributions)."""
    con = _con(src)
    cards = scorecards(src, dv, choice)
    accts = accounts(src, dv).filter(pl.col("account_id") == account_id)
    metrics = _metrics_at(con, as_of, cards, accounts_=[account_id])
    mo = store.load_manual_overrides(con, as_of=as_of).filter(pl.col("account_id") == account_id)
    pa = products(src, dv).filter(pl.col("account_id") == account_id)
    return score_detail(
        accts,
        metrics,
        cards,
        as_of,
        default=DEFAULT_CARD if DEFAULT_CARD in cards else next(iter(cards)),
        manual_overrides=mo,
        product_arr=pa,
    )


@st.cache_data(show_spinner="Explaining the change…")
def explanation(
    src: str, dv: str, choice: str, account_id: str, start: date, end: date
) -> pl.DataFrame:
    """The change of an account's score from ``start`` to ``end`` in named parts."""
    before = account_detail(src, dv, start, choice, account_id)
    after = account_detail(src, dv, end, choice, account_id)
    return explain_change(before, after)


# --------------------------------------------------------------------------- history


@st.cache_data(show_spinner="Loading score history…")
def history(src: str, dv: str, choice: str) -> pl.DataFrame:
    """Stored weekly scores of a choice's versions, one row per (as_of, account_id):
    ``score``, ``grade``, ``outcomes_score``, ``experience_score``, one column per group id,
    and the account's ``arr``. Empty when nothing is stored for these versions."""
    nums = version_numbers(src, dv, choice)
    empty = pl.DataFrame(
        schema={
            "as_of": pl.Date,
            "account_id": pl.Utf8,
            "score": pl.Float64,
            "grade": pl.Utf8,
            "arr": pl.Float64,
        }
    )
    if not nums:
        return empty
    groups = [g for g, _ in _group_ids(scorecards(src, dv, choice))]
    con = _con(src)
    dates = store.snapshot_dates(con, list(nums))
    if not dates:
        return empty
    # Keep the frame in memory bounds: the most recent weeks that fit HISTORY_ROWS.
    weeks = max(MIN_HISTORY_WEEKS, min(HISTORY_ROWS // max(accounts(src, dv).height, 1), 5200))
    start = dates[-1] - timedelta(weeks=weeks)
    frame = store.load_scores(con, start=start, versions=list(nums), group_ids=groups)
    if frame.height == 0:
        return empty
    keep = [
        "as_of",
        "account_id",
        "scorecard_id",
        "score",
        "raw_score",
        "grade",
        "outcomes_score",
        "experience_score",
        *groups,
    ]
    arr = accounts(src, dv).select("account_id", "arr")
    return frame.select([c for c in keep if c in frame.columns]).join(
        arr, on="account_id", how="left"
    )


def _group_ids(cards: Mapping[str, Scorecard]) -> list[tuple[str, str]]:
    out: dict[str, str] = {}
    for card in cards.values():
        for g in card.groups:
            out.setdefault(g.id, g.title)
    return list(out.items())


@st.cache_data(show_spinner=False)
def account_history(src: str, dv: str, choice: str, account_id: str) -> pl.DataFrame:
    """One account's weekly scores (stored, or scored live at the last dates when none are
    stored), plus today's live score so a new entry shows at once."""
    hist = history(src, dv, choice)
    rows = hist.filter(pl.col("account_id") == account_id)
    live_dates = [entry_date(src, dv)]
    if rows.height == 0:
        live_dates = as_of_dates(src, dv)[-LIVE_HISTORY_DATES:]
    live = []
    for d in live_dates:
        det = account_detail(src, dv, d, choice, account_id).company
        if det.height:
            live.append(det.with_columns(pl.lit(d).alias("as_of")))
    if live:
        frame = pl.concat(live, how="diagonal_relaxed")
        cols = [c for c in rows.columns if c in frame.columns]
        rows = pl.concat(
            [rows.filter(~pl.col("as_of").is_in(live_dates)).select(cols), frame.select(cols)],
            how="diagonal_relaxed",
        )
    return rows.sort("as_of")


# --------------------------------------------------------------------------- Customer 360 reads


def account_rows(frame: pl.DataFrame, account_id: str, col: str = "account_id") -> pl.DataFrame:
    return frame.filter(pl.col(col) == account_id) if frame.height else frame


@st.cache_data(show_spinner=False)
def subjective_entries(
    src: str, dv: str, account_id: str, metrics: tuple[str, ...]
) -> pl.DataFrame:
    """The recorded values of subjective metrics for an account, newest first: ``as_of``,
    ``metric``, ``level``, ``value``, ``author``, ``comment``, ``source``."""
    frame = store.load_metric_values(_con(src), metrics=list(metrics), accounts=[account_id])
    return frame.sort("as_of", descending=True)


# --------------------------------------------------------------------------- writes


def _write(src: str, fn: Callable[[Any], Any]) -> Any:
    con = _con(src)
    try:
        return fn(con)
    finally:
        invalidate()


def record_subjective_score(
    src: str,
    *,
    account_id: str,
    metric: str,
    level: str,
    comment: str,
    on: date,
    level_value: float | None = None,
) -> User:
    """Store a subjective score (a level with a comment) as a metric value with its author,
    date and source ``subjective``; audited. Editors only, checked here."""
    user = require_role(Role.EDITOR)
    comment = comment.strip()
    if not comment:
        raise InputError("a subjective score needs a comment: say why")
    if account_id not in set(accounts(src, data_version(src)).get_column("account_id").to_list()):
        raise InputError(f"unknown account {account_id!r}")
    row = pl.DataFrame(
        {
            "account_id": [account_id],
            "metric": [metric],
            "product": [None],
            "as_of": [on],
            "value": [level_value],
            "level": [level],
            "source": ["subjective"],
            "author": [user.username],
            "comment": [comment],
        },
        schema={
            "account_id": pl.Utf8,
            "metric": pl.Utf8,
            "product": pl.Utf8,
            "as_of": pl.Date,
            "value": pl.Float64,
            "level": pl.Utf8,
            "source": pl.Utf8,
            "author": pl.Utf8,
            "comment": pl.Utf8,
        },
    )

    def write(con: Any) -> None:
        with store.transaction(con):
            store.upsert(con, "metric_values", row)
            store.audit(
                con,
                user.username,
                "subjective_score.add",
                account_id,
                {"metric": metric, "level": level, "as_of": on, "comment": comment},
            )

    _write(src, write)
    return user


def record_manual_override(
    src: str,
    *,
    account_id: str,
    action: str,
    value: str,
    reason: str,
    on: date,
    expires_on: date | None,
) -> User:
    """Store a manual override (grade, cap or set) with author, reason and expiry; audited.
    Editors only, checked here."""
    user = require_role(Role.EDITOR)
    if not reason.strip():
        raise InputError("a manual override needs a reason")
    if expires_on is not None and expires_on <= on:
        raise InputError("the expiry must be after today")
    _write(
        src,
        lambda con: store.add_manual_override(
            con,
            account_id=account_id,
            action=action,
            value=value,
            reason=reason.strip(),
            author=user.username,
            created_on=on,
            expires_on=expires_on,
        ),
    )
    return user


def remove_manual_override(src: str, override_id: int) -> User:
    user = require_role(Role.EDITOR)
    _write(src, lambda con: store.remove_manual_override(con, override_id, author=user.username))
    return user


# --------------------------------------------------------------------------- data page


@st.cache_data(show_spinner=False)
def audit_log(src: str, dv: str, limit: int = 500) -> pl.DataFrame:
    return store.audit_entries(_con(src), limit=limit)


@st.cache_data(show_spinner=False)
def table_counts(src: str, dv: str) -> dict[str, int]:
    return store.table_counts(_con(src))


@st.cache_data(show_spinner=False)
def metric_definitions() -> pl.DataFrame:
    """``id``, ``label``, ``unit``, ``group``, ``level``, ``derived`` (has SQL), ``description``."""
    try:
        from engine import metrics as metric_defs
    except ImportError:
        return pl.DataFrame()
    defs = metric_defs.load_definitions()
    return pl.DataFrame(
        [
            {
                "id": d.id,
                "label": d.label,
                "unit": d.unit,
                "group": d.group or "",
                "level": str(d.level),
                "derived": d.sql is not None,
                "description": d.description,
            }
            for d in defs.values()
        ]
    )


@st.cache_data(show_spinner="Checking data quality…")
def data_quality(src: str, dv: str, as_of: date) -> Any:
    """The data-quality report of :mod:`engine.quality` at ``as_of``."""
    from engine import quality

    return quality.quality_report(_con(src), as_of)


# Upload table -> the importer's keyword.
IMPORT_TABLES: dict[str, str] = {
    "accounts": "accounts",
    "metric_values": "metrics",
    "renewals": "renewals",
    "activities": "activities",
    "products": "products",
}


@contextlib.contextmanager
def _uploaded(files: Mapping[str, tuple[str, bytes]]) -> Iterator[tuple[dict[str, Path], str]]:
    """Write uploads (``table -> (file name, bytes)``) to a temporary folder, each under its
    own file name (so problems name the user's file); yields the importer's keyword
    arguments and the folder to strip from messages."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="vitals-upload-") as tmp:
        out: dict[str, Path] = {}
        for table, (name, data) in files.items():
            folder = Path(tmp) / table
            folder.mkdir()
            p = folder / Path(name).name
            p.write_bytes(data)
            out[IMPORT_TABLES[table]] = p
        yield out, tmp


def _readable(exc: InputError, tmp: str) -> list[str]:
    return [str(p).replace(tmp + os.sep, "").replace(tmp, "") for p in exc.problems]


@dataclass(frozen=True)
class UploadCheck:
    """The validation report of an upload: problems (empty when it can be imported) and rows
    per table."""

    problems: list[str]
    rows: dict[str, int]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_upload(src: str, files: Mapping[str, tuple[str, bytes]]) -> UploadCheck:
    """Validate uploaded files without writing anything. Editors only."""
    require_role(Role.EDITOR)
    from engine import importer

    with _uploaded(files) as (kwargs, tmp):
        try:
            data = importer.validate(_con(src), **kwargs)  # type: ignore[arg-type]
        except InputError as exc:
            return UploadCheck(_readable(exc, tmp), {})
    rows = {t: getattr(data, t).height for t in IMPORT_TABLES if getattr(data, t, None) is not None}
    return UploadCheck([], rows)


def import_upload(src: str, files: Mapping[str, tuple[str, bytes]]) -> dict[str, int]:
    """Import uploaded files, all or nothing (validated again first). Editors only."""
    user = require_role(Role.EDITOR)
    if is_sample(src):
        raise InputError("the sample is read-only: generate the demo database first")
    from engine import importer

    with _uploaded(files) as (kwargs, tmp):
        try:
            result = _write(
                src,
                lambda con: importer.import_files(con, author=user.username, **kwargs),  # type: ignore[arg-type]
            )
        except InputError as exc:
            raise InputError([Problem("", m) for m in _readable(exc, tmp)]) from None
    return dict(result.rows)


def generate_demo(
    progress: Callable[[str], None], *, accounts_n: int = 2000, weeks: int = 104
) -> dict[str, Any]:
    """Generate the demo database at :func:`db_path`. Editors only."""
    require_role(Role.EDITOR)
    from engine import demo

    summary = demo.build(
        db_path(), n_accounts=accounts_n, weeks=weeks, scorecards=SCORECARDS_DIR, progress=progress
    )
    invalidate()
    return summary
