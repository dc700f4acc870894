"""Reading and writing the data-contract tables as CSV or Parquet (chosen by extension).

Every reader returns a Polars frame typed as ``docs/contracts.md`` says, or raises
:class:`~engine.problems.InputError` with every problem found: the file, the column, the first
bad rows (CSV ``line`` numbers count the header as line 1; Parquet ``row`` numbers start at 1)
and the rule broken. Nothing is half-read.

Coercion rules, written down so that they are not accidental:

- CSV cells are read as text and converted here; an empty cell is null. Surrounding blanks are
  stripped from text cells of the contract's columns.
- ``account_id`` and every other text column become Utf8 (a numeric id ``42`` is ``"42"``).
- Dates are ISO ``YYYY-MM-DD``; an ISO date-time (``2024-05-01T09:30``) keeps its date.
- Numbers are Float64; ``NaN`` is treated as an empty cell (null).
- ``metric_values.value``: a cell that is not a number is a categorical or subjective level
  (``"Strong"``); it moves to ``level`` and ``value`` is null there.
- Extra account attributes in a CSV become Int64, Float64, Date or Boolean when every non-empty
  cell parses as that type, and stay text otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import polars as pl

from engine.problems import InputError, Problem

EXTENSIONS = (".csv", ".parquet")
_SHOW_ROWS = 5  # bad rows quoted per problem


class Kind(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    VALUE = "value"  # a number, or a level (text) when it is not one


@dataclass(frozen=True)
class Column:
    """One contract column. ``required``: the column must exist; ``not_null``: every cell must
    be filled; ``non_negative``: numbers must be >= 0; ``choices``: allowed (lower-case) text;
    ``add``: added as a typed null column when absent (the contract promises it)."""

    name: str
    kind: Kind = Kind.TEXT
    required: bool = False
    not_null: bool = False
    non_negative: bool = False
    choices: tuple[str, ...] = ()
    add: bool = False


@dataclass(frozen=True)
class TableSpec:
    """A contract table: its columns, unique key and whether a file may hold no rows."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    allow_empty: bool = False
    infer_extra: bool = False  # type extra CSV columns (account attributes)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


ACCOUNTS = TableSpec(
    "accounts",
    (
        Column("account_id", required=True, not_null=True),
        Column("name", required=True),
        Column("arr", Kind.NUMBER, required=True, non_negative=True),
        Column("segment"),
        Column("lifecycle_stage"),
        Column("region"),
        Column("industry"),
        Column("csm"),
        Column("renewal_date", Kind.DATE),
        Column("parent_account_id"),
    ),
    key=("account_id",),
    infer_extra=True,
)

METRIC_VALUES = TableSpec(
    "metric_values",
    (
        Column("account_id", required=True, not_null=True),
        Column("metric", required=True, not_null=True),
        Column("value", Kind.VALUE, required=True),
        Column("level", add=True),
        Column("as_of", Kind.DATE, required=True, not_null=True),
        Column("product", add=True),
        Column("source"),
        Column("author"),
        Column("comment"),
    ),
)

RENEWALS = TableSpec(
    "renewals",
    (
        Column("account_id", required=True, not_null=True),
        Column("renewal_date", Kind.DATE, required=True, not_null=True),
        Column("arr_before", Kind.NUMBER, required=True, not_null=True, non_negative=True),
        Column("arr_after", Kind.NUMBER, required=True, not_null=True, non_negative=True),
        Column("product", add=True),
    ),
    allow_empty=True,
)

ACTIVITIES = TableSpec(
    "activities",
    (
        Column("account_id", required=True, not_null=True),
        Column("date", Kind.DATE, required=True, not_null=True),
        Column("type", required=True, not_null=True),
        Column("csm", add=True),
    ),
    allow_empty=True,
)

PRODUCT_ARR = TableSpec(
    "product_arr",
    (
        Column("account_id", required=True, not_null=True),
        Column("product", required=True, not_null=True),
        Column("arr", Kind.NUMBER, required=True, not_null=True, non_negative=True),
    ),
    key=("account_id", "product"),
    allow_empty=True,
)

