"""Importing a user's data (CSV or Parquet) into the store: validate everything, then write
everything in one transaction, or nothing.

Files follow the data contract (``docs/contracts.md``): ``accounts``, ``metric_values``,
``renewals``, ``activities``, ``products`` (ARR per account and product), and raw source tables
(a folder whose files are named after the tables of :data:`engine.store.SOURCE_TABLES`, such as
``usage_weekly.csv``), from which the SQL metric definitions derive metric values.

Validation (:func:`validate`) reads every file and reports **every** problem at once, each
naming the file, the column, the rows (CSV line numbers count the header as line 1; Parquet
rows start at 1) and the rule: unknown file extension, empty file, missing required column,
wrong type, unparsable date, date out of range (before 1990 or in the future), duplicate key,
negative ARR, unknown account (not in the accounts file nor in the database), metric value out
of the metric's range or an unknown level (ranges and levels from ``data/metrics.yaml``),
unknown source table. Reading and checking is :mod:`engine.io`'s job; this module adds the
rules that span files or need the metric definitions.

Writing (:func:`import_files`) upserts on the natural keys (``accounts``: account_id;
``metric_values``: account_id, metric, product, as_of; ``renewals``: account_id, renewal_date,
product; ``activities``: the whole row; ``products``: account_id, product), so importing the same
file twice changes nothing. Source tables are replaced as they are. When sources are given,
metric values are derived for the requested as-of dates in the same transaction. Account
attributes beyond the contract's columns are kept in ``accounts.attributes`` (JSON).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

from engine import io, store
from engine.metrics import MetricDefinition, load_definitions
from engine.problems import InputError, Problem

EARLIEST_DATE = date(1990, 1, 1)
_SHOW = 5

METRIC_KEY = ("account_id", "metric", "product", "as_of")
RENEWAL_KEY = ("account_id", "renewal_date", "product")


@dataclass
class ImportResult:
    """Rows written per table, metric rows derived per metric, and the derived dates."""

    rows: dict[str, int] = field(default_factory=dict)
    derived: dict[str, int] = field(default_factory=dict)
    as_of_dates: list[date] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Validated:
    """Checked frames, ready to write (``sources`` by table name)."""

    accounts: pl.DataFrame | None = None
    metric_values: pl.DataFrame | None = None
    renewals: pl.DataFrame | None = None
    activities: pl.DataFrame | None = None
    products: pl.DataFrame | None = None
    sources: dict[str, pl.DataFrame] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


def _where(values: pl.Series, bad: pl.Series, csv: bool, *, show_values: bool = True) -> str:
    """``line 3 ('x'), line 9 ('y') and 4 more`` (CSV) or ``row 2 (...)`` (Parquet)."""
    idx = bad.fill_null(False).arg_true()
    shown = []
    for i in idx.head(_SHOW).to_list():
        label = f"line {i + 2}" if csv else f"row {i + 1}"
        if show_values:
            label += f" ({values[i]!r})"
        shown.append(label)
    more = f" and {idx.len() - len(shown):,} more" if idx.len() > len(shown) else ""
    return ", ".join(shown) + more


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


def _read(path: Path, reader: object, problems: list[Problem]) -> pl.DataFrame | None:
    try:
        return reader(path)  # type: ignore[operator]
    except InputError as exc:
        problems.extend(exc.problems)
        return None


def _date_range_problems(
    frame: pl.DataFrame, column: str, source: str, csv: bool, *, latest: date
) -> list[Problem]:
    s = frame.get_column(column)
    bad = (s < EARLIEST_DATE) | (s > latest)
    if not bad.fill_null(False).any():
        return []
    return [
        Problem(
            f"{source}: column {column!r}",
            f"date out of range (must be between {EARLIEST_DATE} and {latest}), in "
            f"{_where(s.cast(pl.String), bad, csv)}",
        )
    ]


def _duplicates(frame: pl.DataFrame, key: Sequence[str], source: str, csv: bool) -> list[Problem]:
    dup = frame.select(pl.struct(list(key)).is_duplicated()).to_series()
    if not dup.any():
        return []
    label = " + ".join(key)
    return [
        Problem(
            f"{source}: column {label!r}",
            f"duplicate key: each {label} may appear once, repeated in "
            f"{_where(frame.get_column(key[0]), dup, csv)}",
        )
    ]


def _unknown_accounts(
    frame: pl.DataFrame, known: pl.Series, source: str, csv: bool
) -> list[Problem]:
    ids = frame.get_column("account_id")
    bad = ~ids.is_in(known.implode())
    if not bad.any():
        return []
    return [
        Problem(
            f"{source}: column 'account_id'",
            "unknown account (not in the accounts file nor in the database), in "
            f"{_where(ids, bad, csv)}",
        )
    ]


def _metric_problems(
    frame: pl.DataFrame, defs: Mapping[str, MetricDefinition], source: str, csv: bool
) -> list[Problem]:
    out: list[Problem] = []
    metric = frame.get_column("metric")
    value = frame.get_column("value")
    level = frame.get_column("level")
    for d in defs.values():
        rows = metric == d.id
        if not rows.any():
            continue
        if d.levels:
            allowed = [x.lower() for x in d.levels]
            bad = (
                rows
                & level.is_not_null()
                & ~level.str.to_lowercase().str.strip_chars().is_in(allowed)
            )
            if bad.any():
                out.append(
                    Problem(
                        f"{source}: column 'value'",
                        f"unknown level for metric {d.id} (one of {', '.join(d.levels)}), in "
                        f"{_where(level, bad, csv)}",
                    )
                )
            continue
        text = rows & level.is_not_null() & value.is_null()
        if text.any():
            out.append(
                Problem(
                    f"{source}: column 'value'",
                    f"wrong type: metric {d.id} takes numbers, not text, in "
                    f"{_where(level, text, csv)}",
                )
            )
        if d.range is not None:
            lo, hi = d.range
            bad = rows & value.is_not_null()
            outside = pl.Series([False] * frame.height)
            if lo is not None:
                outside = outside | (value < lo).fill_null(False)
            if hi is not None:
                outside = outside | (value > hi).fill_null(False)
            bad = bad & outside
            if bad.any():
                shown = f"[{'' if lo is None else lo}, {'' if hi is None else hi}]"
                out.append(
                    Problem(
                        f"{source}: column 'value'",
                        f"value out of range {shown} for metric {d.id}, in "
                        f"{_where(value, bad, csv)}",
                    )
                )
    return out


# --------------------------------------------------------------------------- sources


def _source_files(folder: Path, problems: list[Problem]) -> dict[str, Path]:
    if not folder.is_dir():
        problems.append(Problem(str(folder), "sources must be a folder of .csv or .parquet files"))
        return {}
    out: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if f.name.startswith(".") or f.is_dir():
            continue
        try:
            io.check_extension(f)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        table = f.stem
        if table not in store.SOURCE_TABLES:
            known = ", ".join(store.SOURCE_TABLES)
            problems.append(Problem(str(f), f"unknown source table {table!r} (known: {known})"))
            continue
        if table in out:
            problems.append(Problem(str(f), f"source table {table!r} is given twice"))
            continue
        out[table] = f
    if not out and not problems:
        problems.append(Problem(str(folder), "no source table file in the folder"))
    return out


def _coerce_source(
    raw: pl.DataFrame, table: str, source: str, csv: bool
) -> tuple[pl.DataFrame, list[Problem]]:
    schema = store.SOURCE_TABLES[table]
    missing = [c for c in schema if c not in raw.columns]
    if missing:
        cols = ", ".join(repr(c) for c in raw.columns) or "none"
        return raw, [
            Problem(
                source,
                f"missing required column(s) {', '.join(map(repr, missing))}"
                f" for {table}; the file has {cols}",
            )
        ]
    if raw.height == 0:
        return raw, [Problem(source, f"no data rows: {table} needs at least one row")]
    problems: list[Problem] = []
    out: dict[str, pl.Series] = {}
    for col, sql_type in schema.items():
        s = raw.get_column(col)
        here = f"{source}: column {col!r}"
        text = s.cast(pl.String).str.strip_chars() if s.dtype == pl.String else None
        filled = (text.is_not_null() & (text != "")) if text is not None else s.is_not_null()
        if sql_type == "VARCHAR":
            out[col] = text if text is not None else s.cast(pl.String)
        elif sql_type == "DATE":
            if s.dtype == pl.Date:
                out[col] = s
            elif isinstance(s.dtype, pl.Datetime):
                out[col] = s.dt.date()
            elif text is not None:
                parsed = text.str.to_date("%Y-%m-%d", strict=False)
                bad = filled & parsed.is_null()
                if bad.any():
                    problems.append(
                        Problem(here, f"not a date (use YYYY-MM-DD) in {_where(s, bad, csv)}")
                    )
                out[col] = parsed
            else:
                problems.append(
                    Problem(here, f"wrong type: expected dates, the column holds {s.dtype}")
                )
        elif sql_type == "INTEGER":
            if s.dtype.is_integer():
                out[col] = s.cast(pl.Int64)
            else:
                parsed = (text if text is not None else s).cast(pl.Float64, strict=False)
                bad = filled & (parsed.is_null() | (parsed.round(0) != parsed).fill_null(True))
                if bad.any():
                    problems.append(
                        Problem(here, f"wrong type: not a whole number, in {_where(s, bad, csv)}")
                    )
                out[col] = parsed.cast(pl.Int64, strict=False)
        elif sql_type == "BOOLEAN":
            if s.dtype == pl.Boolean:
                out[col] = s
            else:
                low = (text if text is not None else s.cast(pl.String)).str.to_lowercase()
                truth = {
                    "true": True,
                    "1": True,
                    "yes": True,
                    "false": False,
                    "0": False,
                    "no": False,
                }
                parsed = low.replace_strict(truth, default=None, return_dtype=pl.Boolean)
                bad = filled & parsed.is_null()
                if bad.any():
                    problems.append(
                        Problem(here, f"wrong type: expected true/false, in {_where(s, bad, csv)}")
                    )
                out[col] = parsed
    return pl.DataFrame(out), problems


# --------------------------------------------------------------------------- validate


def validate(
    con: duckdb.DuckDBPyConnection | None,
    *,
    accounts: str | Path | None = None,
    metrics: str | Path | None = None,
    renewals: str | Path | None = None,
    activities: str | Path | None = None,
    products: str | Path | None = None,
    sources: str | Path | None = None,
    definitions: Mapping[str, MetricDefinition] | None = None,
    today: date | None = None,
) -> Validated:
    """Read and check every given file; raise :class:`InputError` with every problem found.
    ``con`` (optional) supplies the accounts already stored."""
    problems: list[Problem] = []
    defs = definitions if definitions is not None else load_definitions()
    latest = (today or date.today()) + timedelta(days=1)
    out = Validated()
    if not any(x is not None for x in (accounts, metrics, renewals, activities, products, sources)):
        raise InputError(
            "nothing to import: give --accounts, --metrics, --renewals, "
            "--activities, --products or --sources"
        )

    if accounts is not None:
        p = Path(accounts)
        frame = _read(p, io.read_accounts, problems)
        if frame is not None:
            for col in ("customer_since", "churned_on"):
                if col in frame.columns and frame.schema[col] != pl.Date:
                    s = frame.get_column(col).cast(pl.String)
                    parsed = s.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
                    bad = s.is_not_null() & (s.str.strip_chars() != "") & parsed.is_null()
                    if bad.any():
                        problems.append(
                            Problem(
                                f"{p}: column {col!r}",
                                f"not a date (use YYYY-MM-DD) in {_where(s, bad, _is_csv(p))}",
                            )
                        )
                    frame = frame.with_columns(parsed.alias(col))
            for col in ("renewal_date", "customer_since", "churned_on"):
                if col in frame.columns and frame.schema[col] == pl.Date:
                    problems += _date_range_problems(
                        frame, col, str(p), _is_csv(p), latest=latest + timedelta(days=3660)
                    )
            out.accounts = frame

    known = (
        out.accounts.get_column("account_id")
        if out.accounts is not None
        else pl.Series([], dtype=pl.String)
    )
    if con is not None:
        known = pl.concat([known, store.account_ids(con)])

    if metrics is not None:
        p = Path(metrics)
        frame = _read(p, io.read_metric_values, problems)
        if frame is not None:
            csv = _is_csv(p)
            problems += _date_range_problems(frame, "as_of", str(p), csv, latest=latest)
            problems += _duplicates(frame, METRIC_KEY, str(p), csv)
            problems += _metric_problems(frame, defs, str(p), csv)
            problems += _unknown_accounts(frame, known, str(p), csv)
            out.metric_values = frame
    if renewals is not None:
        p = Path(renewals)
        frame = _read(p, io.read_renewals, problems)
        if frame is not None:
            csv = _is_csv(p)
            problems += _date_range_problems(
                frame, "renewal_date", str(p), csv, latest=latest + timedelta(days=366)
            )
            problems += _duplicates(frame, RENEWAL_KEY, str(p), csv)
            problems += _unknown_accounts(frame, known, str(p), csv)
            out.renewals = frame
    if activities is not None:
        p = Path(activities)
        frame = _read(p, io.read_activities, problems)
        if frame is not None:
            csv = _is_csv(p)
            problems += _date_range_problems(frame, "date", str(p), csv, latest=latest)
            problems += _unknown_accounts(frame, known, str(p), csv)
            out.activities = frame.unique(maintain_order=True)  # a repeated row is one activity
    if products is not None:
        p = Path(products)
        frame = _read(p, io.read_product_arr, problems)
        if frame is not None:
            problems += _unknown_accounts(frame, known, str(p), _is_csv(p))
            out.products = frame
    if sources is not None:
        for table, f in _source_files(Path(sources), problems).items():
            try:
                raw = io.read_table(f)
            except InputError as exc:
                problems.extend(exc.problems)
                continue
            frame, found = _coerce_source(raw, table, str(f), _is_csv(f))
            problems += found
            if not found:
                out.sources[table] = frame
    if problems:
        raise InputError(problems)
    return out


# --------------------------------------------------------------------------- write


def _accounts_row_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Contract columns as they are, extra attributes packed into ``attributes`` (JSON)."""
    contract = set(store.CONTRACT_TABLES["accounts"]) - {"attributes"}
    extras = [c for c in frame.columns if c not in contract]
    base = frame.select([c for c in frame.columns if c in contract])
    if extras:
        base = base.with_columns(
            frame.select(pl.struct(extras).struct.json_encode().alias("attributes"))
        )
    return base


