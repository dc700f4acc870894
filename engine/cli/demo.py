"""``python -m engine demo`` and ``python -m engine ensure-demo``: the demo portfolio.

``demo --db PATH [--accounts N] [--weeks W] [--seed S] [--end DATE] [--no-history] [--force]``
generates the seeded demo portfolio into the database (see :mod:`engine.demo`), derives its
metrics with the SQL definitions, stores the scorecards of ``data/scorecards`` as the active
versions and backfills the weekly score history. A database that already holds accounts is
only replaced with ``--force``.

``ensure-demo --db PATH`` does the same with the defaults, but only when the database file is
missing or holds no accounts (``make run`` calls it on every start).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from engine.cli import add_db_arg, add_json_arg, emit
from engine.problems import InputError, Problem


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="generate the demo portfolio into the database",
        description="Generate the seeded demo portfolio (raw sources, metrics, scorecards, "
        "weekly score history) into the database.",
    )
    add_db_arg(p)
    p.add_argument("--accounts", type=int, default=2000, help="number of accounts (default 2000)")
    p.add_argument("--weeks", type=int, default=104, help="weekly as-of dates (default 104)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--end", metavar="DATE", help="last as-of date (default: last Sunday)")
    p.add_argument("--scorecards", help="scorecard folder or file (default data/scorecards)")
    p.add_argument("--no-history", action="store_true", help="skip the score backfill")
    p.add_argument("--force", action="store_true", help="replace the data of a database in use")
    add_json_arg(p)
    p.set_defaults(func=run_demo)

    e = subparsers.add_parser(
        "ensure-demo",
        help="generate the demo only when the database is missing or empty",
        description="Generate the default demo portfolio when the database file is missing "
        "or holds no accounts; otherwise do nothing.",
    )
    add_db_arg(e)
    e.add_argument("--scorecards", help="scorecard folder or file (default data/scorecards)")
    e.add_argument("--accounts", type=int, default=2000, help="accounts when generating")
    e.add_argument("--weeks", type=int, default=104, help="weekly as-of dates when generating")
    add_json_arg(e)
    e.set_defaults(func=run_ensure)


_T0 = time.perf_counter()


def _progress(message: str) -> None:
    print(f"demo [{time.perf_counter() - _T0:6.1f} s] {message}", file=sys.stderr, flush=True)


def _parse_date(flag: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InputError([Problem(flag, f"{text!r} is not a date: use YYYY-MM-DD")]) from None


def _build(
    args: argparse.Namespace, *, accounts: int, weeks: int, seed: int, end: date | None
) -> dict[str, Any]:
    from engine import demo

    if accounts < 1 or weeks < 1:
        raise InputError("--accounts and --weeks must be at least 1")
    from engine.history import DEFAULT_SCORECARDS

    scorecards = Path(args.scorecards) if args.scorecards else DEFAULT_SCORECARDS
    if not scorecards.exists():
        raise InputError([Problem(str(scorecards), "scorecard folder or file not found")])
    return demo.build(
        args.db,
        n_accounts=accounts,
        weeks=weeks,
        seed=seed,
        end=end,
        scorecards=scorecards,
        backfill=not getattr(args, "no_history", False),
        progress=_progress,
    )


def _summary_text(summary: dict[str, Any], db: str) -> str:
    rows = summary["rows"]
    secs = summary["seconds"]
    return (
        f"demo portfolio written to {db}: {summary['accounts']:,} accounts, "
        f"{summary['weeks']} weekly as-of dates {summary['first_as_of']} .. "
        f"{summary['last_as_of']}, {rows['metric_values']:,} metric values, "
        f"{rows['renewals']:,} renewals, {summary.get('history_rows', 0):,} scores "
        f"in {secs['total']:.1f} s"
    )


def run_demo(args: argparse.Namespace) -> int:
    from engine import store

    con = store.cursor(args.db)
    existing = store.row_count(con, "accounts")
    if existing and not args.force:
        raise InputError(
            f"{args.db} already holds {existing:,} accounts: pass --force to replace its data "
            "with the demo (or use another --db)"
        )
    summary = _build(
        args,
        accounts=args.accounts,
        weeks=args.weeks,
        seed=args.seed,
        end=_parse_date("--end", args.end),
    )
    emit(args, summary, _summary_text(summary, args.db))
    return 0


def run_ensure(args: argparse.Namespace) -> int:
    from engine import store

    path = Path(args.db)
    if path.exists():
        con = store.cursor(args.db)
        n = store.row_count(con, "accounts")
        if n:
            emit(
                args,
                {"generated": False, "accounts": n},
                f"{args.db} holds {n:,} accounts: nothing to do",
            )
            return 0
    _progress(f"{args.db} is missing or empty: generating the demo portfolio")
    summary = _build(args, accounts=args.accounts, weeks=args.weeks, seed=7, end=None)
    emit(args, {"generated": True, **summary}, _summary_text(summary, args.db))
    return 0
