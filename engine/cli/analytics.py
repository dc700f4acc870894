"""``backtest``, ``drivers`` and ``optimize``: does the score predict renewals?

::

    python -m engine backtest --db PATH [--scorecard VERSION|FILE] [--horizon-days N] [--json]
    python -m engine drivers  --db PATH [--scorecard VERSION|FILE] [--horizon-days N] [--json]
    python -m engine optimize --db PATH [--scorecard VERSION|FILE] [--target ID] [--out FILE]
                              [--bands] [--save-draft] [--json]

The three read the database and write nothing, except ``optimize --out FILE`` (the suggested
scorecard YAML, written atomically) and ``optimize --save-draft`` (a *draft* version in the
database; it is never activated). Bad input (no renewals, one outcome only, too few renewals,
an unknown version or file) exits 2 with the reason on stderr.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from engine.cli import add_db_arg, add_json_arg, emit
from engine.problems import InputError, Problem


def register(subparsers: Any) -> None:
    bt = subparsers.add_parser(
        "backtest",
        help="backtest a scorecard against past renewals",
        description="For every past renewal, the account's score N days before it against the "
        "outcome: AUC with a bootstrap interval, renewal rate, GRR and NRR per grade, lift by "
        "decile, calibration, and the same per group.",
    )
    _common(bt)
    bt.add_argument(
        "--bootstrap",
        type=int,
        default=200,
        metavar="N",
        help="bootstrap resamples for the AUC interval (default 200; 0 = none)",
    )
    bt.add_argument("--seed", type=int, default=0, help="random seed of the bootstrap")
    bt.set_defaults(func=run_backtest)

    dr = subparsers.add_parser(
        "drivers",
        help="which groups and CSM activities go with renewal",
        description="Logistic regression of renewal and OLS of ARR change on the group scores "
        "(segment as control), and of group scores on CSM activities in the preceding quarter, "
        "with 95%% confidence intervals and plain-language sentences.",
    )
    _common(dr)
    dr.set_defaults(func=run_drivers)

    op = subparsers.add_parser(
        "optimize",
        help="suggest scorecard weights that predict renewal",
        description="Suggest non-negative, rounded group and measure weights that best predict "
        "renewal, validated on newer renewals than those fitted; compare the current and the "
        "suggested scorecard's cross-validated AUC. Never activates anything.",
    )
    _common(op)
    op.add_argument(
        "--target",
        metavar="ID",
        default=None,
        help="the scorecard id to tune (default: the default scorecard)",
    )
    op.add_argument("--out", metavar="FILE", help="write the suggested scorecard YAML here")
    op.add_argument(
        "--bands",
        action="store_true",
        help="also put the suggested grade bands into the suggested scorecard",
    )
    op.add_argument(
        "--save-draft",
        action="store_true",
        help="store the suggestion in the database as a draft version",
    )
    op.add_argument("--folds", type=int, default=4, metavar="K", help="cross-validation folds")
    op.add_argument(
        "--bootstrap",
        type=int,
        default=30,
        metavar="N",
        help="bootstrap refits for the stability of each weight (default 30)",
    )
    op.add_argument("--seed", type=int, default=0, help="random seed")
    op.set_defaults(func=run_optimize)


def _common(p: argparse.ArgumentParser) -> None:
    add_db_arg(p)
    p.add_argument(
        "--scorecard",
        metavar="VERSION|FILE",
        default=None,
        help="a stored version number or a scorecard YAML file (default: the "
        "active scorecards); a file is used as a draft and not stored",
    )
    p.add_argument(
        "--horizon-days",
        dest="horizon_days",
        type=int,
        default=90,
        metavar="N",
        help="score each renewal N days before it (default 90)",
    )
    add_json_arg(p)


def _inputs(args: argparse.Namespace) -> Any:
    from engine.analytics import load_inputs, open_db

    if args.horizon_days < 0:
        raise InputError([Problem("--horizon-days", f"must be 0 or more, got {args.horizon_days}")])
    con = open_db(args.db)
    return load_inputs(con, args.scorecard)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None, nd: int = 3) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


# --------------------------------------------------------------------------- backtest


def run_backtest(args: argparse.Namespace) -> int:
    from engine.analytics import observations
    from engine.backtest import backtest_observations

    inputs = _inputs(args)
    obs, unscored = observations(inputs, horizon_days=args.horizon_days)
    result = backtest_observations(
        obs,
        inputs.cards,
        unscored=unscored,
        horizon_days=args.horizon_days,
        default=inputs.default,
        bootstrap=max(0, args.bootstrap),
        seed=args.seed,
    )
    payload = result.to_dict() | {"source": inputs.label}
    lines = [
        f"Backtest of {inputs.label}: {result.renewals} renewals "
        f"({result.first_renewal} to {result.last_renewal}), scored {args.horizon_days} days "
        "before each",
        f"AUC {_num(result.auc)} (95% interval {_num(result.auc_low)} to {_num(result.auc_high)})",
        "",
        f"{'grade':<12}{'renewals':>10}{'renewal rate':>14}{'GRR':>9}{'NRR':>9}",
    ]
    for row in result.bands.iter_rows(named=True):
        lines.append(
            f"{row['grade']:<12}{row['accounts']:>10}{_pct(row['renewal_rate']):>14}"
            f"{_pct(row['grr']):>9}{_pct(row['nrr']):>9}"
        )
    lines.append("")
    lines.append("AUC per group: " + ", ".join(f"{g.label} {_num(g.auc)}" for g in result.groups))
    lines += [f"note: {m}" for m in result.messages]
    emit(args, payload, "\n".join(lines))
    return 0


# --------------------------------------------------------------------------- drivers


def run_drivers(args: argparse.Namespace) -> int:
    from engine.analytics import observations
    from engine.drivers import drivers_from_observations

    inputs = _inputs(args)
    obs, _ = observations(inputs, horizon_days=args.horizon_days)
    result = drivers_from_observations(
        obs,
        inputs.cards,
        inputs.activities if inputs.activities.height else None,
        default=inputs.default,
    )
    payload = result.to_dict() | {"source": inputs.label, "horizon_days": args.horizon_days}
    text = "\n".join(
        [
            f"Drivers of renewal ({inputs.label}, {result.renewals} renewals, scores "
            f"{args.horizon_days} days before):",
            *[f"- {s}" for s in result.sentences],
            *[f"note: {m}" for m in result.messages],
        ]
    )
    emit(args, payload, text)
    return 0


# --------------------------------------------------------------------------- optimize


def run_optimize(args: argparse.Namespace) -> int:
    from engine.analytics import observations
    from engine.optimize import optimize_observations

    if args.out:
        out = Path(args.out)
        if out.suffix.lower() not in (".yaml", ".yml"):
            raise InputError([Problem(str(out), "the suggested scorecard is YAML: use .yaml")])
    inputs = _inputs(args)
    obs, _ = observations(inputs, horizon_days=args.horizon_days)
    result = optimize_observations(
        obs,
        inputs.cards,
        target=args.target,
        default=inputs.default,
        folds=max(2, args.folds),
        bootstrap=max(0, args.bootstrap),
        seed=args.seed,
        use_suggested_bands=args.bands,
    )
    payload = result.to_dict() | {"source": inputs.label, "horizon_days": args.horizon_days}
    if args.out:
        _write_text(Path(args.out), result.to_yaml())
        payload["out"] = args.out
    if args.save_draft:
        from engine import store

        version = store.save_scorecard_version(
            inputs.con,
            result.to_yaml(),
            author="optimizer",
            comment=f"optimizer suggestion (CV AUC {_num(result.suggested_cv_auc)} vs "
            f"{_num(result.current_cv_auc)})",
            status="draft",
        )
        payload["draft_version"] = version
    lines = [
        f"Optimizer for scorecard {result.scorecard!r} ({inputs.label}): {result.renewals} "
        f"renewals, {result.churned} churned; validation {result.cv}",
        f"cross-validated AUC: current {_num(result.current_cv_auc)}, suggested "
        f"{_num(result.suggested_cv_auc)}, unconstrained logistic {_num(result.logistic_cv_auc)}",
        "",
        f"{'weight':<28}{'current':>9}{'suggested':>11}{'bootstrap 5-95%':>18}",
    ]
    for row in result.weights.iter_rows(named=True):
        indent = "" if row["level"] == "group" else "  "
        spread = (
            f"{row['boot_low']:.0f}-{row['boot_high']:.0f}" if row["boot_low"] is not None else "-"
        )
        lines.append(
            f"{indent + row['label']:<28}{row['current_file']:>9g}{row['suggested']:>11g}"
            f"{spread:>18}"
        )
    if args.out:
        lines.append(f"\nwrote the suggested scorecard to {args.out} (a draft: not activated)")
    if args.save_draft:
        lines.append(f"stored as draft version {payload['draft_version']} (not activated)")
    lines += [f"note: {m}" for m in result.messages]
    emit(args, payload, "\n".join(lines))
    return 0


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError([Problem(str(path), f"cannot write: {exc.strerror or exc}")]) from None
    finally:
        tmp.unlink(missing_ok=True)
