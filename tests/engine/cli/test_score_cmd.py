"""`python -m engine score`: files in, scores out, bad input exits 2 naming file, column, rule."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path

import polars as pl
import pytest

from engine.cli import main

ROOT = Path(__file__).resolve().parents[3]

# Adoption 60 (breadth: linear 0 -> 0, 1 -> 100), Engagement 40 (relationship: levels).
TINY = """\
id: default
name: Tiny
scheme: {type: ryg, bands: [{label: Red, below: 50}, {label: Yellow, below: 75}, {label: Green}]}
rollup: arr_weighted
groups:
  - id: adoption
    label: Adoption
    weight: 60
    measures:
      - id: breadth
        metric: weekly_active_user_share
        weight: 1
        map: {linear: [[0, 0], [1, 100]]}
  - id: engagement
    label: Engagement
    weight: 40
    category: experience
    measures:
      - id: relationship
        metric: executive_relationship
        weight: 1
        map: {levels: [{label: Strong, score: 100}, {label: Weak, score: 0}]}
"""

ACCOUNTS = "account_id,name,arr,segment\n1,Acme,1000,Enterprise\n2,Beta,200,SMB\n3,Gamma,50,SMB\n"

# as of 2024-05-01: account 1 = 0.6 * 50 + 0.4 * 100 = 70 (Yellow); account 2 has breadth
# only: renormalised to 90 (Green), its 2024-06-01 value is after the as-of date; account 3
# has no value and no score.
METRICS = (
    "account_id,metric,value,as_of\n"
    "1,weekly_active_user_share,0.5,2024-05-01\n"
    "1,executive_relationship,Strong,2024-04-15\n"
    "2,weekly_active_user_share,0.9,2024-04-01\n"
    "2,weekly_active_user_share,0.1,2024-06-01\n"
)


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    files = {
        "accounts": tmp_path / "accounts.csv",
        "metrics": tmp_path / "metrics.csv",
        "scorecard": tmp_path / "tiny.yaml",
    }
    files["accounts"].write_text(ACCOUNTS)
    files["metrics"].write_text(METRICS)
    files["scorecard"].write_text(TINY)
    return files


def _argv(files: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return [
        "score",
        "--accounts",
        str(files["accounts"]),
        "--metrics",
        str(files["metrics"]),
        "--scorecard",
        str(files["scorecard"]),
        "--out",
        str(out),
        *extra,
    ]


def _by_account(frame: pl.DataFrame) -> dict[str, dict[str, object]]:
    return {row["account_id"]: row for row in frame.iter_rows(named=True)}


# --------------------------------------------------------------------------- success


def test_score_csv_hand_computed(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scores.csv"
    assert main(_argv(inputs, out, "--as-of", "2024-05-01")) == 0
    stdout = capsys.readouterr().out
    assert "scored 3 accounts as of 2024-05-01" in stdout
    assert "Yellow" in stdout and "Green" in stdout and "no score" in stdout
    rows = _by_account(pl.read_csv(out, schema_overrides={"account_id": pl.String}))
    assert rows["1"]["score"] == pytest.approx(70.0)
    assert rows["1"]["grade"] == "Yellow"
    assert rows["2"]["score"] == pytest.approx(90.0)
    assert rows["2"]["grade"] == "Green"
    assert rows["2"]["missing"] == "relationship"  # a list column, ';'-joined in CSV
    assert rows["3"]["score"] is None
    assert rows["3"]["missing"] == "breadth;relationship"


def test_score_default_as_of_is_latest_metric_date(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scores.parquet"
    assert main(_argv(inputs, out, "--json")) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["as_of"] == "2024-06-01"
    assert payload["accounts"] == 3
    assert payload["grades"] == {"Red": 1, "Yellow": 1}  # account 2 now reads 0.1 -> 10
    assert payload["no_score"] == 1
    assert set(payload["timings"]) == {"read", "score", "write", "total"}
    scores = pl.read_parquet(out)
    assert scores.schema["missing"] == pl.List(pl.String)
    assert _by_account(scores)["2"]["score"] == pytest.approx(10.0)


def test_score_parquet_inputs(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in ("accounts", "metrics"):
        parquet = inputs[key].with_suffix(".parquet")
        pl.read_csv(inputs[key], infer_schema=False).write_parquet(parquet)
        inputs[key] = parquet
    out = tmp_path / "scores.parquet"
    assert main(_argv(inputs, out, "--as-of", "2024-05-01")) == 0
    assert _by_account(pl.read_parquet(out))["1"]["score"] == pytest.approx(70.0)


def test_score_manual_overrides(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides = tmp_path / "overrides.csv"
    overrides.write_text(
        "account_id,action,value,reason,author,created_on,expires_on\n"
        "1,set,20,Escalation,ann,2024-04-01,\n"
        "2,cap,40,Expired,bob,2024-01-01,2024-02-01\n"
    )
    out = tmp_path / "scores.parquet"
    assert main(_argv(inputs, out, "--as-of", "2024-05-01", "--overrides", str(overrides))) == 0
    rows = _by_account(pl.read_parquet(out))
    assert rows["1"]["score"] == pytest.approx(20.0)
    assert rows["1"]["raw_score"] == pytest.approx(70.0)
    assert rows["1"]["grade"] == "Red"
    assert rows["1"]["overrides"] == ["manual"]
    assert rows["2"]["score"] == pytest.approx(90.0)  # expired before the as-of date


def test_score_products_arr_weighted(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Product a: 0.6 * 20 + 0.4 * 100 = 52; b: 0.6 * 60 + 0.4 * 100 = 76 (the company-level
    # relationship applies to each product); ARR 30 and 10: (30 * 52 + 10 * 76) / 40 = 58.
    inputs["metrics"].write_text(
        "account_id,metric,value,as_of,product\n"
        "1,weekly_active_user_share,0.2,2024-05-01,a\n"
        "1,weekly_active_user_share,0.6,2024-05-01,b\n"
        "1,executive_relationship,Strong,2024-05-01,\n"
    )
    products = tmp_path / "products.csv"
    products.write_text("account_id,product,arr\n1,a,30\n1,b,10\n")
    out = tmp_path / "scores.parquet"
    assert main(_argv(inputs, out, "--products", str(products))) == 0
    assert _by_account(pl.read_parquet(out))["1"]["score"] == pytest.approx(58.0)


def test_score_scorecard_folder_uses_assignment(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs["scorecard"] = ROOT / "data" / "scorecards"
    out = tmp_path / "scores.parquet"
    assert main(_argv(inputs, out, "--json")) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["scorecards"] == {"enterprise": 1, "smb": 2}
    assert any("no values for" in w for w in payload["warnings"])


def test_score_warns_about_metrics_absent_from_the_data(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs["metrics"].write_text(
        "account_id,metric,value,as_of\n1,weekly_active_user_share,0.5,2024-05-01\n"
    )
    assert main(_argv(inputs, tmp_path / "s.parquet")) == 0
    err = capsys.readouterr().err
    assert "warning: the metrics file has no values for executive_relationship" in err


# --------------------------------------------------------------------------- bad input


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    return err


def test_missing_file(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs["accounts"] = tmp_path / "nope.csv"
    err = _fails(_argv(inputs, tmp_path / "s.csv"), capsys)
    assert f"{tmp_path / 'nope.csv'}: file not found" in err


def test_unknown_extension(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    txt = tmp_path / "metrics.txt"
    txt.write_text(METRICS)
    inputs["metrics"] = txt
    err = _fails(_argv(inputs, tmp_path / "s.csv"), capsys)
    assert f"{txt}: unknown file extension '.txt': use .csv or .parquet" in err


def test_unknown_output_extension_writes_nothing(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _fails(_argv(inputs, tmp_path / "scores.txt"), capsys)
    assert "scores.txt: unknown file extension '.txt'" in err
    assert not (tmp_path / "scores.txt").exists()


def test_missing_required_column(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs["accounts"].write_text("account_id,name\n1,Acme\n")
    err = _fails(_argv(inputs, tmp_path / "s.csv"), capsys)
    assert f"{inputs['accounts']}: missing required column 'arr' for accounts" in err


def test_non_date_as_of_in_metrics(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs["metrics"].write_text("account_id,metric,value,as_of\n1,nps,3,last week\n")
    err = _fails(_argv(inputs, tmp_path / "s.csv"), capsys)
    assert f"{inputs['metrics']}: column 'as_of': not a date (use YYYY-MM-DD)" in err
    assert "line 2 ('last week')" in err


def test_non_numeric_arr(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs["accounts"].write_text("account_id,name,arr\n1,Acme,1k\n")
    err = _fails(_argv(inputs, tmp_path / "s.csv"), capsys)
    assert f"{inputs['accounts']}: column 'arr': not a number in line 2 ('1k')" in err


def test_invalid_scorecard(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs["scorecard"].write_text(TINY.replace("weight: 60", "weight: -60"))
    out = tmp_path / "s.csv"
    err = _fails(_argv(inputs, out), capsys)
    assert "invalid scorecard" in err
    assert "groups[0].weight" in err and "negative" in err
    assert not out.exists()


def test_unknown_as_of_format(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _fails(_argv(inputs, tmp_path / "s.csv", "--as-of", "05/01/2024"), capsys)
    assert "--as-of: '05/01/2024' is not a date: use YYYY-MM-DD" in err


def test_every_problem_of_every_file_at_once(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs["accounts"].write_text("account_id,name,arr\n1,Acme,1k\n")
    inputs["metrics"].write_text("account_id,metric,value,as_of\n1,nps,3,last week\n")
    inputs["scorecard"].write_text(TINY.replace("weight: 60", "weight: -60"))
    err = _fails(_argv(inputs, tmp_path / "s.csv"), capsys)
    assert "column 'arr'" in err
    assert "column 'as_of'" in err
    assert "invalid scorecard" in err


def test_incomplete_file_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _fails(["score", "--accounts", str(tmp_path / "a.csv")], capsys)
    assert "needs --metrics, --scorecard, --out" in err


# --------------------------------------------------------------------------- database mode


def test_db_mode_calls_history(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[argparse.Namespace] = []

    def score_db_command(args: argparse.Namespace) -> int:
        seen.append(args)
        return 0

    fake = types.ModuleType("engine.cli.history")
    fake.score_db_command = score_db_command  # type: ignore[attr-defined]
    fake.register = lambda subparsers: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "engine.cli.history", fake)
    assert main(["score", "--db", "x.duckdb", "--as-of", "2024-05-01"]) == 0
    assert seen[0].db == "x.duckdb"
    assert seen[0].as_of == "2024-05-01"


def test_db_and_files_together_is_an_error(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _fails(_argv(inputs, tmp_path / "s.csv", "--db", "x.duckdb"), capsys)
    assert "--db: give either files" in err


# --------------------------------------------------------------------------- end to end


def test_subprocess_parquet_to_parquet(inputs: dict[str, Path], tmp_path: Path) -> None:
    metrics = inputs["metrics"].with_suffix(".parquet")
    pl.read_csv(inputs["metrics"], infer_schema=False).write_parquet(metrics)
    inputs["metrics"] = metrics
    out = tmp_path / "scores.parquet"
    argv = _argv(inputs, out, "--as-of", "2024-05-01", "--json")
    done = subprocess.run(
        [sys.executable, "-m", "engine", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["grades"] == {"Yellow": 1, "Green": 1}
    assert _by_account(pl.read_parquet(out))["1"]["score"] == pytest.approx(70.0)

    bad = subprocess.run(
        [sys.executable, "-m", "engine", *argv[:-3], "--as-of", "tomorrow"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2
    assert "--as-of: 'tomorrow' is not a date" in bad.stderr
