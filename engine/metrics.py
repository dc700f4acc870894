"""SQL metric definitions (``data/metrics.yaml``): loading them and running them with DuckDB.

A definition names a metric (the id a scorecard measure reads), describes it, and optionally
derives it from the raw source tables with a query (the contract of a query is written at the
top of ``data/metrics.yaml``). :func:`derive_metrics` runs the queries for a set of as-of dates
and upserts the result into ``metric_values`` in one transaction: every query is bound first
and every broken one is reported at once (metric id and DuckDB's message); a query that fails
while running stops the run; either way nothing is written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import yaml

from engine import store
from engine.problems import InputError, Problem

DEFAULT_METRICS_PATH = Path(__file__).resolve().parent.parent / "data" / "metrics.yaml"
_REQUIRED = ("account_id", "as_of")
_OPTIONAL = ("product", "value", "level", "source", "author", "comment")
# account-dates per chunk: the runner derives long ranges in chunks of dates, so memory stays
# bounded and metric_values stays clustered by as_of (cheap date-range reads).
CHUNK_ACCOUNT_DATES = 1_000_000


class Level(StrEnum):
    PRODUCT = "product"
    COMPANY = "company"


@dataclass(frozen=True)
class MetricDefinition:
    """One metric: ``sql`` is None for a metric that is imported, not derived."""

    id: str
    label: str
    unit: str
    description: str
    group: str | None
    level: Level
    sql: str | None = None
    range: tuple[float | None, float | None] | None = None
    levels: tuple[str, ...] = ()


class MetricQueryError(InputError):
    """One or more metric queries are broken (each problem names the metric)."""


def load_definitions(path: str | Path = DEFAULT_METRICS_PATH) -> dict[str, MetricDefinition]:
    """Read and check a metrics file; raise :class:`InputError` with every problem."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{p}: not valid YAML: {exc}") from None
    return parse_definitions(data, source=str(p))


def parse_definitions(data: Any, *, source: str = "metrics") -> dict[str, MetricDefinition]:
    problems: list[Problem] = []
    items = data.get("metrics") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        raise InputError([Problem(source, "expected a mapping with a list under 'metrics'")])
    out: dict[str, MetricDefinition] = {}
    for i, item in enumerate(items):
        where = f"{source}: metrics[{i}]"
        if not isinstance(item, Mapping):
            problems.append(Problem(where, "a metric must be a mapping"))
            continue
        mid = item.get("id")
        if not isinstance(mid, str) or not mid.isidentifier():
            problems.append(
                Problem(f"{where}.id", f"a metric id must be a name like nps, got {mid!r}")
            )
            continue
        if mid in out:
            problems.append(Problem(f"{where}.id", f"metric id {mid!r} is defined twice"))
        extra = set(item) - {
            "id",
            "label",
            "unit",
            "description",
            "group",
            "level",
            "sql",
            "range",
            "levels",
        }
        if extra:
            problems.append(Problem(where, f"unknown keys {sorted(extra)}"))
        level = item.get("level", "company")
        if level not in ("product", "company"):
            problems.append(Problem(f"{where}.level", f"must be product or company, got {level!r}"))
            level = "company"
        sql = item.get("sql")
        if sql is not None and (not isinstance(sql, str) or not sql.strip()):
            problems.append(Problem(f"{where}.sql", "must be a non-empty query"))
            sql = None
        rng = item.get("range")
        if rng is not None and not (
            isinstance(rng, list)
            and len(rng) == 2
            and all(x is None or isinstance(x, int | float) for x in rng)
            and (rng[0] is None or rng[1] is None or rng[0] <= rng[1])
        ):
            problems.append(
                Problem(f"{where}.range", f"must be [min, max] (null = open), got {rng!r}")
            )
            rng = None
        levels = item.get("levels") or []
        if not isinstance(levels, list) or not all(isinstance(x, str) for x in levels):
            problems.append(Problem(f"{where}.levels", "must be a list of level labels"))
            levels = []
        out[mid] = MetricDefinition(
            id=mid,
            label=str(item.get("label") or mid),
            unit=str(item.get("unit") or ""),
            description=str(item.get("description") or "").strip(),
            group=item.get("group"),
            level=Level(level),
            sql=sql.strip().rstrip(";") if isinstance(sql, str) else None,
            range=(rng[0], rng[1]) if rng is not None else None,
            levels=tuple(levels),
        )
    if problems:
        raise InputError(problems)
    return out


def known_metrics(path: str | Path = DEFAULT_METRICS_PATH) -> set[str]:
    """The metric ids a scorecard may read (for ``load_scorecards(known_metrics=...)``)."""
    return set(load_definitions(path))


def check_queries(
    con: duckdb.DuckDBPyConnection,
    definitions: Mapping[str, MetricDefinition],
    as_of_dates: Sequence[date],
) -> tuple[dict[str, list[str]], list[Problem]]:
    """Bind every query (nothing runs): ``({metric: columns}, problems)``.

    Binding happens on a separate cursor, so that a failing query cannot abort a transaction
    the caller has open on ``con``."""
    side = con.cursor()
    try:
        return _check(side, definitions, as_of_dates)
    finally:
        side.close()