MANUAL_OVERRIDES = TableSpec(
    "manual_overrides",
    (
        Column("account_id", required=True, not_null=True),
        Column("action", required=True, not_null=True, choices=("grade", "cap", "set")),
        Column("value", required=True, not_null=True),
        Column("reason", add=True),
        Column("author", add=True),
        Column("created_on", Kind.DATE, required=True, not_null=True),
        Column("expires_on", Kind.DATE, add=True),
    ),
    allow_empty=True,
)

_DTYPES: dict[Kind, pl.DataType] = {
    Kind.TEXT: pl.String(),
    Kind.NUMBER: pl.Float64(),
    Kind.DATE: pl.Date(),
    Kind.VALUE: pl.Float64(),
}


# --------------------------------------------------------------------------- raw files


def read_table(path: str | Path) -> pl.DataFrame:
    """Read a ``.csv`` or ``.parquet`` file as it is (CSV cells as text, empty cells null).

    Raises :class:`InputError` naming the file for a missing file, an unknown extension, an
    empty file and a file that cannot be parsed.
    """
    p = Path(path)
    ext = _extension(p)
    if not p.exists():
        raise InputError([Problem(str(p), "file not found")])
    if p.is_dir():
        raise InputError([Problem(str(p), "is a folder, not a .csv or .parquet file")])
    try:
        if p.stat().st_size == 0:
            raise InputError([Problem(str(p), "the file is empty")])
        if ext == ".csv":
            return pl.read_csv(p, infer_schema=False)
        return pl.read_parquet(p)
    except InputError:
        raise
    except pl.exceptions.NoDataError:
        raise InputError([Problem(str(p), "the file is empty")]) from None
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        kind = "CSV" if ext == ".csv" else "Parquet"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError([Problem(str(p), f"cannot read as {kind}: {first}")]) from None


def write_table(frame: pl.DataFrame, path: str | Path) -> None:
    """Write ``frame`` as CSV or Parquet by the extension of ``path``, atomically (a temporary
    file in the same folder is renamed at the end, so a failed write leaves no half file).

    In CSV, list columns (``missing``, ``stale``, ``overrides``) become ``;``-joined text; an
    empty list is an empty cell and a null list too.
    """
    p = Path(path)
    ext = _extension(p)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    try:
        if ext == ".csv":
            flat = frame.with_columns(
                pl.col(name).cast(pl.List(pl.String)).list.join(";")
                for name, dtype in frame.schema.items()
                if isinstance(dtype, pl.List | pl.Array)
            )
            flat.write_csv(tmp)
        else:
            # snappy: a fifth less CPU than zstd level 1 for a fifth more bytes (score
            # columns are floats that no fast codec shrinks much); every Parquet reader has it
            frame.write_parquet(tmp, compression="snappy")
        os.replace(tmp, p)
    except OSError as exc:
        raise InputError([Problem(str(p), f"cannot write: {exc.strerror or exc}")]) from None
    finally:
        tmp.unlink(missing_ok=True)


def check_extension(path: str | Path) -> str:
    """The lower-case extension of ``path`` (``.csv`` or ``.parquet``); :class:`InputError`
    for any other, so a command can refuse an output path before doing any work."""
    return _extension(Path(path))


def _extension(p: Path) -> str:
    ext = p.suffix.lower()
    if ext not in EXTENSIONS:
        shown = f"{p.suffix!r}" if p.suffix else "none"
        raise InputError([Problem(str(p), f"unknown file extension {shown}: use .csv or .parquet")])
    return ext


# --------------------------------------------------------------------------- contract tables


def read_accounts(path: str | Path) -> pl.DataFrame:
    """The accounts table: ``account_id`` (unique, Utf8), ``name``, ``arr`` (Float64, >= 0)
    and optional attributes (see the module docstring for the coercion rules)."""
    return read_contract_table(path, ACCOUNTS)


def read_metric_values(path: str | Path) -> pl.DataFrame:
    """The long metric_values table, with ``level`` and ``product`` always present (null when
    absent); a non-numeric ``value`` moves to ``level``."""
    return read_contract_table(path, METRIC_VALUES)


