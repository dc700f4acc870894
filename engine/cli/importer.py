"""``python -m engine import``: bring your own data (CSV or Parquet by extension).

``import --db PATH [--accounts F] [--metrics F] [--renewals F] [--activities F]
[--products F] [--sources DIR [--as-of DATE] [--weeks N]]``

Every file is validated before anything is written; every problem is reported at once (file,
column, rows, rule) and the command exits 2 with nothing written. Valid files are written in one
transaction (upserts on the natural keys: importing the same file twice changes nothing). With
``--sources``, the raw source tables are replaced and metric values derived by the SQL metric
definitions at ``--weeks`` weekly as-of dates ending on ``--as-of`` (default: the latest date in
the sources). See :mod:`engine.importer`.
"""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from engine.cli import add_db_arg, add_json_arg, emit
from engine.problems import InputError, Problem


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "import",
        help="import accounts, metric values, renewals, activities, products or sources",
        description="Validate and import data files (.csv or .parquet) in one transaction.",
    )
    add_db_arg(p)
    p.add_argument("--accounts", metavar="FILE", help="accounts file")
    p.add_argument("--metrics", metavar="FILE", help="metric_values file (long format)")
    p.add_argument("--renewals", metavar="FILE", help="renewals file")
    p.add_argument("--activities", metavar="FILE", help="activities file")
    p.add_argument("--products", metavar="FILE", help="ARR per account and product")
    p.add_argument("--sources", metavar="DIR", help="folder of raw source tables (<table>.csv)")
    p.add_argument(
        "--as-of",
        dest="as_of",
        metavar="DATE",
        help="last as-of date to derive metrics from --sources",
    )
    p.add_argument(
        "--weeks",
        type=int,
        default=1,
        help="weekly as-of dates to derive from --sources (default 1)",
    )
    p.add_argument("--author", default="cli", help="who imports (audit log)")
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine import importer, store

    as_of = None
    if args.as_of:
        try:
            as_of = date.fromisoformat(args.as_of.strip())
        except ValueError:
            raise InputError(
                [Problem("--as-of", f"{args.as_of!r} is not a date: use YYYY-MM-DD")]
            ) from None
    if args.weeks < 1:
        raise InputError([Problem("--weeks", "must be at least 1")])
    con = store.cursor(args.db)
    result = importer.import_files(
        con,
        accounts=args.accounts,
        metrics=args.metrics,
        renewals=args.renewals,
        activities=args.activities,
        products=args.products,
        sources=args.sources,
        as_of=as_of,
        weeks=args.weeks,
        author=args.author,
    )
    payload = {
        "db": args.db,
        "rows": result.rows,
        "derived": result.derived,
        "as_of_dates": [d.isoformat() for d in result.as_of_dates],
        "seconds": round(result.seconds, 3),
    }
    lines = [f"imported into {args.db} in {result.seconds:.1f} s:"]
    lines += [f"  {table:<22} {n:>12,} rows" for table, n in result.rows.items()]
    if result.derived:
        lines.append(
            f"  derived {sum(result.derived.values()):,} metric values for "
            f"{len(result.as_of_dates)} as-of date(s) ending {result.as_of_dates[-1]}"
        )
    emit(args, payload, "\n".join(lines))
    return 0
