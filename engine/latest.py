"""The latest value per (unit, metric) without sorting the rows.

Scoring takes, for every unit (an account, or an account's product) and metric, the latest
value dated on or before the as-of date. Sorting millions of rows by date and pivoting them
costs seconds; here every row gets integer codes (its unit and metric, so a cell number) and
NumPy does the rest. When each cell has at most one row (one value per account and metric,
as an export of current values has), the values are scattered straight into a (metrics,
units) matrix; otherwise one ``np.maximum.at`` pass finds each cell's latest row and the
values are gathered from those rows. Two rows of one cell on the same date: the first row
(in input order) wins.

Company-level rows (product null) apply to every product unit of their account unless the
product has its own row for that metric, which wins even when older; an account without
product rows is one company-level unit.

Matrices are metric-major, ``(metrics, units)``, so that each metric's column of the wide
frame is one contiguous row of a matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

NONE = -1  # no row for this cell
NO_DAY = np.iinfo(np.int64).min  # no row, so no date, for this cell


@dataclass(frozen=True)
class LatestValues:
    """The value that counts in every (metric, unit) cell.

    ``unit_row``: one row of each unit (read its ``account_id`` there); ``product_units``:
    how many units, first, are product units (read their ``product`` at ``unit_row`` too; the
    others are company-level units, product null); ``value``: (metrics,
    units) float64, NaN where the cell has no value; ``day``: (metrics, units) int64, the
    date of the row that counts, :data:`NO_DAY` for none (None when not asked for);
    ``level_rows``: (metrics, units), the row of the latest level, :data:`NONE` for none
    (None when no row has a level).
    """

    unit_row: np.ndarray
    product_units: int
    value: np.ndarray
    day: np.ndarray | None
    level_rows: np.ndarray | None


def latest_values(
    account: pl.Series,
    product: pl.Series | None,
    metric: np.ndarray,
    day: np.ndarray,
    value: np.ndarray,
    n_metrics: int,
    keep: np.ndarray,
    level_keep: np.ndarray | None = None,
    *,
    days: bool = False,
) -> LatestValues:
    """The latest value of every (metric, unit) cell among the rows where ``keep`` holds.

    Per row: ``metric``, its code 0..n_metrics-1 (any number where ``keep`` is false);
    ``day``, its date as an integer; ``value``, float64 with NaN for none. ``product``: null
    for company-level rows (None: every row is); ``level_keep``: the rows that have a level
    (within ``keep``); ``days``: also return the date of each cell's row. Units are the
    product units with a kept row and the company-level unit of every account with kept
    company rows but no product unit, in no particular order."""
    acc_code, n_acc, acc_row = dense_codes(account)
    product_row = keep & product.is_not_null().to_numpy() if product is not None else None
    if product_row is not None and product_row.any():
        assert product is not None
        return _with_products(
            (acc_code, n_acc, acc_row),
            product,
            product_row,
            metric,
            day,
            value,
            n_metrics,
            keep,
            level_keep,
            days=days,
        )
    level = None
    if level_keep is not None:
        level = _cells(acc_code, n_acc, metric, n_metrics, day, level_keep)
    rows, cells = _kept_cells(acc_code, n_acc, metric, n_metrics, keep)
    n_cells = n_acc * n_metrics
    seen = np.zeros(n_cells, dtype=bool)
    seen[cells] = True
    if np.count_nonzero(seen) == cells.size:
        # One row per cell: scatter the values in place, nothing to choose.
        out = np.full(n_cells, np.nan)
        out[cells] = value if rows is None else value[rows]
        dated = None
        if days:
            dated = np.full(n_cells, NO_DAY, dtype=np.int64)
            dated[cells] = day if rows is None else day[rows]
        found = LatestValues(
            acc_row,
            0,
            out.reshape(n_metrics, n_acc),
            dated.reshape(n_metrics, n_acc) if dated is not None else None,
            level,
        )
        used = seen.reshape(n_metrics, n_acc).any(axis=0) if rows is not None else None
    else:
        winners = latest_rows(cells, rows, day, n_cells).reshape(n_metrics, n_acc)
        found = LatestValues(
            acc_row,
            0,
            _gather(value, winners, np.nan),
            _gather(day, winners, NO_DAY, np.int64) if days else None,
            level,
        )
        used = (winners >= 0).any(axis=0)
    if used is None or used.all():
        return found
    keep_units = np.flatnonzero(used)  # accounts whose every row was dropped go
    return LatestValues(
        found.unit_row[keep_units],
        0,
        found.value[:, keep_units],
        found.day[:, keep_units] if found.day is not None else None,
        found.level_rows[:, keep_units] if found.level_rows is not None else None,
    )


def _with_products(
    accounts: tuple[np.ndarray, int, np.ndarray],
    product: pl.Series,
    product_row: np.ndarray,
    metric: np.ndarray,
    day: np.ndarray,
    value: np.ndarray,
    n_metrics: int,
    keep: np.ndarray,
    level_keep: np.ndarray | None,
    *,
    days: bool,
) -> LatestValues:
    """:func:`latest_values` when some kept rows have a product; ``accounts``: the
    :func:`dense_codes` of the account ids."""
    acc_code, n_acc, acc_row = accounts
    # Product units: the distinct (account, product) pairs among the kept product rows.
    prod_code, n_prod, _ = dense_codes(product)
    rows = np.flatnonzero(product_row)
    pair = acc_code[rows].astype(np.int64) * n_prod + prod_code[rows]
    pair_code, n_units, pair_row = dense_codes(pl.Series(pair))
    unit = np.full(keep.size, NONE, dtype=index_dtype(keep.size))
    unit[rows] = pair_code
    unit_account = acc_code[rows[pair_row]]
    company_row = keep & ~product_row
    has_product = np.zeros(n_acc, dtype=bool)
    has_product[unit_account] = True

    own = _cells(unit, n_units, metric, n_metrics, day, product_row)
    company = _cells(acc_code, n_acc, metric, n_metrics, day, company_row)
    alone = np.flatnonzero((company >= 0).any(axis=0) & ~has_product)

    def units_of(own: np.ndarray, company: np.ndarray) -> np.ndarray:
        # a product's own row wins, even when older; else its account's company row
        spread = np.where(own >= 0, own, company[:, unit_account])
        return np.concatenate([spread, company[:, alone]], axis=1)

    winners = units_of(own, company)
    level = None
    if level_keep is not None:
        level = units_of(
            _cells(unit, n_units, metric, n_metrics, day, level_keep & product_row),
            _cells(acc_code, n_acc, metric, n_metrics, day, level_keep & company_row),
        )
    unit_row = np.concatenate([rows[pair_row], acc_row[alone]])
    return LatestValues(
        unit_row,
        n_units,
        _gather(value, winners, np.nan),
        _gather(day, winners, NO_DAY, np.int64) if days else None,
        level,
    )


def dense_codes(ids: pl.Series) -> tuple[np.ndarray, int, np.ndarray]:
    """A code 0..n-1 per row, equal for equal values (null is a value of its own), n, and
    the first row of each code.

    Rows grouped by id (each id's rows together, as in a file sorted by account) are coded
    from their runs in one linear pass; other orders take a hash group-by (codes then follow
    the order of first appearance)."""
    n = ids.len()
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0, np.zeros(0, dtype=np.int64)
    in_order = ids.is_sorted()
    runs = (ids.set_sorted() if in_order else ids).rle()  # faster on a sorted column
    lengths = runs.struct.field("len").to_numpy()
    if in_order or _all_distinct(runs.struct.field("value")):
        codes = np.repeat(np.arange(lengths.size, dtype=index_dtype(n)), lengths)
        starts = np.cumsum(lengths, dtype=np.int64) - lengths
        return codes, lengths.size, starts
    # Not grouped: a hash group-by gives each row its id's first row, numbered densely.
    first = (
        pl.DataFrame({"id": ids})
        .with_row_index("row")
        .select(pl.col("row").min().over("id"))
        .to_series()
        .to_numpy()
    )
    is_first = np.zeros(n, dtype=bool)
    is_first[first] = True
    number = np.cumsum(is_first, dtype=index_dtype(n)) - 1
    return number[first], int(number[-1]) + 1, np.flatnonzero(is_first)


def _all_distinct(values: pl.Series) -> bool:
    """Whether no value repeats; a repeat among the first values answers early (shuffled
    rows repeat ids soon), without hashing the whole column."""
    head = values.head(1 << 16)
    return bool(head.n_unique() == head.len() and values.n_unique() == values.len())


def latest_rows(
    cells: np.ndarray, rows: np.ndarray | None, day: np.ndarray, n_cells: int
) -> np.ndarray:
    """Per cell 0..n_cells-1, the row with the latest ``day`` among the rows of that cell
    (the first of them on a tie), :data:`NONE` for a cell without rows.

    ``cells``: the cell of each row that counts; ``rows``: the numbers of those rows in
    increasing order (None: every row counts, ``cells[i]`` is row i's); ``day``: per row.
    Row numbers are int32 when they fit (half the memory to fill), else int64."""
    out = np.full(n_cells, NONE, dtype=index_dtype(day.size))
    k = cells.size
    if k == 0:
        return out
    out[cells] = rows if rows is not None else np.arange(k, dtype=out.dtype)
    if np.count_nonzero(out >= 0) == k:  # every row has a cell of its own: nothing to pick
        return out
    days = (day if rows is None else day[rows]).astype(np.int64)
    days -= days.min()
    bits = max(k.bit_length(), 1)
    if int(days.max()).bit_length() + bits <= 62:
        # One number per row that orders by day, then by earlier row: the largest wins.
        packed = (days << bits) | (k - 1 - np.arange(k))
        best = np.full(n_cells, -1, dtype=np.int64)
        np.maximum.at(best, cells, packed)
        found = np.flatnonzero(best >= 0)
        win = (k - 1) - (best[found] & ((1 << bits) - 1))
    else:  # dates too far apart to pack beside the row number: sort instead
        order = np.lexsort((-days, cells))  # stable: on one day, the earlier row first
        first = np.ones(k, dtype=bool)
        first[1:] = cells[order[1:]] != cells[order[:-1]]
        win = order[first]
        found = cells[win]
    out[found] = win if rows is None else rows[win]
    return out


def index_dtype(n: int) -> type[np.signedinteger]:
    """The integer type for row numbers and cells below ``n``."""
    return np.int32 if n < 2**31 - 1 else np.int64


def _kept_cells(
    unit: np.ndarray, n_units: int, metric: np.ndarray, n_metrics: int, keep: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray]:
    """The kept rows (None: all of them) and the cell of each, ``metric * n_units + unit``."""
    rows = None if keep.all() else np.flatnonzero(keep)
    cells = (metric if rows is None else metric[rows]).astype(index_dtype(n_units * n_metrics))
    cells *= n_units
    cells += unit if rows is None else unit[rows]
    return rows, cells


def _cells(
    unit: np.ndarray,
    n_units: int,
    metric: np.ndarray,
    n_metrics: int,
    day: np.ndarray,
    keep: np.ndarray,
) -> np.ndarray:
    """(n_metrics, n_units) latest rows among the rows where ``keep`` holds."""
    rows, cells = _kept_cells(unit, n_units, metric, n_metrics, keep)
    return latest_rows(cells, rows, day, n_units * n_metrics).reshape(n_metrics, n_units)


def _gather(
    values: np.ndarray, rows: np.ndarray, missing: float, dtype: type | None = None
) -> np.ndarray:
    """``values`` at ``rows`` (any shape, as ``dtype``), ``missing`` where a row is
    :data:`NONE`."""
    out = values.take(rows)
    if dtype is not None:
        out = out.astype(dtype, copy=False)
    out[rows < 0] = missing
    return out