def read_renewals(path: str | Path) -> pl.DataFrame:
    return read_contract_table(path, RENEWALS)


def read_activities(path: str | Path) -> pl.DataFrame:
    return read_contract_table(path, ACTIVITIES)


def read_product_arr(path: str | Path) -> pl.DataFrame:
    """ARR per (account, product), for the ``arr_weighted`` roll-up."""
    return read_contract_table(path, PRODUCT_ARR)


def read_manual_overrides(path: str | Path) -> pl.DataFrame:
    """Manual overrides: ``action`` is one of grade, cap, set (lower-cased here);
    ``created_on`` is required, ``expires_on`` (exclusive) may be empty."""
    frame = read_contract_table(path, MANUAL_OVERRIDES)
    return frame.with_columns(pl.col("action").str.to_lowercase())


def read_contract_table(path: str | Path, spec: TableSpec) -> pl.DataFrame:
    """Read ``path`` and check and coerce it to ``spec``; raise every problem at once."""
    p = Path(path)
    raw = read_table(p)
    return coerce_table(raw, spec, source=str(p), csv=p.suffix.lower() == ".csv")


def coerce_table(
    raw: pl.DataFrame, spec: TableSpec, *, source: str, csv: bool = False
) -> pl.DataFrame:
    """Check and coerce an in-memory frame to ``spec``. ``source`` names it in problems;
    ``csv`` says its cells are text and rows are reported as file lines."""
    problems: list[Problem] = []
    missing = [c.name for c in spec.columns if c.required and c.name not in raw.columns]
    if missing:
        problems.append(Problem(source, _missing_columns_message(missing, raw.columns, spec)))
        raise InputError(problems)
    if raw.height == 0 and not spec.allow_empty:
        raise InputError([Problem(source, f"no data rows: {spec.name} needs at least one row")])

    where = _RowNamer(csv)
    out: dict[str, pl.Series] = {}
    for name in raw.columns:
        col = spec.column(name)
        series = raw.get_column(name)
        if col is None:
            out[name] = _infer_text_column(series) if (csv and spec.infer_extra) else series
            continue
        if col.kind is Kind.VALUE:
            value, level = _value_and_level(series, raw, csv)
            out[name] = value
            if level is not None:
                out["level"] = level
            continue
        if col.name == "level" and "level" in out:
            continue  # already merged with the text values of `value`
        converted, problem = _convert(series, col.kind, csv, where)
        if problem:
            problems.append(Problem(f"{source}: column {name!r}", problem))
        out[name] = converted
    frame = pl.DataFrame(list(out.values()))
    if problems:  # type errors first: the rules below would only repeat them
        raise InputError(problems)

    for col in spec.columns:
        if col.name not in frame.columns:
            continue
        problems.extend(_rule_problems(frame, col, source, where))
    if spec.key:
        problems.extend(_duplicate_problems(frame, spec.key, source, where))
    if problems:
        raise InputError(problems)

    adds = [
        pl.lit(None, dtype=_DTYPES[c.kind]).alias(c.name)
        for c in spec.columns
        if c.add and c.name not in frame.columns
    ]
    if adds:
        frame = frame.with_columns(adds)
    if "product" in raw.columns and spec.column("product") is not None:
        frame = frame.with_columns(_empty_to_null("product"))
    return frame


# --------------------------------------------------------------------------- conversions


class _RowNamer:
    """Names rows as a user sees them: CSV file lines (header = line 1) or Parquet rows."""

    def __init__(self, csv: bool) -> None:
        self.csv = csv

    def describe(self, series: pl.Series, bad: pl.Series, *, show_values: bool = True) -> str:
        idx = bad.arg_true()
        count = idx.len()
        shown = []
        for i in idx.head(_SHOW_ROWS).to_list():
            label = f"line {i + 2}" if self.csv else f"row {i + 1}"
            if show_values:
                label += f" ({series[i]!r})"
            shown.append(label)
        more = f" and {count - len(shown):,} more" if count > len(shown) else ""
        return f"{', '.join(shown)}{more}"