def _check(
    con: duckdb.DuckDBPyConnection,
    definitions: Mapping[str, MetricDefinition],
    as_of_dates: Sequence[date],
) -> tuple[dict[str, list[str]], list[Problem]]:
    store.prepare_metric_dates(con, as_of_dates[:1])
    columns: dict[str, list[str]] = {}
    problems: list[Problem] = []
    for d in definitions.values():
        if d.sql is None:
            continue
        try:
            cols = store.describe_query(con, d.sql)
        except duckdb.Error as exc:
            problems.append(Problem(f"metric {d.id}", f"query failed: {_first_line(exc)}"))
            continue
        missing = [c for c in _REQUIRED if c not in cols]
        if "value" not in cols and "level" not in cols:
            missing.append("value (or level)")
        if d.level is Level.PRODUCT and "product" not in cols:
            missing.append("product")
        if missing:
            problems.append(
                Problem(
                    f"metric {d.id}",
                    f"query must return columns {', '.join(missing)}"
                    f" (it returns {', '.join(cols)})",
                )
            )
            continue
        columns[d.id] = list(cols)
    return columns, problems


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _chunks(con: duckdb.DuckDBPyConnection, dates: list[date]) -> list[list[date]]:
    n_accounts = max(1, store.row_count(con, "accounts"))
    size = max(1, CHUNK_ACCOUNT_DATES // n_accounts)
    return [dates[i : i + size] for i in range(0, len(dates), size)]


def _run(
    con: duckdb.DuckDBPyConnection,
    as_of_dates: Sequence[date],
    definitions: Mapping[str, MetricDefinition] | None,
    metric_ids: Sequence[str] | None,
    source: str,
    sink: Callable[[], None],
    progress: Callable[[int, int, str], None] | None,
) -> dict[str, int]:
    defs = dict(definitions if definitions is not None else load_definitions())
    if metric_ids is not None:
        unknown = [m for m in metric_ids if m not in defs]
        if unknown:
            raise InputError(f"unknown metric(s): {', '.join(unknown)}")
        defs = {m: defs[m] for m in metric_ids}
    derived = {k: d for k, d in defs.items() if d.sql is not None}
    dates = sorted(set(as_of_dates))
    columns, problems = check_queries(con, derived, dates)
    if problems:
        raise MetricQueryError(problems)
    counts = dict.fromkeys(derived, 0)
    chunks = _chunks(con, dates)
    total = len(chunks) * len(derived)
    step = 0
    try:
        for chunk in chunks:
            store.prepare_metric_dates(con, chunk)
            store.begin_derived(con)
            for d in derived.values():
                try:
                    counts[d.id] += store.stage_metric(
                        con, d.id, d.sql or "", columns[d.id], source
                    )
                except duckdb.Error as exc:
                    raise MetricQueryError(
                        [Problem(f"metric {d.id}", f"query failed: {_first_line(exc)}")]
                    ) from None
                step += 1
                if progress:
                    progress(step, total, d.id)
            dups = store.derived_duplicates(con)
            if dups:
                raise MetricQueryError(
                    [
                        Problem(
                            f"metric {m}",
                            f"query returns {n} duplicated (account_id, product,"
                            " as_of) keys; aggregate to one row per key",
                        )
                        for m, n in dups.items()
                    ]
                )
            sink()
    finally:
        with contextlib.suppress(duckdb.Error):  # an aborted transaction drops them anyway
            store.drop_metric_dates(con)
    return counts


def derive_metrics(
    con: duckdb.DuckDBPyConnection,
    as_of_dates: Sequence[date],
    *,
    definitions: Mapping[str, MetricDefinition] | None = None,
    metric_ids: Sequence[str] | None = None,
    source: str = "sql",
    in_transaction: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, int]:
    """Run the metric queries for ``as_of_dates`` and upsert the rows into ``metric_values``
    in one transaction (the caller's with ``in_transaction=True``). Returns rows per metric.

    Raises :class:`MetricQueryError` naming every broken query; nothing is written then."""

    def sink() -> None:
        store.commit_derived(con)

    if in_transaction:
        return _run(con, as_of_dates, definitions, metric_ids, source, sink, progress)
    with store.transaction(con):
        return _run(con, as_of_dates, definitions, metric_ids, source, sink, progress)


def compute_metrics(
    con: duckdb.DuckDBPyConnection,
    as_of_dates: Sequence[date],
    *,
    definitions: Mapping[str, MetricDefinition] | None = None,
    metric_ids: Sequence[str] | None = None,
    source: str = "sql",
) -> pl.DataFrame:
    """Run the metric queries and return the rows (the ``metric_values`` frame of the
    contract) without writing anything: a preview, or input for scoring from sources."""
    frames: list[pl.DataFrame] = []

    def sink() -> None:
        frames.append(store.derived_frame(con))
        store.begin_derived(con)

    _run(con, as_of_dates, definitions, metric_ids, source, sink, None)  # temp tables only
    return pl.concat(frames) if frames else pl.DataFrame()
