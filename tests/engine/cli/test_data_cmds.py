"""The data commands: demo, ensure-demo, import, score --db, backfill, quality. A refused import
and an import killed half-way leave every table with identical row counts and checksums."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from engine import store
from engine.cli import main

from ..demo_db import END, demo_db

ROOT = Path(__file__).resolve().parents[3]


def _run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def _checksums(db: Path) -> dict[str, tuple[int, int]]:
    sums = store.table_checksums(store.cursor(db))
    store.close(db)
    return sums


def test_demo_and_ensure_demo(tmp_path: Path, capsys) -> None:
    db = tmp_path / "d.duckdb"
    args = ["--db", str(db), "--accounts", "60", "--weeks", "3"]
    assert main(["ensure-demo", *args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["generated"] is True and out["rows"]["accounts"] == 60
    assert out["history_rows"] > 0
    assert main(["ensure-demo", *args]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main(["demo", *args, "--end", "2025-06-29"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["demo", *args, "--end", "2025-06-29", "--force", "--no-history", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["last_as_of"] == "2025-06-29" and "history_rows" not in out
    assert main(["demo", *args, "--end", "June", "--force"]) == 2
    store.close(db)


def test_a_refused_import_changes_nothing(tmp_path: Path) -> None:
    db = demo_db(tmp_path)
    before = _checksums(db)
    bad = tmp_path / "metrics.csv"
    bad.write_text(
        "account_id,metric,value,as_of\nA000001,nps,10,2024-01-07\nnobody,nps,-500,2024-01-07\n"
    )
    done = _run("import", "--db", str(db), "--metrics", str(bad))
    assert done.returncode == 2, done.stderr
    assert "metrics.csv" in done.stderr and "line 3" in done.stderr
    assert "unknown account" in done.stderr and "out of range" in done.stderr
    assert _checksums(db) == before


def test_an_import_killed_half_way_changes_nothing(tmp_path: Path) -> None:
    db = demo_db(tmp_path)
    con = store.cursor(db)
    accounts = store.load_accounts(con).with_columns(pl.col("arr") * 2)
    store.close(db)
    before = _checksums(db)
    files = tmp_path / "in"
    files.mkdir()
    accounts.write_parquet(files / "accounts.parquet")
    pl.DataFrame(
        {"account_id": accounts["account_id"], "metric": "nps", "value": 42.0, "as_of": END}
    ).write_csv(files / "metrics.csv")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine",
            "import",
            "--db",
            str(db),
            "--accounts",
            str(files / "accounts.parquet"),
            "--metrics",
            str(files / "metrics.csv"),
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "VITALS_TEST_WRITE_DELAY": "3"},  # a pause after each table
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 90
        seen = ""
        while "[write-pause] metric_values" not in seen and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen += line
        assert "[write-pause] metric_values" in seen, (
            seen
        )  # accounts and metrics written, uncommitted
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert _checksums(db) == before
    # and the same import, not interrupted, does change the database
    done = _run(
        "import",
        "--db",
        str(db),
        "--accounts",
        str(files / "accounts.parquet"),
        "--metrics",
        str(files / "metrics.csv"),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == {"accounts": 200, "metric_values": 200}
    after = _checksums(db)
    assert after["accounts"] != before["accounts"]
    assert after["metric_values"] != before["metric_values"]


def test_busy_database_exits_3(tmp_path: Path) -> None:
    db = tmp_path / "busy.duckdb"
    store.connect(db)  # this test process holds the file
    try:
        done = _run("score", "--db", str(db), env={"VITALS_BUSY_TIMEOUT": "0.2"})
        assert done.returncode == 3, done.stderr
        assert "busy" in done.stderr and "was not changed" in done.stderr
    finally:
        store.close(db)


def test_score_db_backfill_and_quality(tmp_path: Path, capsys) -> None:
    db = demo_db(tmp_path)
    assert main(["score", "--db", str(db), "--as-of", "2025-06-22", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["as_of"] == "2025-06-22" and out["accounts"] == sum(out["grades"].values())
    assert main(["score", "--db", str(db)]) == 0
    assert f"as of {END}" in capsys.readouterr().out
    assert main(["score", "--db", str(db), "--as-of", "tomorrow"]) == 2
    assert "--as-of" in capsys.readouterr().err
    assert main(["backfill", "--db", str(db), "--weeks", "3", "--json"]) == 0
    cap = capsys.readouterr()
    out = json.loads(cap.out)
    assert out["dates"] == 3 and out["last"] == END.isoformat() and out["rows"] > 0
    assert "backfill: 3/3" in cap.err
    assert main(["backfill", "--db", str(db), "--from", "2025-06-01", "--to", "2025-05-01"]) == 2
    assert main(["quality", "--db", str(db), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["as_of"] == END.isoformat() and len(out["metrics"]) == 16
    assert main(["quality", "--db", str(db)]) == 0
    assert "weekly_active_user_share" in capsys.readouterr().out
    store.close(db)


def test_import_sources_from_the_command_line(tmp_path: Path, capsys) -> None:
    src = demo_db(tmp_path, history=False)
    con = store.cursor(src)
    folder = tmp_path / "sources"
    folder.mkdir()
    for table in ("usage_weekly", "entitlements"):
        store.load_table(con, table).write_parquet(folder / f"{table}.parquet")
    store.load_accounts(con).write_csv(tmp_path / "accounts.csv")
    store.close(src)
    db = tmp_path / "new.duckdb"
    code = main(
        [
            "import",
            "--db",
            str(db),
            "--accounts",
            str(tmp_path / "accounts.csv"),
            "--sources",
            str(folder),
            "--as-of",
            END.isoformat(),
            "--weeks",
            "2",
            "--json",
        ]
    )
    assert code == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert out["as_of_dates"] == ["2025-06-22", "2025-06-29"]
    assert out["derived"]["weekly_active_user_share"] > 0
    assert out["derived"]["nps"] == 0  # no surveys given
    store.close(db)


@pytest.mark.parametrize("flag", ["--weeks", "--as-of"])
def test_import_flag_errors(tmp_path: Path, capsys, flag: str) -> None:
    value = "0" if flag == "--weeks" else "someday"
    assert (
        main(
            ["import", "--db", str(tmp_path / "x.duckdb"), "--sources", str(tmp_path), flag, value]
        )
        == 2
    )
    assert flag in capsys.readouterr().err
    store.close(tmp_path / "x.duckdb")
