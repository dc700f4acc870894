"""The latest-value step: engine.latest (codes and the NumPy kernel) and the wide frame that
engine.scoring._wide_values builds from it, against hand-computed frames and a plain Python
reference of the rules (docs/scoring.md, "Which value counts")."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from engine.conditions import age_col, level_col, value_col
from engine.latest import NONE, dense_codes, latest_rows
from engine.scoring import _wide_values

AS_OF = date(2026, 11, 2)


# --------------------------------------------------------------------------- the kernel


def test_latest_rows_one_row_per_cell_is_a_scatter() -> None:
    cells = np.array([3, 0, 2])
    out = latest_rows(cells, None, np.array([5, 1, 9]), 5)
    assert out.tolist() == [1, NONE, 2, 0, NONE]


def test_latest_rows_keeps_the_latest_day_and_the_first_row_of_a_tie() -> None:
    #             row: 0  1  2  3  4  5  6
    cells = np.array([0, 1, 0, 0, 1, 2, 1])
    days = np.array([10, 7, 12, 11, 7, 3, 6])
    out = latest_rows(cells, None, days, 4)
    # cell 0: day 12 (row 2); cell 1: day 7 on rows 1 and 4, the first wins; cell 3: none
    assert out.tolist() == [2, 1, 5, NONE]


def test_latest_rows_reports_row_numbers_of_a_subset() -> None:
    rows = np.array([1, 4, 6, 9])  # only these rows count
    cells = np.array([0, 0, 1, 0])
    days = np.zeros(10, dtype=np.int64)
    days[[1, 4, 6, 9]] = [5, 8, 1, 8]
    out = latest_rows(cells, rows, days, 2)
    assert out.tolist() == [4, 6]  # day 8 on rows 4 and 9: row 4 is first


def test_latest_rows_sorts_when_dates_are_too_far_apart_to_pack() -> None:
    cells = np.array([0, 0, 1, 1, 0])
    days = np.array([0, 2**60, 5, 5, 2**60])  # no room beside the row number: lexsort path
    assert latest_rows(cells, None, days, 3).tolist() == [1, 2, NONE]
    assert latest_rows(np.zeros(0, dtype=np.int64), None, days, 2).tolist() == [NONE, NONE]


@pytest.mark.parametrize("order", ["sorted", "descending", "grouped", "shuffled"])
def test_dense_codes_give_equal_values_equal_codes(order: str) -> None:
    ids = ["b", "b", "a", "c", "c", "c", None, None, "d"]
    if order == "sorted":
        ids = sorted(ids, key=lambda v: (v is not None, v or ""))
    elif order == "descending":
        ids = sorted(ids, key=lambda v: (v is None, v or ""), reverse=True)
    elif order == "shuffled":
        ids = ["c", "a", "b", None, "c", "b", "d", None, "c"]
    series = pl.Series(ids, dtype=pl.Utf8)
    codes, n, first = dense_codes(series)
    assert n == 5
    assert sorted(set(codes.tolist())) == list(range(5))
    # first[code]: the first row holding that code
    assert first.tolist() == [codes.tolist().index(c) for c in range(5)]
    by_value: dict[Any, set[int]] = {}
    for value, code in zip(ids, codes.tolist(), strict=True):
        by_value.setdefault(value, set()).add(code)
    assert all(len(c) == 1 for c in by_value.values())
    assert len({next(iter(c)) for c in by_value.values()}) == 5


def test_dense_codes_of_nothing() -> None:
    codes, n, first = dense_codes(pl.Series([], dtype=pl.Utf8))
    assert n == 0 and codes.size == 0 and first.size == 0


# --------------------------------------------------------------------------- the wide frame


def mv(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    """rows: (account, metric, value, level, as_of[, product])."""
    return pl.DataFrame(
        [(*r, None) if len(r) == 5 else r for r in rows],
        schema={
            "account_id": pl.Utf8,
            "metric": pl.Utf8,
            "value": pl.Float64,
            "level": pl.Utf8,
            "as_of": pl.Date,
            "product": pl.Utf8,
        },
        orient="row",
    )


def wide(frame: pl.DataFrame, needed: list[str], ages: bool = True) -> pl.DataFrame:
    out = _wide_values(frame, needed, AS_OF, ages=ages)
    cols = ["account_id", "product"]
    cols += [f(m) for f in (value_col, level_col, age_col) for m in needed]
    return out.select(cols).sort("account_id", "product", nulls_last=True)


def expected(rows: list[dict[str, Any]], needed: list[str]) -> pl.DataFrame:
    schema: dict[str, Any] = {"account_id": pl.Utf8, "product": pl.Utf8}
    for f, dtype in ((value_col, pl.Float64), (level_col, pl.Utf8), (age_col, pl.Int64)):
        schema |= {f(m): dtype for m in needed}
    full = [{c: r.get(c) for c in schema} for r in rows]
    return pl.DataFrame(full, schema=schema).sort("account_id", "product", nulls_last=True)


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
def test_several_dates_per_key_in_any_order(seed: int | None) -> None:
    d = date(2026, 10, 1)
    rows = [
        ("a", "m1", 0.1, None, d),
        ("a", "m1", 0.3, None, d + timedelta(days=20)),  # latest on or before the as-of
        ("a", "m1", 0.9, None, AS_OF + timedelta(days=1)),  # after the as-of: ignored
        ("a", "m1", 0.2, None, d + timedelta(days=10)),
        ("a", "m2", None, None, AS_OF),  # neither value nor level: ignored
        ("a", "m2", float("nan"), None, AS_OF),  # NaN is no value: ignored
        ("a", "m2", 5.0, None, d),
        ("b", "m2", 1.0, None, AS_OF),
        ("b", "m2", 2.0, None, AS_OF),  # same date as the row before: the first row wins
        ("b", "other", 7.0, None, AS_OF),  # a metric nobody reads
        ("c", "m1", 1.0, None, AS_OF + timedelta(days=3)),  # nothing on or before: no unit
    ]
    frame = mv(rows)
    if seed is not None:  # shuffle, but keep b's two same-date rows in their order
        frame = frame.with_row_index("i").sample(fraction=1.0, shuffle=True, seed=seed)
        frame = pl.concat(
            [
                frame.filter(~pl.col("i").is_in([7, 8])),
                frame.filter(pl.col("i").is_in([7, 8])).sort("i"),
            ]
        ).drop("i")
    got = wide(frame, ["m1", "m2"])
    want = expected(
        [
            {"account_id": "a", "__v::m1": 0.3, "__a::m1": 12, "__v::m2": 5.0, "__a::m2": 32},
            {"account_id": "b", "__v::m2": 1.0, "__a::m2": 0},
        ],
        ["m1", "m2"],
    )
    assert_frame_equal(got, want)


def test_ages_are_null_when_nothing_reads_them() -> None:
    got = wide(mv([("a", "m1", 0.5, None, date(2026, 10, 30))]), ["m1"], ages=False)
    assert got.get_column("__v::m1").to_list() == [0.5]
    assert got.get_column("__a::m1").to_list() == [None]
    assert got.schema["__a::m1"] == pl.Int64


def test_product_values_win_over_company_values_even_when_older() -> None:
    old, new = date(2026, 9, 1), date(2026, 11, 1)
    rows = [
        ("a", "m1", 1.0, None, new),  # company: spreads to products without their own m1
        ("a", "m1", 2.0, None, old, "Core"),  # Core's own m1: wins though older
        ("a", "m2", 3.0, None, new, "Analytics"),
        ("a", "m2", 4.0, None, old, ""),  # empty product text: company level
        ("b", "m1", 5.0, None, new),  # no product rows: one company-level unit
        ("c", "m2", 6.0, None, old, "Core"),  # products only
    ]
    got = wide(mv(rows), ["m1", "m2"])
    want = expected(
        [
            {"account_id": "a", "product": "Analytics", "__v::m1": 1.0, "__a::m1": 1}
            | {"__v::m2": 3.0, "__a::m2": 1},
            {"account_id": "a", "product": "Core", "__v::m1": 2.0, "__a::m1": 62}
            | {"__v::m2": 4.0, "__a::m2": 62},
            {"account_id": "b", "__v::m1": 5.0, "__a::m1": 1},
            {"account_id": "c", "product": "Core", "__v::m2": 6.0, "__a::m2": 62},
        ],
        ["m1", "m2"],
    )
    assert_frame_equal(got, want)


def test_levels_are_the_latest_level_with_the_same_product_rule() -> None:
    d1, d2, d3 = date(2026, 10, 1), date(2026, 10, 15), date(2026, 11, 1)
    rows = [
        ("a", "rel", None, "Weak", d1),
        ("a", "rel", None, "Strong", d2),  # a's latest level
        ("a", "rel", 1.0, None, d3),  # a's latest value (no level on that row)
        ("b", "rel", None, "Weak", d3),
        ("b", "rel", None, "Strong", d1, "Core"),  # Core's own level wins though older
        ("b", "rel", 2.0, None, d2, "Web"),  # Web: own value, level from the company
    ]
    got = wide(mv(rows), ["rel"])
    want = expected(
        [
            {"account_id": "a", "__v::rel": 1.0, "__l::rel": "Strong", "__a::rel": 1},
            {"account_id": "b", "product": "Core", "__l::rel": "Strong", "__a::rel": 32},
            {"account_id": "b", "product": "Web", "__v::rel": 2.0, "__l::rel": "Weak"}
            | {"__a::rel": 18},
        ],
        ["rel"],
    )
    assert_frame_equal(got, want)


def test_nothing_on_or_before_the_as_of_gives_an_empty_frame_of_the_same_shape() -> None:
    got = wide(mv([("a", "m1", 1.0, None, AS_OF + timedelta(days=1))]), ["m1"])
    assert_frame_equal(got, expected([], ["m1"]))
    no_optional = pl.DataFrame(
        {"account_id": ["a"], "metric": ["m1"], "value": [1.0], "as_of": [AS_OF]}
    )
    assert_frame_equal(
        wide(no_optional, ["m1"]),
        expected([{"account_id": "a", "__v::m1": 1.0, "__a::m1": 0}], ["m1"]),
    )


# --------------------------------------------------------------------------- reference


def reference(frame: pl.DataFrame, needed: list[str], as_of: date) -> pl.DataFrame:
    """The rules written plainly: per unit and metric, the latest kept row (the first on a
    tie); a product's own rows before its account's company rows; levels the same way over
    the rows that have one."""
    kept = []
    for i, r in enumerate(frame.iter_rows(named=True)):
        value = r["value"]
        value = None if value is None or math.isnan(value) else value
        product = r["product"] or None
        if (
            r["metric"] in needed
            and r["as_of"] <= as_of
            and (value is not None or r["level"] is not None)
        ):
            kept.append((i, r["account_id"], product, r["metric"], value, r["level"], r["as_of"]))
    with_products = {(k[1], k[2]) for k in kept if k[2] is not None}
    units = with_products | {
        (k[1], None) for k in kept if k[2] is None and k[1] not in {a for a, _ in with_products}
    }

    def best(cands: list[tuple[Any, ...]]) -> tuple[Any, ...] | None:
        return max(cands, key=lambda k: (k[6], -k[0])) if cands else None

    out = []
    for acc, prod in units:
        row: dict[str, Any] = {"account_id": acc, "product": prod}
        for m in needed:
            own = [k for k in kept if (k[1], k[2], k[3]) == (acc, prod, m)] if prod else []
            company = [k for k in kept if (k[1], k[2], k[3]) == (acc, None, m)]
            hit = best(own or company)
            level = best(
                [k for k in own if k[5] is not None] or [k for k in company if k[5] is not None]
            )
            row[value_col(m)] = hit[4] if hit else None
            row[age_col(m)] = (as_of - hit[6]).days if hit else None
            row[level_col(m)] = level[5] if level else None
        out.append(row)
    return expected(out, needed)


row_strategy = st.tuples(
    st.sampled_from(["a", "b", "c", "d"]),
    st.sampled_from(["m1", "m2", "m3"]),
    st.one_of(st.none(), st.just(float("nan")), st.sampled_from([0.0, 0.5, 1.0, 2.0])),
    st.one_of(st.none(), st.sampled_from(["Strong", "Weak"])),
    st.integers(min_value=-3, max_value=2).map(lambda n: AS_OF + timedelta(days=n)),
    st.sampled_from([None, None, "", "P1", "P2"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(row_strategy, max_size=30),
    needed=st.sampled_from([["m1"], ["m1", "m2"], ["m1", "m2", "m3"]]),
    grouped=st.booleans(),
)
def test_wide_values_match_the_plain_rules(
    rows: list[tuple[Any, ...]], needed: list[str], grouped: bool
) -> None:
    frame = mv(rows)
    if grouped:  # rows of each account together: the linear coding path
        frame = frame.sort("account_id", maintain_order=True)
    assert_frame_equal(wide(frame, needed), reference(frame, needed, AS_OF))
