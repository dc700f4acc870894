"""Override and assignment conditions as Polars expressions (never ``eval`` of user text).

A condition is evaluated on a wide frame of one row per scored unit in which the scoring engine
has put, for each metric, its latest value (``value_col``), level text (``level_col``) and age
in days (``age_col``); for each measure and group its score; the raw overall; the account
attributes; and, for each ``Change`` condition, the base value (``change_col``).

Null policy: a comparison with a missing value is false; ``not`` negates after that, so
``not (nps < 0)`` is true for an account without NPS.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import polars as pl

from engine.scorecard import AllOf, AnyOf, Change, Compare, Condition, NotOf, Op, Target


def value_col(metric: str) -> str:
    return f"__v::{metric}"


def level_col(metric: str) -> str:
    return f"__l::{metric}"


def age_col(metric: str) -> str:
    return f"__a::{metric}"


def change_col(metric: str, days: int) -> str:
    return f"__c::{metric}::{days}"


RAW_SCORE = "raw_score"


def compare(left: pl.Expr, op: Op, value: Any) -> pl.Expr:
    """``left <op> value`` with the null policy above."""
    if op in (Op.IN, Op.NOT_IN):
        values = list(value) if isinstance(value, list | tuple) else [value]
        expr = left.is_in(values)
        expr = ~expr if op is Op.NOT_IN else expr
        return (expr & left.is_not_null()).fill_null(False)
    lit = pl.lit(value)
    match op:
        case Op.LT:
            expr = left < lit
        case Op.LE:
            expr = left <= lit
        case Op.GT:
            expr = left > lit
        case Op.GE:
            expr = left >= lit
        case Op.EQ:
            expr = left == lit
        case Op.NE:
            expr = left != lit
    return expr.fill_null(False)


def condition_expr(cond: Condition) -> pl.Expr:
    """The Boolean expression of a condition over the scoring frame."""
    if isinstance(cond, Compare):
        return compare(_target_expr(cond), cond.op, cond.value)
    if isinstance(cond, Change):
        now = pl.col(value_col(cond.metric))
        then = pl.col(change_col(cond.metric, cond.days))
        if cond.relative:
            delta: pl.Expr = pl.when(then != 0).then((now - then) / then.abs() * 100.0)
        else:
            delta = now - then
        return compare(delta, cond.op, cond.value)
    if isinstance(cond, AllOf):
        return (
            pl.all_horizontal([condition_expr(c) for c in cond.items])
            if cond.items
            else pl.lit(True)
        )
    if isinstance(cond, AnyOf):
        return (
            pl.any_horizontal([condition_expr(c) for c in cond.items])
            if cond.items
            else pl.lit(False)
        )
    assert isinstance(cond, NotOf)
    return ~condition_expr(cond.item)


def _target_expr(cond: Compare) -> pl.Expr:
    match cond.target:
        case Target.METRIC:
            if isinstance(cond.value, str) or (
                isinstance(cond.value, tuple) and any(isinstance(v, str) for v in cond.value)
            ):
                return pl.col(level_col(cond.name))
            return pl.col(value_col(cond.name))
        case Target.MEASURE | Target.GROUP:
            return pl.col(cond.name)
        case Target.OVERALL:
            return pl.col(RAW_SCORE)
        case Target.ATTRIBUTE:
            return pl.col(cond.name)


def walk(cond: Condition) -> Iterator[Condition]:
    """Every node of a condition tree, depth first."""
    yield cond
    if isinstance(cond, AllOf | AnyOf):
        for c in cond.items:
            yield from walk(c)
    elif isinstance(cond, NotOf):
        yield from walk(cond.item)


def metrics_read(cond: Condition) -> set[str]:
    """Metric ids whose values a condition reads (for freshness and data loading)."""
    out: set[str] = set()
    for node in walk(cond):
        if isinstance(node, Compare) and node.target == Target.METRIC:
            out.add(node.name)
        elif isinstance(node, Change):
            out.add(node.metric)
    return out


def changes(cond: Condition) -> set[tuple[str, int]]:
    return {(n.metric, n.days) for n in walk(cond) if isinstance(n, Change)}


def attributes_read(cond: Condition) -> set[str]:
    return {n.name for n in walk(cond) if isinstance(n, Compare) and n.target == Target.ATTRIBUTE}