def write(
    con: duckdb.DuckDBPyConnection,
    data: Validated,
    *,
    derive_dates: Sequence[date] = (),
    author: str = "import",
    in_transaction: bool = False,
) -> ImportResult:
    """Write validated frames (upserts, source replacement, metric derivation) in one
    transaction (the caller's with ``in_transaction=True``)."""
    from engine import metrics as metric_defs

    result = ImportResult()

    def run() -> None:
        steps: list[tuple[str, pl.DataFrame | None]] = [
            ("accounts", _accounts_row_frame(data.accounts) if data.accounts is not None else None),
            ("products", data.products),
            (
                "metric_values",
                data.metric_values.with_columns(
                    pl.col("source").fill_null("import")
                    if "source" in data.metric_values.columns
                    else pl.lit("import").alias("source")
                )
                if data.metric_values is not None
                else None,
            ),
            ("renewals", data.renewals),
            ("activities", data.activities),
        ]
        for table, frame in steps:
            if frame is None:
                continue
            result.rows[table] = store.upsert(con, table, frame)
            store.write_pause(table)
        for table, frame in data.sources.items():
            result.rows[table] = store.replace(con, table, frame)
            store.write_pause(table)
        if derive_dates:
            result.derived = metric_defs.derive_metrics(con, derive_dates, in_transaction=True)
            result.as_of_dates = sorted(derive_dates)
        store.audit(
            con,
            author,
            "import",
            None,
            {"rows": result.rows, "derived": sum(result.derived.values())},
        )

    if in_transaction:
        run()
    else:
        with store.transaction(con):
            run()
    return result


