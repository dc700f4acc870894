"""The command line: ``python -m engine COMMAND [options]``.

Each command lives in its own module in this package and exposes
``register(subparsers) -> None``, which adds a sub-parser whose ``func(args) -> int`` runs it.
Modules are discovered, so a new command is a new file.

Exit codes: 0 success, 2 bad input (the message on stderr), 3 database busy.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from collections.abc import Sequence
from typing import Any

from engine.problems import InputError, ScorecardError

DEFAULT_DB = "data/vitals.duckdb"


class BusyError(RuntimeError):
    """The database is locked by another process."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # bad flags: usage, the message, exit 2
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m engine", description="Vitals customer health engine")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub)
    return parser


def add_db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=DEFAULT_DB, help=f"DuckDB file (default {DEFAULT_DB})")


def add_json_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


def emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    """Print ``payload`` as JSON with ``--json``, else the human ``text``."""
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (InputError, ScorecardError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BusyError as exc:
        print(f"busy: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted; nothing was written", file=sys.stderr)
        return 130
