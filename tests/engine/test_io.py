"""engine.io: reading and writing contract tables as CSV or Parquet."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.io import (
    read_accounts,
    read_manual_overrides,
    read_metric_values,
    read_product_arr,
    read_renewals,
    read_table,
    write_table,
)
from engine.problems import InputError


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _message(exc: pytest.ExceptionInfo[InputError]) -> str:
    return str(exc.value)


# --------------------------------------------------------------------------- read_table


def test_read_table_reads_csv_cells_as_text(tmp_path: Path) -> None:
    f = _write(tmp_path / "t.csv", "a,b\n1,x\n,y\n")
    frame = read_table(f)
    assert frame.schema == pl.Schema({"a": pl.String, "b": pl.String})
    assert frame.get_column("a").to_list() == ["1", None]  # an empty cell is null


def test_read_table_reads_parquet_by_extension_case_insensitive(tmp_path: Path) -> None:
    frame = pl.DataFrame({"a": [1, 2]})
    frame.write_parquet(tmp_path / "t.PARQUET")
    assert_frame_equal(read_table(tmp_path / "t.PARQUET"), frame)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("absent.csv", None, "file not found"),
        ("t.txt", "a\n1\n", "unknown file extension '.txt': use .csv or .parquet"),
        ("noext", "a\n1\n", "unknown file extension none"),
        ("empty.csv", "", "the file is empty"),
        ("empty.parquet", "", "the file is empty"),
        ("ragged.csv", "a,b\n1,2,3\n", "cannot read as CSV"),
        ("bad.parquet", "not parquet at all", "cannot read as Parquet"),
    ],
)
def test_read_table_names_file_and_problem(
    tmp_path: Path, name: str, content: str | None, expected: str
) -> None:
    path = tmp_path / name
    if content is not None:
        _write(path, content)
    with pytest.raises(InputError) as exc:
        read_table(path)
    assert expected in _message(exc)
    assert str(path) in _message(exc)


def test_read_table_rejects_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "x.csv"
    folder.mkdir()
    with pytest.raises(InputError, match="is a folder"):
        read_table(folder)


# --------------------------------------------------------------------------- accounts


def test_read_accounts_coerces_types(tmp_path: Path) -> None:
    f = _write(
        tmp_path / "accounts.csv",
        "account_id,name,arr,segment,renewal_date,employees,score_hint,since,active\n"
        "42, Acme ,1000.5,Enterprise,2024-09-30,50,0.5,2020-01-01,true\n"
        "7,Beta,,SMB,,7,,2021-02-03,false\n",
    )
    frame = read_accounts(f)
    assert frame.schema["account_id"] == pl.String
    assert frame.schema["arr"] == pl.Float64
    assert frame.schema["renewal_date"] == pl.Date
    # extra attributes are typed when every filled cell parses
    assert frame.schema["employees"] == pl.Int64
    assert frame.schema["score_hint"] == pl.Float64
    assert frame.schema["since"] == pl.Date
    assert frame.schema["active"] == pl.Boolean
    assert frame.row(0, named=True) == {
        "account_id": "42",
        "name": "Acme",
        "arr": 1000.5,
        "segment": "Enterprise",
        "renewal_date": date(2024, 9, 30),
        "employees": 50,
        "score_hint": 0.5,
        "since": date(2020, 1, 1),
        "active": True,
    }
    assert frame.get_column("arr").to_list() == [1000.5, None]


def test_read_accounts_parquet_numeric_id_becomes_text(tmp_path: Path) -> None:
    path = tmp_path / "accounts.parquet"
    pl.DataFrame({"account_id": [1, 2], "name": ["a", "b"], "arr": [10, 20]}).write_parquet(path)
    frame = read_accounts(path)
    assert frame.get_column("account_id").to_list() == ["1", "2"]
    assert frame.schema["arr"] == pl.Float64


def test_read_accounts_missing_column_names_file_column_and_hint(tmp_path: Path) -> None:
    f = _write(tmp_path / "accounts.csv", "Account ID,name\n1,a\n")
    with pytest.raises(InputError) as exc:
        read_accounts(f)
    msg = _message(exc)
    assert str(f) in msg
    assert "missing required columns 'account_id' (found 'Account ID'" in msg
    assert "'arr'" in msg


def test_read_accounts_reports_first_bad_rows_with_values(tmp_path: Path) -> None:
    rows = "\n".join(f"{i},n{i},{'x' if i % 2 else i}" for i in range(1, 15))
    f = _write(tmp_path / "accounts.csv", "account_id,name,arr\n" + rows + "\n")
    with pytest.raises(InputError) as exc:
        read_accounts(f)
    msg = _message(exc)
    assert "column 'arr': not a number in line 2 ('x'), line 4 ('x')" in msg
    assert "and 2 more" in msg  # 7 bad rows, 5 shown


def test_read_accounts_parquet_rows_are_numbered_from_one(tmp_path: Path) -> None:
    path = tmp_path / "accounts.parquet"
    pl.DataFrame(
        {"account_id": ["a", "b"], "name": ["a", "b"], "arr": ["1", "lots"]}
    ).write_parquet(path)
    with pytest.raises(InputError, match=r"not a number in row 2 \('lots'\)"):
        read_accounts(path)


def test_read_accounts_reports_every_rule_at_once(tmp_path: Path) -> None:
    f = _write(tmp_path / "accounts.csv", "account_id,name,arr\n1,a,-5\n1,b,3\n,c,1\n")
    with pytest.raises(InputError) as exc:
        read_accounts(f)
    problems = [str(p) for p in exc.value.problems]
    assert len(problems) == 3
    assert any("column 'account_id': a value is required, empty in line 4" in p for p in problems)
    assert any("column 'arr': must not be negative, in line 2 (-5.0)" in p for p in problems)
    assert any("duplicate key" in p and "line 2 ('1'), line 3 ('1')" in p for p in problems)


def test_read_accounts_rejects_wrong_parquet_type(tmp_path: Path) -> None:
    path = tmp_path / "accounts.parquet"
    pl.DataFrame(
        {"account_id": ["a"], "name": ["a"], "arr": [1.0], "renewal_date": [3]}
    ).write_parquet(path)
    with pytest.raises(InputError, match="column 'renewal_date': expected dates"):
        read_accounts(path)


def test_read_accounts_needs_rows(tmp_path: Path) -> None:
    f = _write(tmp_path / "accounts.csv", "account_id,name,arr\n")
    with pytest.raises(InputError, match="no data rows"):
        read_accounts(f)


# --------------------------------------------------------------------------- metric values


def test_read_metric_values_moves_text_to_level(tmp_path: Path) -> None:
    f = _write(
        tmp_path / "metrics.csv",
        "account_id,metric,value,as_of,product\n"
        "1,nps,30,2024-05-01,\n"
        "1,executive_relationship, Strong ,2024-05-01,\n"
        "1,wau,,2024-05-01T09:30:00,core\n"
        "2,wau,nan,2024-05-02 10:00:00,core\n",
    )
    frame = read_metric_values(f)
    expected = pl.DataFrame(
        {
            "account_id": ["1", "1", "1", "2"],
            "metric": ["nps", "executive_relationship", "wau", "wau"],
            "value": [30.0, None, None, None],
            "level": [None, "Strong", None, None],
            "as_of": [date(2024, 5, 1)] * 3 + [date(2024, 5, 2)],
            "product": [None, None, "core", "core"],
        },
        schema_overrides={"level": pl.String, "product": pl.String},
    )
    assert_frame_equal(frame, expected)


def test_read_metric_values_keeps_given_levels_in_parquet(tmp_path: Path) -> None:
    path = tmp_path / "metrics.parquet"
    pl.DataFrame(
        {
            "account_id": [1, 2],
            "metric": ["m", "m"],
            "value": [1, None],
            "level": [None, "Weak"],
            "as_of": [date(2024, 1, 1)] * 2,
            "product": ["", "p"],
        }
    ).write_parquet(path)
    frame = read_metric_values(path)
    assert frame.schema["value"] == pl.Float64
    assert frame.get_column("level").to_list() == [None, "Weak"]
    assert frame.get_column("account_id").to_list() == ["1", "2"]
    assert frame.get_column("product").to_list() == [None, "p"]  # empty = company level


def test_read_metric_values_datetime_column_keeps_the_date(tmp_path: Path) -> None:
    path = tmp_path / "metrics.parquet"
    pl.DataFrame(
        {
            "account_id": ["a"],
            "metric": ["m"],
            "value": [1.0],
            "as_of": pl.Series([date(2024, 3, 1)]).cast(pl.Datetime),
        }
    ).write_parquet(path)
    assert read_metric_values(path).get_column("as_of").to_list() == [date(2024, 3, 1)]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "1,m,3,01/05/2024\n",
            "column 'as_of': not a date (use YYYY-MM-DD) in line 2 ('01/05/2024')",
        ),
        ("1,m,3,2024-02-30\n", "not a date (use YYYY-MM-DD) in line 2 ('2024-02-30')"),
        ("1,m,3,\n", "column 'as_of': a value is required, empty in line 2"),
        (",m,3,2024-01-01\n", "column 'account_id': a value is required"),
    ],
)
def test_read_metric_values_bad_cells(tmp_path: Path, body: str, expected: str) -> None:
    f = _write(tmp_path / "metrics.csv", "account_id,metric,value,as_of\n" + body)
    with pytest.raises(InputError) as exc:
        read_metric_values(f)
    assert expected in _message(exc)
    assert str(f) in _message(exc)


def test_read_metric_values_missing_value_column(tmp_path: Path) -> None:
    f = _write(tmp_path / "metrics.csv", "account_id,metric,as_of\n1,m,2024-01-01\n")
    with pytest.raises(InputError, match="missing required column 'value' for metric_values"):
        read_metric_values(f)


# --------------------------------------------------------------------------- other tables


def test_read_manual_overrides(tmp_path: Path) -> None:
    f = _write(
        tmp_path / "overrides.csv",
        "account_id,action,value,created_on,expires_on\n1,Grade,Red,2024-01-01,\n2,cap,60,2024-01-01,2024-02-01\n",
    )
    frame = read_manual_overrides(f)
    assert frame.get_column("action").to_list() == ["grade", "cap"]
    assert frame.schema["expires_on"] == pl.Date
    assert frame.schema["reason"] == pl.String  # promised by the contract, null here
    bad = _write(tmp_path / "bad.csv", "account_id,action,value,created_on\n1,boost,9,2024-01-01\n")
    with pytest.raises(InputError, match="must be one of grade, cap, set, in line 2"):
        read_manual_overrides(bad)


def test_read_product_arr_unique_key(tmp_path: Path) -> None:
    f = _write(tmp_path / "p.csv", "account_id,product,arr\n1,a,10\n1,a,20\n1,b,5\n")
    with pytest.raises(InputError, match="duplicate key: each account_id \\+ product"):
        read_product_arr(f)


def test_read_renewals_may_be_empty(tmp_path: Path) -> None:
    f = _write(tmp_path / "r.csv", "account_id,renewal_date,arr_before,arr_after\n")
    frame = read_renewals(f)
    assert frame.height == 0
    assert frame.schema["renewal_date"] == pl.Date
    assert frame.schema["product"] == pl.String


# --------------------------------------------------------------------------- write_table


def _scores() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "account_id": ["1", "2", "3"],
            "score": [70.0, None, 12.5],
            "missing": [["a", "b"], [], None],
            "as_of": [date(2024, 5, 1)] * 3,
        },
        schema_overrides={"missing": pl.List(pl.String)},
    )


def test_write_table_csv_joins_lists(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "scores.csv"
    write_table(_scores(), out)
    text = out.read_text().splitlines()
    assert text[0] == "account_id,score,missing,as_of"
    assert text[1] == "1,70.0,a;b,2024-05-01"
    assert text[2] == '2,,"",2024-05-01'
    assert text[3] == "3,12.5,,2024-05-01"
    assert list(tmp_path.joinpath("sub").iterdir()) == [out]  # no temporary file left behind


def test_write_table_parquet_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "scores.parquet"
    write_table(_scores(), out)
    assert_frame_equal(pl.read_parquet(out), _scores())


def test_write_table_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"unknown file extension '\.xlsx'"):
        write_table(_scores(), tmp_path / "scores.xlsx")
    assert not list(tmp_path.iterdir())