def _convert(series: pl.Series, kind: Kind, csv: bool, where: _RowNamer) -> tuple[pl.Series, str]:
    """Convert one column to ``kind``; return the result and a problem message or ''."""
    dtype = series.dtype
    if kind is Kind.TEXT:
        if dtype == pl.String:
            return (series.str.strip_chars() if csv else series), ""
        if dtype == pl.Null or dtype.is_numeric() or dtype.is_temporal() or dtype == pl.Boolean:
            return series.cast(pl.String), ""
        if isinstance(dtype, pl.Categorical | pl.Enum):
            return series.cast(pl.String), ""
        return series, f"expected text, the column holds {dtype}"
    if kind is Kind.NUMBER:
        if dtype == pl.Null:
            return series.cast(pl.Float64), ""
        if dtype.is_numeric():
            return _no_nan(series.cast(pl.Float64)), ""
        if dtype == pl.String:
            parsed = series.str.strip_chars().cast(pl.Float64, strict=False).fill_nan(None)
            bad = series.is_not_null() & parsed.is_null() & (series.str.strip_chars() != "")
            bad = bad & ~series.str.strip_chars().str.to_lowercase().is_in(["nan"])
            if bad.any():
                return parsed, f"not a number in {where.describe(series, bad)}"
            return parsed, ""
        return series, f"expected numbers, the column holds {dtype}"
    if kind is Kind.DATE:
        if dtype == pl.Date:
            return series, ""
        if dtype == pl.Null:
            return series.cast(pl.Date), ""
        if isinstance(dtype, pl.Datetime):
            return series.dt.date(), ""
        if dtype == pl.String:
            text = series.str.strip_chars()
            parsed = _parse_dates(text)
            bad = text.is_not_null() & (text != "") & parsed.is_null()
            if bad.any():
                return parsed, f"not a date (use YYYY-MM-DD) in {where.describe(series, bad)}"
            return parsed, ""
        return series, f"expected dates (YYYY-MM-DD), the column holds {dtype}"
    raise AssertionError(f"unhandled kind {kind}")  # VALUE is handled by _value_and_level


def _parse_dates(text: pl.Series) -> pl.Series:
    """ISO dates; rows that are not plain dates get a second try as ISO date-times."""
    dates = text.str.to_date("%Y-%m-%d", strict=False)
    retry = text.is_not_null() & dates.is_null()
    if not retry.any():
        return dates
    frame = pl.DataFrame({"t": text, "d": dates})
    fixed = frame.select(
        pl.when(pl.col("d").is_null() & pl.col("t").str.contains(r"^\d{4}-\d{1,2}-\d{1,2}[T ]"))
        .then(
            pl.col("t")
            .str.replace(r"Z$", "")
            .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False)
            .fill_null(pl.col("t").str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False))
            .fill_null(pl.col("t").str.to_datetime("%Y-%m-%dT%H:%M", strict=False))
            .fill_null(pl.col("t").str.to_datetime("%Y-%m-%d %H:%M", strict=False))
            .dt.date()
        )
        .otherwise(pl.col("d"))
        .alias(text.name)
    )
    return fixed.to_series()


def _value_and_level(
    series: pl.Series, raw: pl.DataFrame, csv: bool
) -> tuple[pl.Series, pl.Series | None]:
    """Split ``value`` into a Float64 value and a text level (contract: text goes to level);
    the level is None when the file has neither a level column nor text values."""
    level_in = raw.get_column("level") if "level" in raw.columns else None
    if level_in is not None and level_in.dtype != pl.String:
        level_in = level_in.cast(pl.String)
    dtype = series.dtype
    if dtype == pl.String:
        text = series.str.strip_chars() if csv else series
        value = text.cast(pl.Float64, strict=False).fill_nan(None)
        is_level = text.is_not_null() & (text != "") & value.is_null()
        is_level = is_level & ~text.str.to_lowercase().is_in(["nan"])
        level = level_in
        if is_level.any():
            from_value = pl.select(pl.when(is_level).then(text).otherwise(None)).to_series()
            level = from_value if level_in is None else level_in.fill_null(from_value)
    else:
        if dtype == pl.Null or dtype.is_numeric():
            value = _no_nan(series.cast(pl.Float64))
        elif dtype == pl.Boolean:
            value = series.cast(pl.Float64)
        else:  # e.g. Categorical levels stored in a Parquet file
            return _value_and_level(series.cast(pl.String), raw, csv)
        level = level_in
    return value.alias("value"), (level.alias("level") if level is not None else None)


