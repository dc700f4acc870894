"""``python -m engine validate SCORECARD``: check a scorecard file or a folder of them.

Exit 0 with a short "valid" message; exit 2 with every problem on stderr (path, value, rule).
A single file's assignment rules may name the other scorecards of its folder, as they are
scored together. With ``--metrics FILE`` the metrics the scorecards read must occur in that
metric_values file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.cli import add_json_arg, emit
from engine.problems import InputError, Problem, ScorecardError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "validate",
        help="check a scorecard file or folder",
        description="Check a scorecard YAML file, or every *.yaml in a folder, and list "
        "every problem at once.",
    )
    p.add_argument("scorecard", metavar="SCORECARD", help="a scorecard .yaml file or a folder")
    p.add_argument(
        "--metrics",
        metavar="FILE",
        help="a metric_values .csv/.parquet file: report metrics the scorecards read but the "
        "file does not hold",
    )
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.scorecard import load_scorecards

    path = Path(args.scorecard)
    if not path.exists():
        raise InputError([Problem(str(path), "file or folder not found")])
    known = _known_metrics(args.metrics) if args.metrics else None
    try:
        cards = (
            load_scorecards(path, known_metrics=known) if path.is_dir() else _load_file(path, known)
        )
    except ScorecardError as exc:
        if args.json:
            emit(args, _invalid_payload(path, exc.problems), "")
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ids = sorted(cards)
    measures = sum(len(card.measures) for card in cards.values())
    payload = {
        "valid": True,
        "path": str(path),
        "scorecards": [
            {
                "id": card.id,
                "name": card.name,
                "groups": len(card.groups),
                "measures": len(card.measures),
                "overrides": len(card.overrides),
                "fingerprint": card.fingerprint(),
            }
            for card in (cards[i] for i in ids)
        ],
        "problems": [],
    }
    noun = "scorecard" if len(ids) == 1 else "scorecards"
    text = f"valid: {path} ({len(ids)} {noun}: {', '.join(ids)}; {measures} measures)"
    emit(args, payload, text)
    return 0


def _load_file(path: Path, known: set[str] | None) -> dict[str, Any]:
    """One file with its own rules; assignment targets may be sibling files of the folder."""
    from engine.scorecard import load_scorecard

    card = load_scorecard(path, known_metrics=known)
    siblings = {_sibling_id(f) for f in _yaml_files(path.parent) if f.resolve() != path.resolve()}
    targets = siblings | {card.id}
    shown = ", ".join(repr(t) for t in sorted(targets))
    problems = [
        Problem(
            f"assignment[{i}].scorecard",
            f"assigns to scorecard {a.scorecard!r}, which is not in folder {path.parent} "
            f"(known: {shown})",
        ).within(path.name)
        for i, a in enumerate(card.assignment)
        if a.scorecard not in targets
    ]
    if problems:
        raise ScorecardError(problems, source=str(path))
    return {card.id: card}


def _yaml_files(folder: Path) -> list[Path]:
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def _sibling_id(path: Path) -> str:
    """The id a sibling file declares (its stem when it has none or cannot be read)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return path.stem
    value = data.get("id") if isinstance(data, dict) else None
    return str(value) if value else path.stem


def _known_metrics(metrics_path: str) -> set[str]:
    from engine.io import read_metric_values

    frame = read_metric_values(metrics_path)
    return set(frame.get_column("metric").unique().to_list())


def _invalid_payload(path: Path, problems: list[Problem]) -> dict[str, Any]:
    return {
        "valid": False,
        "path": str(path),
        "problems": [{"path": p.path, "message": p.message} for p in problems],
    }
