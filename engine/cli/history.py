"""Score history and data quality on the command line.

``backfill --db PATH [--scorecard VERSION|FILE] [--from DATE] [--to DATE] [--weeks N]``
recomputes the weekly score history under the active scorecards (``--scorecard`` replaces one
of them by a stored version number or a YAML file, stored as a draft version) in one
transaction, with a progress bar on stderr.

``quality --db PATH [--as-of DATE] [--json]`` prints the data-quality report.

:func:`score_db_command` is the database mode of ``python -m engine score`` (the ``score``
command lives in :mod:`engine.cli.score` and calls it when ``--db`` is given without
``--accounts``/``--metrics``): it scores the customers at ``--as-of`` (default: the latest
metric date) and stores the snapshot, replacing one of the same date and versions. It reads
``args.db``, ``args.as_of`` (text or None), ``args.json`` and, when present, ``args.scorecard``
(a version number or a YAML file).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from typing import Any

from engine.cli import add_db_arg, add_json_arg, emit
from engine.problems import InputError, Problem


def register(subparsers: Any) -> None:
    b = subparsers.add_parser(
        "backfill",
        help="recompute the weekly score history",
        description="Recompute the weekly score history under the active scorecards (or one "
        "replaced by --scorecard) in one transaction.",
    )
    add_db_arg(b)
    b.add_argument(
        "--scorecard",
        metavar="VERSION|FILE",
        help="a stored scorecard version number, or a YAML file to store as a draft",
    )
    b.add_argument("--from", dest="start", metavar="DATE", help="first as-of date")
    b.add_argument(
        "--to", dest="end", metavar="DATE", help="last as-of date (default: the latest metric date)"
    )
    b.add_argument(
        "--weeks",
        type=int,
        default=104,
        help="weekly dates back from --to when --from is not given (default 104)",
    )
    add_json_arg(b)
    b.set_defaults(func=run_backfill)

    q = subparsers.add_parser(
        "quality",
        help="data-quality report: coverage, staleness, outliers, accounts without metrics",
        description="Data-quality report of the metric values at an as-of date.",
    )
    add_db_arg(q)
    q.add_argument(
        "--as-of", dest="as_of", metavar="DATE", help="as-of date (default: the latest metric date)"
    )
    add_json_arg(q)
    q.set_defaults(func=run_quality)


def parse_date(flag: str, text: str | None) -> date | None:
    """An ISO date from a flag (None stays None), or :class:`InputError` naming the flag."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InputError([Problem(flag, f"{text!r} is not a date: use YYYY-MM-DD")]) from None


class _Bar:
    """A progress bar on stderr (one line per tenth when stderr is not a terminal)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.tty = sys.stderr.isatty()
        self.t0 = time.perf_counter()
        self.last_tenth = -1

    def __call__(self, i: int, total: int, day: date) -> None:
        elapsed = time.perf_counter() - self.t0
        if self.tty:
            width = 30
            filled = int(width * i / max(total, 1))
            sys.stderr.write(
                f"\r{self.label} [{'#' * filled}{' ' * (width - filled)}] {i}/{total} {day}"
                f" {elapsed:5.1f} s"
            )
            if i == total:
                sys.stderr.write("\n")
            sys.stderr.flush()
            return
        tenth = (10 * i) // max(total, 1)
        if tenth != self.last_tenth or i == total:
            self.last_tenth = tenth
            print(f"{self.label}: {i}/{total} ({day}) {elapsed:.1f} s", file=sys.stderr, flush=True)


def run_backfill(args: argparse.Namespace) -> int:
    from engine import history, store

    start = parse_date("--from", args.start)
    end = parse_date("--to", args.end)
    if args.weeks < 1:
        raise InputError([Problem("--weeks", "must be at least 1")])
    con = store.cursor(args.db)
    result = history.backfill(
        con,
        scorecard=args.scorecard,
        start=start,
        end=end,
        weeks=args.weeks,
        progress=_Bar("backfill"),
    )
    payload = {
        "db": args.db,
        "dates": len(result.dates),
        "first": result.dates[0].isoformat(),
        "last": result.dates[-1].isoformat(),
        "versions": result.versions,
        "rows": result.rows,
        "seconds": round(result.seconds, 3),
    }
    versions = ", ".join(f"{k} v{v}" for k, v in result.versions.items())
    emit(
        args,
        payload,
        f"backfilled {len(result.dates)} dates {result.dates[0]} .. {result.dates[-1]} "
        f"({result.rows:,} scores; {versions}) in {result.seconds:.1f} s",
    )
    return 0


def score_db_command(args: argparse.Namespace) -> int:
    """``score --db PATH [--as-of DATE] [--scorecard VERSION|FILE] [--json]``: score the
    database at the date and store the snapshot (idempotent)."""
    from engine import history, store

    as_of = parse_date("--as-of", getattr(args, "as_of", None))
    con = store.cursor(args.db)
    scorecard = getattr(args, "scorecard", None)
    cards = history.scorecard_set(con, scorecard) if scorecard else None
    result = history.snapshot(con, as_of, scorecards=cards)
    payload = {
        "db": args.db,
        "as_of": result.as_of.isoformat(),
        "versions": result.versions,
        "accounts": result.rows,
        "grades": result.grades,
        "seconds": round(result.seconds, 3),
    }
    lines = [
        f"scored {result.rows:,} accounts as of {result.as_of} and stored the snapshot "
        f"({', '.join(f'{k} v{v}' for k, v in result.versions.items())}) "
        f"in {result.seconds:.1f} s"
    ]
    for grade, n in sorted(result.grades.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {grade:<10} {n:>10,}")
    emit(args, payload, "\n".join(lines))
    return 0


def run_quality(args: argparse.Namespace) -> int:
    from engine import quality, store

    con = store.cursor(args.db)
    report = quality.quality_report(con, parse_date("--as-of", args.as_of))
    lines = [
        f"data quality as of {report.as_of}: {report.accounts:,} customers, "
        f"{report.accounts_without_metrics.height:,} without any metric value",
        f"  {'metric':<32} {'coverage':>8} {'stale':>7} {'outliers':>8} {'out of range':>12}"
        f"  latest",
    ]
    for row in report.metrics.iter_rows(named=True):
        cov = "-" if row["coverage"] is None else f"{100 * row['coverage']:.1f}%"
        stale = "-" if row["stale_share"] is None else f"{100 * row['stale_share']:.1f}%"
        lines.append(
            f"  {row['metric']:<32} {cov:>8} {stale:>7} {row['outliers']:>8} "
            f"{row['out_of_range']:>12}  {row['latest_as_of'] or '-'}"
        )
    emit(args, report.to_dict(), "\n".join(lines))
    return 0
