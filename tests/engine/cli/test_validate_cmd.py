"""`python -m engine validate SCORECARD`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.cli import main

ROOT = Path(__file__).resolve().parents[3]
SCORECARDS = ROOT / "data" / "scorecards"

BAD = """\
id: bad
name: Bad
groups:
  - id: adoption
    weight: -1
    measures:
      - id: breadth
        metric: weekly_active_user_share
        weight: 0
        map: {linear: [[1, 0], [0, 100]]}
"""

TINY = """\
id: tiny
name: Tiny
groups:
  - id: adoption
    weight: 1
    measures:
      - id: breadth
        metric: weekly_active_user_share
        weight: 1
        map: {linear: [[0, 0], [1, 100]]}
"""


def test_validate_folder_of_default_scorecards(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(SCORECARDS)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("valid: ")
    assert "3 scorecards: default, enterprise, smb" in out
    assert err == ""


def test_validate_one_file_resolves_assignment_in_its_folder(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["validate", str(SCORECARDS / "default.yaml")]) == 0
    assert "1 scorecard: default" in capsys.readouterr().out


def test_validate_one_file_reports_unknown_assignment_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(SCORECARDS / "default.yaml", tmp_path / "default.yaml")
    assert main(["validate", str(tmp_path / "default.yaml")]) == 2
    err = capsys.readouterr().err
    assert "assignment[0].scorecard" in err
    assert "'enterprise'" in err


def test_validate_lists_every_problem_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(BAD)
    assert main(["validate", str(f)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "invalid scorecard (3 problem(s))" in err
    assert "groups[0].weight" in err
    assert "groups[0].measures" in err
    assert "groups[0].measures[0].map.linear[1]" in err


def test_validate_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(BAD)
    assert main(["validate", str(f), "--json"]) == 2
    payload = json.loads(capsys.readouterr().out)
    assert payload["valid"] is False
    assert {p["path"] for p in payload["problems"]} >= {"groups[0].weight"}

    good = tmp_path / "tiny.yaml"
    good.write_text(TINY)
    assert main(["validate", str(good), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["valid"] is True
    assert payload["scorecards"][0]["id"] == "tiny"
    assert payload["scorecards"][0]["measures"] == 1


def test_validate_yaml_syntax_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text("groups: [\n")
    assert main(["validate", str(f)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_validate_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_validate_against_known_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "tiny.yaml"
    f.write_text(TINY)
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("account_id,metric,value,as_of\n1,nps,3,2024-01-01\n")
    assert main(["validate", str(f), "--metrics", str(metrics)]) == 2
    assert "unknown metric 'weekly_active_user_share'" in capsys.readouterr().err
