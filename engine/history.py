"""Score history: snapshots per as-of date and scorecard version, backfills, trend queries.

A **snapshot** is the portfolio scored at one as-of date with a set of scorecard versions (the
active version of every scorecard unless told otherwise): one ``score_history`` row per account
that is a customer on that date, keyed by (as_of, scorecard_version, account_id). Storing a
snapshot again for the same date and versions replaces it (idempotent).

A **backfill** stores weekly snapshots over a date range in one transaction: either all of them
are stored or none. Values are read once, in date order: for every date the scorer gets the
latest value of each (account, product, metric) on or before it, and the latest on or before
``date - days`` for each change window its overrides read. That is exactly what scoring the
whole history would read, at a fraction of the cost.

Trend queries read stored snapshots (of the active versions unless told otherwise):

- :func:`trends`: per account, the score at a date and its change over 4 and 13 weeks (against
  the latest snapshot on or before ``date - 28`` / ``- 91`` days), with an arrow: ``up`` when
  the change is at least ``flat_within`` points (default 2), ``down`` when at most minus that,
  ``flat`` in between, null without an earlier score.
- :func:`movers`: the largest rises and drops between two dates, and grade changes.
- :func:`transitions`: accounts and ARR from each grade to each grade between two dates
  (``None`` = no score: a new or lost customer).
- :func:`grade_mix`: accounts and ARR per grade at every stored date.
- :func:`account_history`: one account's scores, groups and grade over time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from engine import store
from engine.conditions import changes, metrics_read
from engine.problems import InputError, Problem
from engine.scorecard import Scorecard, load_scorecard, load_scorecards, parse_scorecard_yaml
from engine.series import EPOCH, Series, day_number

DEFAULT_SCORECARDS = Path(__file__).resolve().parent.parent / "data" / "scorecards"
DEFAULT_WEEKS = 104
_KEY = ["account_id", "product", "metric"]
Progress = Callable[[int, int, date], object]


# --------------------------------------------------------------------------- scorecard sets


@dataclass(frozen=True)
class ScorecardSet:
    """The scorecards a scoring run uses, with their stored version numbers."""

    cards: dict[str, Scorecard]
    versions: dict[str, int]
    default: str = "default"

    @property
    def version_numbers(self) -> list[int]:
        return sorted(self.versions.values())

    @property
    def group_ids(self) -> list[str]:
        return _unique(g.id for c in self.cards.values() for g in c.groups)

    @property
    def measure_ids(self) -> list[str]:
        return _unique(m.id for c in self.cards.values() for _, m in c.measures)

    @property
    def metrics(self) -> set[str]:
        out: set[str] = set()
        for c in self.cards.values():
            out |= c.metrics
            for o in c.overrides:
                out |= metrics_read(o.when)
        return out

    @property
    def change_days(self) -> list[int]:
        days: set[int] = set()
        for c in self.cards.values():
            for o in c.overrides:
                days |= {d for _, d in changes(o.when)}
        return sorted(days)


def _unique(items: object) -> list[str]:
    out: list[str] = []
    for x in items:  # type: ignore[attr-defined]
        if x not in out:
            out.append(x)
    return out


def ensure_scorecards(
    con: duckdb.DuckDBPyConnection, path: str | Path = DEFAULT_SCORECARDS, *, author: str = "system"
) -> dict[str, int]:
    """Store every scorecard of ``path`` (a folder of YAML files or one file) as the active
    version of its id, unless the active version already has the same content. The whole set
    is validated first (every problem raised at once, nothing stored). Returns ``{id: version}``."""
    p = Path(path)
    if p.is_dir():
        load_scorecards(p)  # validates the set, including assignment references
    else:
        load_scorecard(p)
    files = sorted([*p.glob("*.yaml"), *p.glob("*.yml")]) if p.is_dir() else [p]
    active = store.active_scorecard_versions(con)
    out: dict[str, int] = {}
    for f in files:
        text = f.read_text(encoding="utf-8")
        card = parse_scorecard_yaml(text, default_id=f.stem)
        current = active.get(card.id)
        if current is not None and current.fingerprint == card.fingerprint():
            out[card.id] = current.version
            continue
        out[card.id] = store.save_scorecard_version(
            con, _with_id(text, card.id), author=author, comment=f"from {f.name}", status="active"
        )
    return out


def _with_id(text: str, card_id: str) -> str:
    """The YAML with an explicit ``id`` (a file may rely on its file name for it)."""
    data_has_id = any(line.startswith("id:") for line in text.splitlines())
    return text if data_has_id else f"id: {card_id}\n{text}"


def scorecard_set(
    con: duckdb.DuckDBPyConnection,
    scorecard: int | str | Path | None = None,
    *,
    author: str = "cli",
) -> ScorecardSet:
    """The active version of every stored scorecard; ``scorecard`` replaces one of them:
    a version number (any status), or a YAML file, stored first as a draft version (or reused
    when an identical version exists).

    Raises :class:`InputError` when no scorecard is stored (run ``demo`` or store one)."""
    active = store.active_scorecard_versions(con)
    chosen = {sid: v for sid, v in active.items()}
    if scorecard is not None:
        version = _resolve_version(con, scorecard, author)
        sv = store.get_scorecard_version(con, version)
        chosen[sv.scorecard_id] = sv
    if not chosen:
        raise InputError(
            "no scorecard is stored in the database: run `python -m engine demo` or store one "
            "(backfill --scorecard FILE)"
        )
    cards = {sid: parse_scorecard_yaml(sv.yaml, default_id=sid) for sid, sv in chosen.items()}
    default = "default" if "default" in cards else sorted(cards)[0]
    _check_assignment(cards, default)
    return ScorecardSet(cards, {sid: sv.version for sid, sv in chosen.items()}, default)


def _resolve_version(
    con: duckdb.DuckDBPyConnection, scorecard: int | str | Path, author: str
) -> int:
    if isinstance(scorecard, int) or (isinstance(scorecard, str) and scorecard.isdigit()):
        version = int(scorecard)
        store.get_scorecard_version(con, version)  # raises when unknown
        return version
    p = Path(scorecard)
    if not p.is_file():
        raise InputError([Problem(str(p), "not a scorecard version number nor a YAML file")])
    card = load_scorecard(p)  # assignment references are checked against the stored set later
    cid = card.id
    text = _with_id(p.read_text(encoding="utf-8"), cid)
    existing = store.scorecard_versions(con).filter(
        (pl.col("scorecard_id") == cid) & (pl.col("fingerprint") == card.fingerprint())
    )
    if existing.height:
        return int(existing.get_column("version").max())  # type: ignore[arg-type]
    return store.save_scorecard_version(con, text, author=author, comment=f"from {p.name}")


def _check_assignment(cards: Mapping[str, Scorecard], default: str) -> None:
    missing = sorted({a.scorecard for a in cards[default].assignment if a.scorecard not in cards})
    if missing:
        raise InputError(
            f"the {default!r} scorecard assigns accounts to {', '.join(missing)}, which is not "
            "stored in the database"
        )


# --------------------------------------------------------------------------- scoring


@dataclass
class _Stream:
    """Latest metric row per (account, product, metric) as of an advancing date."""

    con: duckdb.DuckDBPyConnection
    metrics: list[str]
    state: pl.DataFrame | None = None
    upto: date | None = None

    def at(self, day: date) -> pl.DataFrame:
        if self.state is None or self.upto is None or day < self.upto:
            self.state = store.latest_metric_values(self.con, day, metrics=self.metrics)
        elif day > self.upto:
            new = store.metric_values_between(self.con, self.upto, day, metrics=self.metrics)
            if new.height:
                new = new.sort("as_of").unique(_KEY, keep="last", maintain_order=False)
                kept = self.state.join(new.select(_KEY), on=_KEY, how="anti", nulls_equal=True)
                self.state = pl.concat([kept, new], how="vertical_relaxed")
        self.upto = day
        return self.state


class _Reader:
    """Everything a score at one date reads from the database (the latest values at that date
    and at ``date - days`` for each change window), for :func:`engine.scoring.score`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, cards: ScorecardSet) -> None:
        self.con = con
        self.cards = cards
        self.lags = [0, *cards.change_days]
        change_metrics = sorted(
            {m for c in cards.cards.values() for o in c.overrides for m, _ in changes(o.when)}
        )
        self.streams = {0: _Stream(con, sorted(cards.metrics))}
        for lag in cards.change_days:  # change windows only need their own metrics
            self.streams[lag] = _Stream(con, change_metrics)
        self.accounts = store.load_accounts(con)
        overrides = store.load_manual_overrides(con)
        self.overrides = overrides if overrides.height else None
        products = store.load_products(con)
        self.products = products if products.height else None

    def score(self, as_of: date) -> pl.DataFrame:
        """The frame of :func:`engine.scoring.score` at ``as_of``."""
        from engine.scoring import score

        acc = self.accounts
        if "customer_since" in acc.columns:
            acc = acc.filter(
                pl.col("customer_since").is_null() | (pl.col("customer_since") <= as_of)
            )
        if "churned_on" in acc.columns:
            acc = acc.filter(pl.col("churned_on").is_null() | (pl.col("churned_on") > as_of))
        parts = [self.streams[lag].at(as_of - timedelta(days=lag)) for lag in self.lags]
        values = parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical_relaxed")
        return score(
            acc,
            values,
            self.cards.cards,
            as_of,
            default=self.cards.default,
            manual_overrides=self.overrides,
            product_arr=self.products,
        )


