"""``python -m engine score``: score accounts from files, or the database.

File mode (``--accounts`` and ``--metrics`` given)::

    python -m engine score --accounts FILE --metrics FILE --scorecard FILE|DIR --out FILE
        [--as-of YYYY-MM-DD] [--overrides FILE] [--products FILE] [--default ID] [--json]

reads CSV or Parquet by extension, scores every account at ``--as-of`` (default: the latest
``as_of`` in the metrics) and writes one row per account to ``--out`` (CSV or Parquet).
Database mode (no ``--accounts``/``--metrics``; ``--db`` or the default database) is
:func:`engine.cli.history.score_db_command`.

Bad input exits 2 before anything is written, with every problem found: the file, column,
rows and rule.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from engine.cli import DEFAULT_DB, add_json_arg, emit
from engine.problems import InputError, Problem, ScorecardError

if TYPE_CHECKING:  # the scorecard model pulls in pydantic: keep `--help` quick
    from engine.scorecard import Scorecard


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "score",
        help="score accounts (files or the database)",
        description="Score every account at an as-of date. File mode: --accounts, --metrics, "
        "--scorecard and --out (CSV or Parquet by extension). Without --accounts and --metrics "
        "the database is scored (--db).",
    )
    p.add_argument("--accounts", metavar="FILE", help="accounts .csv/.parquet")
    p.add_argument("--metrics", metavar="FILE", help="metric_values .csv/.parquet (long format)")
    p.add_argument("--scorecard", metavar="FILE|DIR", help="a scorecard .yaml or a folder of them")
    p.add_argument(
        "--as-of",
        dest="as_of",
        metavar="DATE",
        help="score as of this date, YYYY-MM-DD (default: the latest as_of in the metrics)",
    )
    p.add_argument("--out", metavar="FILE", help="write the scores here (.csv or .parquet)")
    p.add_argument("--overrides", metavar="FILE", help="manual overrides .csv/.parquet")
    p.add_argument("--products", metavar="FILE", help="ARR per account and product .csv/.parquet")
    p.add_argument(
        "--default",
        default="default",
        metavar="ID",
        help="the scorecard that assigns the others and catches the rest (default: default)",
    )
    p.add_argument(
        "--db",
        metavar="PATH",
        default=None,
        help=f"score the database instead of files (default {DEFAULT_DB} when no files given)",
    )
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.accounts is None and args.metrics is None:
        return _score_db(args)
    return _score_files(args)


def _score_db(args: argparse.Namespace) -> int:
    # Imported here: the database mode lives with the history commands.
    try:
        from engine.cli.history import score_db_command
    except ImportError:
        raise InputError(
            "scoring the database is not available in this build: "
            "give --accounts, --metrics, --scorecard and --out to score files"
        ) from None
    if args.db is None:
        args.db = DEFAULT_DB
    return int(score_db_command(args) or 0)


def _score_files(args: argparse.Namespace) -> int:
    from engine.io import (
        check_extension,
        read_accounts,
        read_manual_overrides,
        read_metric_values,
        read_product_arr,
        write_table,
    )
    from engine.scoring import score

    started = time.perf_counter()
    _check_flags(args)
    check_extension(args.out)
    as_of = parse_date_flag("--as-of", args.as_of) if args.as_of else None

    # Gather every problem of every input before giving up: all errors at once.
    problems: list[Problem] = []
    card_error: ScorecardError | None = None
    cards: dict[str, Scorecard] = {}
    try:
        cards = _load_cards(Path(args.scorecard), args.default)
    except ScorecardError as exc:
        card_error = exc
        problems.extend(_scorecard_problems(exc))
    except InputError as exc:
        problems.extend(exc.problems)

    frames: dict[str, pl.DataFrame | None] = {"products": None, "overrides": None}
    readers = [
        ("accounts", args.accounts, read_accounts),
        ("metrics", args.metrics, read_metric_values),
        ("overrides", args.overrides, read_manual_overrides),
        ("products", args.products, read_product_arr),
    ]
    for key, path, reader in readers:
        if path is None:
            continue
        try:
            frames[key] = reader(path)
        except InputError as exc:
            problems.extend(exc.problems)
    if card_error is not None and len(problems) == len(card_error.problems):
        raise card_error  # only the scorecard is wrong: keep its own message
    if problems:
        raise InputError(problems)
    read_done = time.perf_counter()

    accounts, metrics = frames["accounts"], frames["metrics"]
    assert accounts is not None and metrics is not None
    if as_of is None:
        as_of = metrics.get_column("as_of").max()  # type: ignore[assignment]
    assert isinstance(as_of, date)
    warnings = _warnings(cards, metrics, as_of)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)

    default = args.default if args.default in cards else next(iter(cards))
    scores = score(
        accounts,
        metrics,
        cards if len(cards) > 1 else cards[default],
        as_of,
        default=default,
        manual_overrides=frames["overrides"],
        product_arr=frames["products"],
    )
    score_done = time.perf_counter()
    write_table(scores, args.out)
    done = time.perf_counter()

    timings = {
        "read": round(read_done - started, 3),
        "score": round(score_done - read_done, 3),
        "write": round(done - score_done, 3),
        "total": round(done - started, 3),
    }
    payload = _summary(scores, cards, as_of, args.out, timings, warnings)
    emit(args, payload, _summary_text(payload))
    return 0


def parse_date_flag(flag: str, text: str) -> date:
    """An ISO date ``YYYY-MM-DD`` from a command-line flag, or :class:`InputError`."""
    try:
        if len(text.strip()) != 10:
            raise ValueError
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            [Problem(flag, f"{text!r} is not a date: use YYYY-MM-DD, e.g. 2024-06-30")]
        ) from None


def _check_flags(args: argparse.Namespace) -> None:
    needed = [("--accounts", args.accounts), ("--metrics", args.metrics)]
    needed += [("--scorecard", args.scorecard), ("--out", args.out)]
    absent = [flag for flag, value in needed if not value]
    problems = []
    if absent:
        problems.append(
            Problem(
                "score",
                f"scoring files needs {', '.join(absent)} too "
                "(or leave out --accounts and --metrics to score the database)",
            )
        )
    if args.db is not None:
        problems.append(
            Problem("--db", "give either files (--accounts, --metrics) or --db, not both")
        )
    if problems:
        raise InputError(problems)


def _load_cards(path: Path, default: str) -> dict[str, Scorecard]:
    from engine.scorecard import load_scorecards

    if not path.exists():
        raise InputError([Problem(str(path), "scorecard file or folder not found")])
    cards = load_scorecards(path)
    if len(cards) > 1 and default not in cards:
        known = ", ".join(sorted(cards))
        raise InputError(
            [
                Problem(
                    str(path),
                    f"no scorecard with id {default!r} to assign and catch the rest "
                    f"(found {known}): pass --default ID",
                )
            ]
        )
    return cards


def _scorecard_problems(exc: ScorecardError) -> list[Problem]:
    where = f"{exc.source}: " if exc.source else ""
    return [
        Problem(f"{where}{p.path}".rstrip(": "), f"invalid scorecard: {p.message}")
        for p in exc.problems
    ]


def _warnings(cards: Mapping[str, Scorecard], metrics: pl.DataFrame, as_of: date) -> list[str]:
    """Things that are not errors but that a user would want to know before trusting scores."""
    out: list[str] = []
    wanted = sorted(set().union(*(c.metrics for c in cards.values())))
    if wanted:
        present = set(metrics.get_column("metric").unique().to_list())
        absent = [m for m in wanted if m not in present]
        if absent:
            out.append(
                f"the metrics file has no values for {', '.join(absent)}: "
                "those measures are missing for every account"
            )
    first = metrics.get_column("as_of").min()
    if isinstance(first, date) and as_of < first:
        out.append(f"as-of {as_of} is before the first metric value ({first}): nothing to score")
    return out


def _summary(
    scores: pl.DataFrame,
    cards: Mapping[str, Scorecard],
    as_of: date,
    out: str,
    timings: dict[str, float],
    warnings: list[str],
) -> dict[str, Any]:
    counts = dict(
        scores.group_by("grade").len().iter_rows()  # grade label (None: no score) -> count
    )
    order: list[str] = []
    for card in cards.values():
        order += [b.label for b in card.scheme.bands if b.label not in order]
    order += sorted(str(g) for g in counts if g is not None and g not in order)
    per_card = dict(scores.group_by("scorecard").len().sort("scorecard").iter_rows())
    return {
        "accounts": scores.height,
        "as_of": as_of.isoformat(),
        "scorecards": per_card,
        "grades": {label: counts.get(label, 0) for label in order if label in counts},
        "no_score": counts.get(None, 0),
        "out": out,
        "seconds": timings["total"],
        "timings": timings,
        "warnings": warnings,
    }


def _summary_text(payload: dict[str, Any]) -> str:
    n = payload["accounts"]
    cards = payload["scorecards"]
    used = ", ".join(f"{cid} {count:,}" for cid, count in cards.items())
    lines = [
        f"scored {n:,} accounts as of {payload['as_of']} in {payload['seconds']:.1f} s "
        f"(scorecards: {used})"
    ]
    rows = [*payload["grades"].items()]
    if payload["no_score"]:
        rows.append(("no score", payload["no_score"]))
    width = max((len(str(label)) for label, _ in rows), default=0)
    for label, count in rows:
        share = 100.0 * count / n if n else 0.0
        lines.append(f"  {label!s:<{width}}  {count:>10,}  {share:5.1f}%")
    t = payload["timings"]
    lines.append(
        f"wrote {payload['out']} (read {t['read']:.1f} s, score {t['score']:.1f} s, "
        f"write {t['write']:.1f} s)"
    )
    return "\n".join(lines)