def import_files(
    con: duckdb.DuckDBPyConnection,
    *,
    accounts: str | Path | None = None,
    metrics: str | Path | None = None,
    renewals: str | Path | None = None,
    activities: str | Path | None = None,
    products: str | Path | None = None,
    sources: str | Path | None = None,
    as_of: date | None = None,
    weeks: int = 1,
    author: str = "import",
    today: date | None = None,
) -> ImportResult:
    """Validate every file, then write them all in one transaction (see the module doc).

    With ``sources``, metric values are derived at ``weeks`` weekly as-of dates ending on
    ``as_of`` (default: the latest date found in the source files)."""
    t0 = time.perf_counter()
    data = validate(
        con,
        accounts=accounts,
        metrics=metrics,
        renewals=renewals,
        activities=activities,
        products=products,
        sources=sources,
        today=today,
    )
    dates: list[date] = []
    if data.sources:
        end = as_of or _latest_source_date(data.sources)
        if end is None:
            raise InputError("cannot tell the as-of date of the sources: pass --as-of")
        dates = [end - timedelta(days=7 * i) for i in range(max(1, weeks))]
    result = write(con, data, derive_dates=dates, author=author)
    result.seconds = time.perf_counter() - t0
    return result


# The column that says when a source row happened (due dates and the like can be future).
_SOURCE_CLOCK = {
    "usage_weekly": "week_ending",
    "touchpoints": "date",
    "tickets": "opened_on",
    "surveys": "responded_on",
    "csm_ratings": "rated_on",
    "sponsor_changes": "changed_on",
}


def _latest_source_date(sources: Mapping[str, pl.DataFrame]) -> date | None:
    """The latest event date in the source files: the default as-of date of a source import."""
    latest: date | None = None
    for table, col in _SOURCE_CLOCK.items():
        frame = sources.get(table)
        if frame is None:
            continue
        m = frame.get_column(col).max()
        if isinstance(m, date) and (latest is None or m > latest):
            latest = m
    return latest
