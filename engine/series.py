"""Latest metric values at a series of ascending as-of dates, kept dense in NumPy.

A weekly backfill scores every account at about a hundred dates. Picking "the latest value on
or before the date" anew for each date re-reads and re-pivots the history every time. Here the
rows stream in once, in date order, from the store as integer codes (account, product, metric,
day) into a dense state with one slot per (metric, account, product): moving on to the next
date writes only the rows dated since the previous one, and the units of a date are a gather
from that state. :meth:`Series.units` returns the frame :func:`engine.scoring.score_units`
scores, with the semantics of :func:`engine.scoring.score` over the whole history:

- the latest value on or before the date counts, with its age in days; the level is the latest
  level given;
- a product's own value wins over the company-level one, even when older; company-level values
  apply to every product of their account;
- an account with product values is scored per product (each product with a value), otherwise
  once at company level (a unit of nulls when it has no value at all);
- for each change window ``(metric, days)``: the latest value on or before ``date - days``, a
  product without a value of its own falling back to the company-level one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

import duckdb
import numpy as np
import polars as pl

from engine import store
from engine.conditions import age_col, change_col, level_col, value_col

EPOCH = date(1970, 1, 1)
_NONE = np.iinfo(np.int32).min  # "no day": older than any date


def day_number(day: date) -> int:
    """Days since 1970-01-01 (the ``day`` of :func:`engine.store.metric_codes_between`)."""
    return (day - EPOCH).days


@dataclass
class _State:
    """Per (metric, unit) slot: the latest value, its day, and the latest level and its day."""

    value: np.ndarray
    day: np.ndarray
    level: np.ndarray
    level_day: np.ndarray

    @classmethod
    def empty(cls, n_metrics: int, n_units: int) -> _State:
        shape = (n_metrics, n_units)
        return cls(
            np.full(shape, np.nan),
            np.full(shape, _NONE, np.int32),
            np.full(shape, -1, np.int32),
            np.full(shape, _NONE, np.int32),
        )

    def apply(self, rows: _Rows) -> None:
        """Write rows newer than everything applied so far, at most one per slot (see
        :func:`_latest_rows`)."""
        slot, day, value, level_slot, level_day, level = rows
        self.value.reshape(-1)[slot] = value
        self.day.reshape(-1)[slot] = day
        self.level.reshape(-1)[level_slot] = level
        self.level_day.reshape(-1)[level_slot] = level_day


def _latest(slot: np.ndarray, day: np.ndarray, scratch: np.ndarray) -> np.ndarray | None:
    """Mask of the rows holding the latest day of their slot, None for all of them (one day:
    the store keeps one row per slot and day). No sort: a maximum per slot in ``scratch``
    (all ``_NONE``, and left so)."""
    if day.size == 0 or day.min() == day.max():
        return None
    np.maximum.at(scratch, slot, day)
    keep = np.asarray(day == scratch[slot])
    scratch[slot] = _NONE
    return keep


# slot, day, value of the latest rows; slot, day, level of the latest rows with a level
_Rows = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class _Stream:
    """Rows of some metrics applied up to a day; the rows of the next day are read ahead."""

    metrics: list[int]
    state: _State
    upto: date | None = None
    ahead: dict[tuple[date | None, date], Future[_Rows]] = field(default_factory=dict)
    planned: date | None = None  # the end of the last read asked for

    def advance(self, series: Series, day: date) -> None:
        if self.upto is not None and day <= self.upto:
            if day < self.upto:
                raise ValueError(f"dates must ascend: {day} after {self.upto}")
            return
        future = self.ahead.pop((self.upto, day), None)
        if future is None:
            future = series.read_ahead(self.metrics, self.upto, day)
        self.state.apply(future.result())
        self.upto = day

    def plan(self, series: Series, days: Sequence[date]) -> None:
        """Ask for the rows up to each of ``days`` (ascending), one read per date, in the
        reading thread: they are ready when :meth:`advance` reaches them."""
        last = self.planned if self.planned is not None else self.upto
        for day in days:
            if last is not None and day <= last:
                continue
            self.ahead[(last, day)] = series.read_ahead(self.metrics, last, day)
            last = self.planned = day


@dataclass
class Series:
    """Latest values of ``metrics`` for ``account_ids`` (in this order: an account's code is
    its position) at ascending dates, and at ``date - days`` for each change window.

    Rows are read through a cursor of its own, in a background thread, for the dates the
    caller says will follow, while it works on the current one; :meth:`close` (or ``with``)
    stops it."""

    con: duckdb.DuckDBPyConnection
    account_ids: Sequence[str]
    metrics: Sequence[str]
    windows: Sequence[tuple[str, int]] = ()
    products: list[str] = field(init=False)
    levels: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self._reader = self.con.cursor()
        self._scratch: np.ndarray | None = None  # of _latest, in the reading thread
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vitals-series")
        self.products, self.levels = store.prepare_metric_codes(
            self._reader, self.account_ids, self.metrics
        )
        self.n_accounts = len(self.account_ids)
        self.n_slots = len(self.products) + 1  # product code 0: company level
        self.n_units = self.n_accounts * self.n_slots
        self._index = {m: i for i, m in enumerate(self.metrics)}
        self.main = _Stream(list(range(len(self.metrics))), self._state(len(self.metrics)))
        self.lagged: dict[int, _Stream] = {}
        for metric, days in self.windows:
            stream = self.lagged.get(days)
            if stream is None:
                stream = self.lagged[days] = _Stream([], self._state(len(self.metrics)))
            stream.metrics.append(self._index[metric])

    def __enter__(self) -> Series:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._reader.close()

    def read(self, metrics: list[int], after: date | None, upto: date) -> _Rows:
        """The rows of ``metrics`` dated ``after < as_of <= upto``, the latest per slot (and
        the latest with a level per slot), as slot codes."""
        rows = store.metric_codes_between(self._reader, after, upto, metrics)
        a = rows.get_column("a").to_numpy().astype(np.int64)
        p = rows.get_column("p").to_numpy().astype(np.int64)
        m = rows.get_column("m").to_numpy().astype(np.int64)
        slot = m * self.n_units + a * self.n_slots + p
        day = rows.get_column("day").to_numpy().astype(np.int32)
        value = rows.get_column("value").fill_null(np.nan).to_numpy()
        level = rows.get_column("lv").to_numpy().astype(np.int32)
        if self._scratch is None:
            self._scratch = np.full(self.n_units * len(self.metrics), _NONE, np.int32)
        has_level = np.flatnonzero(level >= 0)
        l_slot, l_day, level = slot[has_level], day[has_level], level[has_level]
        keep = _latest(l_slot, l_day, self._scratch)
        if keep is not None:
            l_slot, l_day, level = l_slot[keep], l_day[keep], level[keep]
        keep = _latest(slot, day, self._scratch)
        if keep is not None:
            slot, day, value = slot[keep], day[keep], value[keep]
        return slot, day, value, l_slot, l_day, level

    def read_ahead(self, metrics: list[int], after: date | None, upto: date) -> Future[_Rows]:
        """:meth:`read` in the reading thread (the only user of the reader cursor)."""
        return self._pool.submit(self.read, list(metrics), after, upto)

    def _state(self, n_metrics: int) -> _State:
        return _State.empty(n_metrics, self.n_units)

    def units(
        self,
        day: date,
        active: np.ndarray,
        *,
        ages: Collection[str] = (),
        following: Sequence[date] = (),
    ) -> tuple[pl.DataFrame, np.ndarray]:
        """The units scored at ``day`` among the accounts where ``active`` is true, and each
        unit's account code. The frame has ``product`` (null at company level), ``_slot``
        (the product's code: products are numbered in name order, 0 for the company level),
        and per metric its value, level and (for the metrics in ``ages``) age columns, and the
        change columns: what :func:`engine.scoring.score_units` reads. ``following``: the
        next dates that will be asked for (their rows are read meanwhile)."""
        self.main.plan(self, [day, *following])
        self.main.advance(self, day)
        for days, stream in self.lagged.items():
            stream.plan(self, [_minus(d, days) for d in (day, *following)])
            stream.advance(self, _minus(day, days))
        st, n, k = self.main.state, self.n_accounts, self.n_slots
        has = (st.day > _NONE).any(axis=0).reshape(n, k)
        product_units = has[:, 1:] & active[:, None]
        company_units = active & ~has[:, 1:].any(axis=1)
        acc_p, prod = np.nonzero(product_units)
        acc_c = np.flatnonzero(company_units)
        acc = np.concatenate([acc_p, acc_c])
        slot = np.concatenate([prod + 1, np.zeros(acc_c.size, dtype=prod.dtype)])
        unit = acc * k + slot
        company = acc * k
        today = day_number(day)
        has_levels = np.asarray((st.level >= 0).any(axis=1))
        cols: list[pl.Series] = [
            _lookup([None, *self.products], slot, "product"),
            pl.Series("_slot", slot.astype(np.int64)),
        ]
        for i, metric in enumerate(self.metrics):
            src = np.where(st.day[i, unit] > _NONE, unit, company)
            cols.append(pl.Series(value_col(metric), st.value[i, src], nan_to_null=True))
            if metric in ages:
                d = st.day[i, src]
                missing = d == _NONE
                age = pl.Series(age_col(metric), today - d.astype(np.int64))
                cols.append(age.set(pl.Series(missing), None) if missing.any() else age)
            if has_levels[i]:
                lsrc = np.where(st.level_day[i, unit] > _NONE, unit, company)
                cols.append(_lookup(self.levels, st.level[i, lsrc], level_col(metric)))
        for metric, days in self.windows:
            lag = self.lagged[days].state
            i = self._index[metric]
            own = lag.day[i, unit] > _NONE
            # the company-level base serves an account without product values of the metric
            no_products = ~(lag.day[i].reshape(n, k)[:, 1:] > _NONE).any(axis=1)[acc]
            base = np.where(own, lag.value[i, unit], np.nan)
            base = np.where(~own & (no_products | (slot == 0)), lag.value[i, company], base)
            cols.append(pl.Series(change_col(metric, days), base, nan_to_null=True))
        frame = pl.DataFrame(cols)
        absent = [
            pl.lit(None, dtype=dtype).alias(name)
            for metric in self.metrics
            for name, dtype in ((age_col(metric), pl.Int64), (level_col(metric), pl.Utf8))
            if name not in frame.columns
        ]
        return frame.with_columns(absent).select(self._columns), acc

    @property
    def _columns(self) -> list[str]:
        out = ["product", "_slot"]
        for metric in self.metrics:
            out += [value_col(metric), age_col(metric), level_col(metric)]
        return out + [change_col(metric, days) for metric, days in self.windows]


def _minus(day: date, days: int) -> date:
    return date.fromordinal(day.toordinal() - days)


def _lookup(names: Sequence[str | None], codes: np.ndarray, name: str) -> pl.Series:
    """Text of integer ``codes`` (negative: null)."""
    idx = pl.Series(codes.astype(np.int64))
    idx = idx.set(pl.Series(codes < 0), None) if (codes < 0).any() else idx
    return pl.Series(name, list(names), dtype=pl.Utf8).gather(idx)