def _infer_text_column(series: pl.Series) -> pl.Series:
    """Type an extra CSV column when every non-empty cell parses (Int64, Float64, Date, Bool)."""
    if series.dtype != pl.String:
        return series
    text = series.str.strip_chars()
    filled = text.is_not_null() & (text != "")
    if not filled.any():
        return text
    for dtype in (pl.Int64, pl.Float64):
        parsed = text.cast(dtype, strict=False)
        if not (filled & parsed.is_null()).any():
            return parsed
    dates = text.str.to_date("%Y-%m-%d", strict=False)
    if not (filled & dates.is_null()).any():
        return dates
    lower = text.str.to_lowercase()
    if lower.drop_nulls().is_in(["true", "false"]).all():
        return lower == "true"
    return text


def _no_nan(values: pl.Series) -> pl.Series:
    """NaN is an empty cell; checked first because most files have none (saves a copy)."""
    return values.fill_nan(None) if values.is_nan().any() else values


def _empty_to_null(name: str) -> pl.Expr:
    col = pl.col(name)
    return pl.when(col == "").then(None).otherwise(col).alias(name)


# --------------------------------------------------------------------------- rules


def _rule_problems(
    frame: pl.DataFrame, col: Column, source: str, where: _RowNamer
) -> list[Problem]:
    s = frame.get_column(col.name)
    here = f"{source}: column {col.name!r}"
    out: list[Problem] = []
    if col.not_null:
        empty = s.is_null()
        if s.dtype == pl.String:
            empty = empty | (s == "")
        if empty.any():
            out.append(
                Problem(
                    here,
                    f"a value is required, empty in {where.describe(s, empty, show_values=False)}",
                )
            )
    if col.non_negative and s.dtype == pl.Float64:
        neg = (s < 0).fill_null(False)
        if neg.any():
            out.append(Problem(here, f"must not be negative, in {where.describe(s, neg)}"))
    if col.choices and s.dtype == pl.String:
        bad = s.is_not_null() & ~s.str.to_lowercase().is_in(list(col.choices))
        if bad.any():
            allowed = ", ".join(col.choices)
            out.append(Problem(here, f"must be one of {allowed}, in {where.describe(s, bad)}"))
    return out


def _duplicate_problems(
    frame: pl.DataFrame, key: Sequence[str], source: str, where: _RowNamer
) -> list[Problem]:
    keys = frame.select(pl.struct(list(key))) if len(key) > 1 else frame.select(key[0])
    if keys.to_series().n_unique() == frame.height:  # the usual case, twice as fast to tell
        return []
    dup = keys.to_series().is_duplicated()
    shown = frame.get_column(key[0])
    label = " + ".join(key)
    rows = where.describe(shown, dup)
    return [
        Problem(
            f"{source}: column {label!r}",
            f"duplicate key: each {label} may appear once, repeated in {rows}",
        )
    ]


def _missing_columns_message(missing: list[str], found: Sequence[str], spec: TableSpec) -> str:
    def norm(s: str) -> str:
        return s.strip().lower().replace(" ", "_").replace("-", "_")

    by_norm = {norm(f): f for f in found}
    parts = []
    for m in missing:
        hint = by_norm.get(m)
        parts.append(f"{m!r} (found {hint!r}: check the spelling)" if hint else repr(m))
    cols = ", ".join(repr(c) for c in found) or "none"
    noun = "column" if len(missing) == 1 else "columns"
    return f"missing required {noun} {', '.join(parts)} for {spec.name}; the file has {cols}"