# Account-dates per scoring call of a backfill: dates are scored together as virtual accounts.
BATCH_ACCOUNT_DATES = 1_000_000
BATCH_MAX_DATES = 13  # at most a quarter per call, so a progress bar moves


class _SeriesScorer:
    """The scores of ascending dates for a backfill, several dates per scoring call.

    The latest values come from :class:`engine.series.Series` (read once, in date order). An
    account at date number ``k`` becomes the virtual account ``k * accounts + code``; its
    values' ages are those at its own date, and its manual overrides are shifted by
    ``anchor - date``, so one call of :func:`engine.scoring.score_units` at the batch's last
    date (``anchor``) scores every date exactly as scoring each date alone would. Scorecards
    with calendar-bound overrides (``starts_on``/``expires_on``) read the real date: they are
    scored date by date."""

    def __init__(self, con: duckdb.DuckDBPyConnection, cards: ScorecardSet) -> None:
        from engine.scoring import assigned_accounts, attributes_read_by

        t0 = time.perf_counter()
        self.cards = cards
        accounts = store.load_accounts(con)
        self.ids = accounts.get_column("account_id").cast(pl.Utf8)
        self.n = accounts.height
        attrs = assigned_accounts(accounts, cards.cards, cards.default)
        self.attributes = attrs.select("scorecard", *attributes_read_by(cards.cards))
        self.since = _days(accounts, "customer_since", np.iinfo(np.int32).min)
        self.until = _days(accounts, "churned_on", np.iinfo(np.int32).max)
        codes = pl.DataFrame({"account_id": self.ids, "_a": np.arange(self.n, dtype=np.int64)})
        overrides = store.load_manual_overrides(con)
        self.overrides = overrides.join(codes, on="account_id") if overrides.height else None
        products = store.load_products(con)
        self.products = products.join(codes, on="account_id") if products.height else None
        windows = sorted(
            {w for c in cards.cards.values() for o in c.overrides for w in changes(o.when)}
        )
        self.series = Series(con, self.ids.to_list(), sorted(cards.metrics), windows)
        self.ages = _ages_read(cards.cards.values())
        self.arr = np.full(self.series.n_units, np.nan)  # product ARR per (account, product)
        if self.products is not None:
            code = {p: i + 1 for i, p in enumerate(self.series.products)}
            known = self.products.filter(pl.col("product").is_in(list(code)))
            slots = known.get_column("product").replace_strict(code, return_dtype=pl.Int64)
            units = known.get_column("_a").to_numpy() * self.series.n_slots + slots.to_numpy()
            self.arr[units] = known.get_column("arr").cast(pl.Float64).fill_null(np.nan).to_numpy()
        self.read_seconds = time.perf_counter() - t0
        self.calendar_bound = any(
            o.starts_on or o.expires_on for c in cards.cards.values() for o in c.overrides
        )

    def batch_size(self) -> int:
        if self.calendar_bound:
            return 1
        return max(1, min(BATCH_MAX_DATES, BATCH_ACCOUNT_DATES // max(1, self.n)))

    def close(self) -> None:
        self.series.close()

    def score(
        self, dates: Sequence[date], first: int, following: Sequence[date] = ()
    ) -> pl.DataFrame:
        """The frame of :func:`engine.scoring.score` for every date (numbered from ``first``
        in the series), with an ``as_of`` column first. ``following``: the dates after these
        (their values are read meanwhile)."""
        from engine.scoring import score_units

        t0 = time.perf_counter()
        parts = []
        upcoming = [*dates, *following]
        for k, d in enumerate(dates, start=first):
            day = day_number(d)
            active = (self.since <= day) & (self.until > day)
            after = upcoming[k - first + 1 :]
            values, acc = self.series.units(d, active, ages=self.ages, following=after)
            slot = values.get_column("_slot").to_numpy()
            keys = pl.DataFrame(
                {
                    "account_id": k * self.n + acc.astype(np.int64),
                    "_arr": self.arr[acc * self.series.n_slots + slot],
                }
            )
            parts.append(pl.concat([keys, self.attributes[acc], values], how="horizontal"))
        # the product's code orders products by name: the tie-break of a `worst` roll-up
        units = pl.concat(parts, rechunk=False).rename({"_slot": "_porder"})
        self.read_seconds += time.perf_counter() - t0
        anchor = max(dates)
        shifts = pl.DataFrame(
            {
                "_k": range(first, first + len(dates)),
                "_shift": [(anchor - d).days for d in dates],
            },
            schema={"_k": pl.Int64, "_shift": pl.Int64},
        )
        if units.height == 0:  # nobody is a customer at these dates: nothing to store
            return pl.DataFrame(
                schema={"as_of": pl.Date, "account_id": pl.Utf8, "scorecard": pl.Utf8}
            )
        scored = score_units(
            units,
            self.cards.cards,
            anchor,
            manual_overrides=self._per_date(self.overrides, shifts),
            product_arr=None,  # the units carry their product's ARR
        )
        index = pl.Series("as_of", dates, dtype=pl.Date)
        number = scored.get_column("account_id") // self.n
        return scored.select(
            index.gather(number - first).alias("as_of"),
            self.ids.gather(scored.get_column("account_id") % self.n).alias("account_id"),
            pl.exclude("account_id"),
        )

    def _per_date(self, frame: pl.DataFrame | None, shifts: pl.DataFrame) -> pl.DataFrame | None:
        """Manual overrides (with account codes ``_a``) once per date, keyed by virtual
        account, their ``created_on`` and ``expires_on`` moved by ``anchor - date``."""
        if frame is None:
            return None
        out = frame.join(shifts, how="cross").with_columns(
            (pl.col("_k") * self.n + pl.col("_a")).alias("account_id"),
            *[pl.col(c) + pl.duration(days=pl.col("_shift")) for c in ("created_on", "expires_on")],
        )
        return out.drop("_a", "_k", "_shift")


def _ages_read(cards: object) -> set[str]:
    """The metrics whose age a score reads: validity of measures, expiry of overrides."""
    out: set[str] = set()
    for card in cards:  # type: ignore[attr-defined]
        out |= {m.metric for _, m in card.measures if m.validity_days is not None}
        for o in card.overrides:
            if o.expires_after_days is not None:
                out |= metrics_read(o.when)
    return out


def _days(accounts: pl.DataFrame, column: str, missing: int) -> np.ndarray:
    """A date column of ``accounts`` as day numbers (``missing`` for null or no column)."""
    if column not in accounts.columns:
        return np.full(accounts.height, missing, dtype=np.int64)
    days = (pl.col(column).cast(pl.Date) - pl.lit(EPOCH)).dt.total_days()
    return accounts.select(days.fill_null(missing)).to_series().to_numpy().astype(np.int64)


def _score(reader: _Reader, as_of: date) -> pl.DataFrame:
    return reader.score(as_of)


def score_at(
    con: duckdb.DuckDBPyConnection,
    as_of: date | None = None,
    *,
    scorecards: ScorecardSet | None = None,
) -> pl.DataFrame:
    """Score the customers of ``as_of`` (default: the latest metric date) from the database,
    without storing anything: the frame of :func:`engine.scoring.score`."""
    cards = scorecards or scorecard_set(con)
    as_of = as_of or _latest_metric_date(con)
    return _score(_Reader(con, cards), as_of)


def _latest_metric_date(con: duckdb.DuckDBPyConnection) -> date:
    _, last = store.metric_date_range(con)
    if last is None:
        raise InputError("the database has no metric values: import some or run the demo")
    return last


_FIXED = [
    "as_of",
    "scorecard_version",
    "account_id",
    "scorecard_id",
    "score",
    "raw_score",
    "grade",
    "outcomes_score",
    "experience_score",
    "incomplete",
    "missing",
    "stale",
    "overrides",
]


def _write(con: duckdb.DuckDBPyConnection, scores: pl.DataFrame, cards: ScorecardSet) -> int:
    """Store a :func:`engine.scoring.score` frame with an ``as_of`` column (one insert per
    scorecard: each has its own groups and measures). Inside the caller's transaction."""
    total = 0
    parts = scores.partition_by("scorecard", as_dict=True)
    for sid, card in cards.cards.items():
        part = parts.get((sid,))
        if part is None or part.is_empty():
            continue
        groups = [g.id for g in card.groups]
        measures = [m.id for _, m in card.measures]
        rows = part.select(
            pl.col("as_of").cast(pl.Date),
            pl.lit(cards.versions[sid], dtype=pl.Int32).alias("scorecard_version"),
            "account_id",
            pl.col("scorecard").alias("scorecard_id"),
            *[c for c in _FIXED[4:]],
            *[pl.col(g).alias(f"g{i}") for i, g in enumerate(groups)],
            *[pl.col(m).alias(f"m{i}") for i, m in enumerate(measures)],
        )
        total += store.write_history(con, rows, group_ids=groups, measure_ids=measures)
    return total


@dataclass(frozen=True)
class SnapshotResult:
    as_of: date
    versions: dict[str, int]
    rows: int
    grades: dict[str, int]
    seconds: float


def snapshot(
    con: duckdb.DuckDBPyConnection,
    as_of: date | None = None,
    *,
    scorecards: ScorecardSet | None = None,
) -> SnapshotResult:
    """Score ``as_of`` (default: the latest metric date) and store it, replacing a snapshot of
    the same date and versions (one transaction)."""
    t0 = time.perf_counter()
    cards = scorecards or scorecard_set(con)
    as_of = as_of or _latest_metric_date(con)
    scores = _score(_Reader(con, cards), as_of)
    with store.transaction(con):
        store.delete_snapshot(con, as_of, cards.version_numbers)
        written = _write(con, scores.with_columns(pl.lit(as_of).alias("as_of")), cards)
    grades = dict(scores.group_by("grade").len().iter_rows())
    return SnapshotResult(
        as_of,
        cards.versions,
        written,
        {str(k): int(v) for k, v in grades.items()},
        time.perf_counter() - t0,
    )


@dataclass(frozen=True)
class BackfillResult:
    """``seconds`` in all; ``seconds_read`` gathering the latest values of each date (and
    waiting for their rows), ``seconds_write`` storing rows, in a thread of its own while the
    next dates are scored (so the parts may add up to more than ``seconds``)."""

    dates: list[date]
    versions: dict[str, int]
    rows: int
    seconds: float
    seconds_read: float = 0.0
    seconds_write: float = 0.0


def weekly_dates(
    end: date, *, start: date | None = None, weeks: int = DEFAULT_WEEKS, every_days: int = 7
) -> list[date]:
    """Dates every ``every_days`` ending on ``end``: back to ``start`` (inclusive, when given)
    or ``weeks`` dates."""
    out: list[date] = []
    d = end
    while (start is None and len(out) < weeks) or (start is not None and d >= start):
        out.append(d)
        d -= timedelta(days=every_days)
    return sorted(out)


def backfill(
    con: duckdb.DuckDBPyConnection,
    *,
    scorecard: int | str | Path | None = None,
    scorecards: ScorecardSet | None = None,
    start: date | None = None,
    end: date | None = None,
    weeks: int = DEFAULT_WEEKS,
    every_days: int = 7,
    progress: Progress | None = None,
) -> BackfillResult:
    """Recompute the history under a scorecard set (the active versions, with ``scorecard``
    — a version number or a YAML file — replacing its id) at dates every ``every_days`` from
    ``start`` to ``end`` (default: the latest metric date, ``weeks`` dates back, never before
    the first metric value). All dates are stored in one transaction; ``progress(i, n, date)``
    is called for each date once it is scored (dates are scored in batches of up to 13)."""
    t0 = time.perf_counter()
    cards = scorecards or scorecard_set(con, scorecard)
    first, last = store.metric_date_range(con)
    if last is None or first is None:
        raise InputError("the database has no metric values: import some or run the demo")
    end = end or last
    if start is None:
        dates = [d for d in weekly_dates(end, weeks=weeks, every_days=every_days) if d >= first]
    else:
        if start > end:
            raise InputError(f"--from {start} is after --to {end}")
        dates = weekly_dates(end, start=start, every_days=every_days)
    if not dates:
        raise InputError(f"no date to backfill between {start} and {end}")
    written: list[tuple[int, float]] = []

    def write(scored: pl.DataFrame) -> None:
        tw = time.perf_counter()
        rows = _write(con, scored, cards)
        written.append((rows, time.perf_counter() - tw))

    # A batch is stored in a writing thread while the next one is scored; the transaction
    # ends (commit, or rollback on any error) only after the last write has finished.
    with (
        store.transaction(con),
        contextlib.closing(_SeriesScorer(con, cards)) as reader,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="vitals-write") as writer,
    ):
        store.delete_snapshot(con, dates, cards.version_numbers)
        size = reader.batch_size()
        done = 0
        pending: Future[None] | None = None
        for b in range(0, len(dates), size):
            batch = dates[b : b + size]
            scored = reader.score(batch, b, dates[b + size : b + 2 * size])
            if pending is not None:
                pending.result()
            pending = writer.submit(write, scored)
            if b == 0:
                pending.result()
                store.write_pause("backfill")
            for d in batch:
                done += 1
                if progress:
                    progress(done, len(dates), d)
        if pending is not None:
            pending.result()
    total = sum(rows for rows, _ in written)
    write_seconds = sum(seconds for _, seconds in written)
    return BackfillResult(
        dates,
        cards.versions,
        total,
        time.perf_counter() - t0,
        reader.read_seconds,
        write_seconds,
    )


# --------------------------------------------------------------------------- trend queries


def _versions(con: duckdb.DuckDBPyConnection, versions: Sequence[int] | None) -> list[int]:
    if versions is not None:
        return list(versions)
    return sorted(sv.version for sv in store.active_scorecard_versions(con).values())


def _on_or_before(dates: Sequence[date], day: date) -> date | None:
    earlier = [d for d in dates if d <= day]
    return earlier[-1] if earlier else None


def _arrow(delta: pl.Expr, flat_within: float) -> pl.Expr:
    return (
        pl.when(delta.is_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(delta >= flat_within)
        .then(pl.lit("up"))
        .when(delta <= -flat_within)
        .then(pl.lit("down"))
        .otherwise(pl.lit("flat"))
    )


def _group_ids(con: duckdb.DuckDBPyConnection, versions: Sequence[int]) -> list[str]:
    out: list[str] = []
    for v in versions:
        card = parse_scorecard_yaml(store.get_scorecard_version(con, v).yaml)
        out += [g.id for g in card.groups if g.id not in out]
    return out


def trends(
    con: duckdb.DuckDBPyConnection,
    as_of: date | None = None,
    *,
    versions: Sequence[int] | None = None,
    flat_within: float = 2.0,
    windows: Mapping[str, int] | None = None,
) -> pl.DataFrame:
    """Per account scored at ``as_of`` (default: the latest snapshot): ``score``, ``grade``,
    the DEAR group scores, and for each window (default ``{"4w": 28, "13w": 91}`` days)
    ``delta_<w>`` (points) and ``arrow_<w>`` (up / down / flat, null without an earlier score),
    plus ``name``, ``arr``, ``segment``, ``csm`` from the accounts."""
    vs = _versions(con, versions)
    dates = store.snapshot_dates(con, vs)
    if not dates:
        return pl.DataFrame()
    as_of = as_of or dates[-1]
    day = _on_or_before(dates, as_of)
    if day is None:
        return pl.DataFrame()
    groups = _group_ids(con, vs)
    now = store.load_scores(con, dates=[day], versions=vs, group_ids=groups)
    out = now.select("as_of", "account_id", "scorecard_id", "score", "grade", *groups)
    for label, days in (windows or {"4w": 28, "13w": 91}).items():
        then_day = _on_or_before(dates, day - timedelta(days=days))
        if then_day is None:
            out = out.with_columns(pl.lit(None, dtype=pl.Float64).alias(f"delta_{label}"))
        else:
            then = store.load_scores(con, dates=[then_day], versions=vs).select(
                "account_id", pl.col("score").alias("_then")
            )
            out = (
                out.join(then, on="account_id", how="left")
                .with_columns((pl.col("score") - pl.col("_then")).alias(f"delta_{label}"))
                .drop("_then")
            )
        out = out.with_columns(
            _arrow(pl.col(f"delta_{label}"), flat_within).alias(f"arrow_{label}")
        )
    return _with_account_fields(con, out)


def _with_account_fields(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> pl.DataFrame:
    acc = store.load_accounts(con)
    fields = [
        c
        for c in ("name", "arr", "segment", "region", "csm", "lifecycle_stage")
        if c in acc.columns
    ]
    return frame.join(acc.select("account_id", *fields), on="account_id", how="left")


def _pair(
    con: duckdb.DuckDBPyConnection, start: date, end: date, versions: Sequence[int] | None
) -> pl.DataFrame:
    vs = _versions(con, versions)
    dates = store.snapshot_dates(con, vs)
    d0 = _on_or_before(dates, start)
    d1 = _on_or_before(dates, end)
    if d1 is None:
        raise InputError(f"no stored scores on or before {end}: run score or backfill first")
    cols = ["account_id", "score", "grade"]
    after = store.load_scores(con, dates=[d1], versions=vs).select(cols)
    if d0 is None:
        before = pl.DataFrame(
            schema={"account_id": pl.String, "score": pl.Float64, "grade": pl.String}
        )
    else:
        before = store.load_scores(con, dates=[d0], versions=vs).select(cols)
    pair = before.join(after, on="account_id", how="full", suffix="_after", coalesce=True)
    return pair.rename({"score": "score_before", "grade": "grade_before"}).with_columns(
        pl.lit(d0, dtype=pl.Date).alias("date_before"), pl.lit(d1).alias("date_after")
    )


def movers(
    con: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    *,
    n: int = 20,
    versions: Sequence[int] | None = None,
) -> pl.DataFrame:
    """The ``n`` largest rises and ``n`` largest drops of the score between the snapshots on
    or before ``start`` and ``end``, and every account whose grade changed; columns
    ``account_id``, ``score_before``, ``score_after``, ``delta``, ``grade_before``,
    ``grade_after``, ``grade_changed``, ``kind`` (rise / drop / grade_change), account fields."""
    pair = _pair(con, start, end, versions).with_columns(
        (pl.col("score_after") - pl.col("score_before")).alias("delta"),
        (
            pl.col("grade_before").is_not_null()
            & pl.col("grade_after").is_not_null()
            & (pl.col("grade_before") != pl.col("grade_after"))
        ).alias("grade_changed"),
    )
    scored = pair.filter(pl.col("delta").is_not_null())
    rises = scored.filter(pl.col("delta") > 0).sort("delta", descending=True).head(n)
    drops = scored.filter(pl.col("delta") < 0).sort("delta").head(n)
    changed = (
        pair.filter(pl.col("grade_changed"))
        .join(pl.concat([rises, drops]).select("account_id"), on="account_id", how="anti")
        .sort("delta")
    )
    out = pl.concat(
        [
            rises.with_columns(pl.lit("rise").alias("kind")),
            drops.with_columns(pl.lit("drop").alias("kind")),
            changed.with_columns(pl.lit("grade_change").alias("kind")),
        ],
        how="vertical_relaxed",
    ).select(
        "account_id",
        "score_before",
        "score_after",
        "delta",
        "grade_before",
        "grade_after",
        "grade_changed",
        "kind",
        "date_before",
        "date_after",
    )
    return _with_account_fields(con, out)


def transitions(
    con: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    *,
    versions: Sequence[int] | None = None,
) -> pl.DataFrame:
    """Accounts and ARR per (grade_before, grade_after) between the snapshots on or before
    ``start`` and ``end``; a null grade is no score (not yet or no longer a customer)."""
    pair = _pair(con, start, end, versions)
    acc = store.load_accounts(con).select("account_id", "arr")
    return (
        pair.join(acc, on="account_id", how="left")
        .group_by("grade_before", "grade_after")
        .agg(pl.len().alias("accounts"), pl.col("arr").sum().alias("arr"))
        .sort("grade_before", "grade_after", nulls_last=True)
    )


def grade_mix(
    con: duckdb.DuckDBPyConnection,
    *,
    start: date | None = None,
    end: date | None = None,
    versions: Sequence[int] | None = None,
) -> pl.DataFrame:
    """Per stored date and grade: ``accounts``, ``arr``, ``share`` (of scored accounts) and
    ``mean_score``."""
    vs = _versions(con, versions)
    counts = store.grade_counts(con, versions=vs, start=start, end=end)
    if counts.is_empty():
        return pl.DataFrame()
    return counts.with_columns(
        (pl.col("accounts") / pl.col("accounts").sum().over("as_of")).alias("share")
    )


def account_history(
    con: duckdb.DuckDBPyConnection, account_id: str, *, versions: Sequence[int] | None = None
) -> pl.DataFrame:
    """One account's stored scores over time: as_of, score, raw_score, grade, group scores,
    measure scores, missing, stale, overrides."""
    vs = _versions(con, versions)
    cards = [parse_scorecard_yaml(store.get_scorecard_version(con, v).yaml) for v in vs]
    groups = _unique(g.id for c in cards for g in c.groups)
    measures = _unique(m.id for c in cards for _, m in c.measures)
    return store.load_scores(
        con, accounts=[account_id], versions=vs, group_ids=groups, measure_ids=measures
    )
