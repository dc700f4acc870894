"""``python -m engine backtest | drivers | optimize`` on a small demo database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine import store
from engine.cli import main
from engine.scorecard import parse_scorecard_yaml

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine import demo

    path = tmp_path_factory.mktemp("cli") / "demo.duckdb"
    demo.build(path, n_accounts=400, weeks=60, scorecards=ROOT / "data" / "scorecards")
    store.close(path)
    return path


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_backtest_json_has_the_promised_keys(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, ["backtest", "--db", str(db), "--json", "--bootstrap", "50"])
    assert {"auc", "auc_low", "auc_high", "renewals", "bands"} <= set(out)
    assert out["auc_low"] < out["auc"] < out["auc_high"]
    assert [b["grade"] for b in out["bands"]] == ["Red", "Yellow", "Green"]
    assert {"grade", "accounts", "renewal_rate", "grr", "nrr"} <= set(out["bands"][0])
    rates = [b["renewal_rate"] for b in out["bands"]]
    assert rates == sorted(rates)


def test_stored_history_and_live_scoring_agree(db: Path) -> None:
    from engine.analytics import load_inputs, observations

    con = store.cursor(db)
    stored = load_inputs(con)
    assert stored.history is not None  # the demo stored weekly snapshots of the active set
    live = load_inputs(con, use_history=False)
    a, _ = observations(stored)
    b, _ = observations(live)
    keep = ["account_id", "renewal_date", "score_date", "score", "grade", "adoption"]
    assert_frame_equal(
        a.select(keep).sort("account_id", "renewal_date"),
        b.select(keep).sort("account_id", "renewal_date"),
        abs_tol=1e-9,
    )
    store.close(db)


def test_backtest_a_file_writes_nothing(
    db: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    con = store.cursor(db)
    before = store.table_counts(con)
    store.close(db)
    draft = tmp_path / "draft.yaml"
    text = (
        (ROOT / "data" / "scorecards" / "default.yaml")
        .read_text()
        .replace("weight: 35", "weight: 70")
    )
    draft.write_text(text)
    out = _json(
        capsys,
        [
            "backtest",
            "--db",
            str(db),
            "--scorecard",
            str(draft),
            "--json",
            "--horizon-days",
            "60",
            "--bootstrap",
            "0",
        ],
    )
    assert out["horizon_days"] == 60 and out["source"] == "file draft.yaml"
    assert out["auc_low"] is None
    con = store.cursor(db)
    assert store.table_counts(con) == before
    store.close(db)


def test_drivers_text_and_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drivers", "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert "Each 10 points of Adoption go with" in text
    out = _json(capsys, ["drivers", "--db", str(db), "--json"])
    assert out["ranking"][0] == "adoption"
    assert out["activities"]


def test_optimize_writes_a_draft_and_never_activates(
    db: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    con = store.cursor(db)
    active_before = {k: v.version for k, v in store.active_scorecard_versions(con).items()}
    store.close(db)
    target = tmp_path / "suggested.yaml"
    out = _json(
        capsys,
        [
            "optimize",
            "--db",
            str(db),
            "--out",
            str(target),
            "--json",
            "--bootstrap",
            "5",
            "--save-draft",
        ],
    )
    assert {"cv_auc", "weights"} <= set(out["current"])
    assert {"cv_auc", "weights"} <= set(out["suggested"])
    card = parse_scorecard_yaml(target.read_text())
    assert card.id == "default" and "suggested" in card.name
    con = store.cursor(db)
    versions = store.scorecard_versions(con)
    draft = versions.filter(pl.col("version") == out["draft_version"])
    assert draft.get_column("status").to_list() == ["draft"]
    assert {k: v.version for k, v in store.active_scorecard_versions(con).items()} == active_before
    store.close(db)


def test_optimize_a_stored_version(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    con = store.cursor(db)
    version = store.active_scorecard_versions(con)["default"].version
    store.close(db)
    out = _json(
        capsys,
        ["optimize", "--db", str(db), "--scorecard", str(version), "--json", "--bootstrap", "0"],
    )
    assert out["scorecard"] == "default"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["backtest", "--db", "{tmp}/missing.duckdb"], "no database here"),
        (["backtest", "--db", "{db}", "--horizon-days", "-5"], "0 or more"),
        (["backtest", "--db", "{db}", "--scorecard", "{tmp}/nope.yaml"], "not a scorecard version"),
        (["backtest", "--db", "{db}", "--scorecard", "999"], "no scorecard version 999"),
        (["optimize", "--db", "{db}", "--out", "{tmp}/x.csv"], "use .yaml"),
        (["backtest", "--db", "{db}", "--horizon-days", "5000"], "smaller horizon"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    args = [a.format(db=db, tmp=tmp_path) for a in argv]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    store.close(db)


def test_no_renewals_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.duckdb"
    con = store.cursor(path)
    store.append(con, "accounts", pl.DataFrame({"account_id": ["a"], "name": ["A"], "arr": [1.0]}))
    store.save_scorecard_version(
        con, (ROOT / "data" / "scorecards" / "smb.yaml").read_text(), author="t", status="active"
    )
    store.close(path)
    assert main(["backtest", "--db", str(path)]) == 2
    assert "no renewals" in capsys.readouterr().err


def test_runs_as_a_module(db: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "backtest", "--db", str(db), "--bootstrap", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "AUC" in proc.stdout and "Green" in proc.stdout
