"""What users do: filter the portfolio, record a subjective score or a manual override, and
what a viewer cannot do however the session is forged."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from engine import store
from tests.pages.helpers import errors, infos, login, metric, open_page, titles


def _count(value: str) -> int:
    return int(value.replace(",", ""))


@pytest.mark.usefixtures("app_env")
def test_filters_narrow_the_portfolio(demo_db: Path) -> None:
    at = login("leader")
    everyone = _count(metric(at, "Accounts"))
    at.multiselect(key="filter_segment").set_value(["SMB"]).run()
    assert not at.exception
    smb = _count(metric(at, "Accounts"))
    accounts = store.load_accounts(store.cursor(demo_db))
    assert 0 < smb < everyone
    assert smb <= accounts.filter(pl.col("segment") == "SMB").height

    # The filters follow the user to other pages.
    open_page(at, "pages/distributions.py")
    assert not at.exception
    assert at.multiselect(key="filter_segment").value == ["SMB"]
    assert "Segment: SMB" in at.caption[0].value.replace("\\", "")

    # A combination that matches nobody explains itself.
    enterprise_csm = accounts.filter(pl.col("segment") == "Enterprise").get_column("csm")[0]
    at.multiselect(key="filter_csm").set_value([enterprise_csm]).run()
    assert not at.exception
    assert any("No account matches the filters" in i for i in infos(at))

    at.button(key="filter_clear").click().run()
    assert not at.exception
    assert at.multiselect(key="filter_segment").value == []


@pytest.mark.usefixtures("app_env")
def test_grade_filter_and_renewal_window() -> None:
    at = login("leader")
    everyone = _count(metric(at, "Accounts"))
    at.multiselect(key="filter_grade").set_value(["Red"]).run()
    red = _count(metric(at, "Accounts"))
    at.selectbox(key="filter_renewal").set_value("180").run()
    assert not at.exception
    assert _count(metric(at, "Accounts")) <= red < everyone


@pytest.fixture
def writable_app(monkeypatch: pytest.MonkeyPatch, writable_db: Path) -> Path:
    monkeypatch.setenv("VITALS_DB", str(writable_db))
    monkeypatch.delenv("VITALS_AUTH_FILE", raising=False)
    monkeypatch.delenv("VITALS_DEMO", raising=False)
    return writable_db


def _some_account(db: Path) -> str:
    """An Enterprise customer (its scorecard has the subjective Executive relationship)."""
    accounts = store.load_accounts(store.cursor(db))
    return str(accounts.filter(pl.col("segment") == "Enterprise").get_column("account_id")[0])


def _open_360(user: str, account_id: str) -> AppTest:
    at = login(user)
    at.session_state["vitals_account"] = account_id
    open_page(at, "pages/customer_360.py")
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_subjective_score_appears_in_the_customer_360(writable_app: Path) -> None:
    account_id = _some_account(writable_app)
    at = _open_360("ops", account_id)
    at.selectbox(key="c360_subj_metric").set_value("executive_relationship")
    at.radio(key="c360_subj_level").set_value("Weak")
    at.text_area(key="c360_subj_comment").input("Sponsor declined the QBR twice")
    next(b for b in at.button if b.label == "Save subjective score").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not errors(at), errors(at)
    assert any("Saved: Executive relationship = Weak" in s.value for s in at.success)

    # Stored as a metric value with author, comment and source ...
    rows = store.load_metric_values(
        store.cursor(writable_app), metrics=["executive_relationship"], accounts=[account_id]
    ).filter(pl.col("source") == "subjective")
    assert rows.height == 1
    row = rows.row(0, named=True)
    assert (row["level"], row["author"], row["comment"]) == (
        "Weak",
        "ops",
        "Sponsor declined the QBR twice",
    )

    # ... and in the score at once: the scorecard shows the level at today's date.
    table = at.dataframe[0].value  # the scorecard is the page's first table
    rel = table[table["label"] == "Executive relationship"]
    assert list(rel["value"]) == ["Weak"]
    log = next(
        d.value for d in at.dataframe if "comment" in d.value.columns and "level" in d.value.columns
    )
    assert "Sponsor declined the QBR twice" in list(log["comment"])


def test_a_manual_override_shows_up_in_the_score(writable_app: Path) -> None:
    account_id = _some_account(writable_app)
    at = _open_360("ops", account_id)
    at.selectbox(key="c360_ovr_grade").set_value("Red")
    at.text_area(key="c360_ovr_reason").input("Champion left; renewal at risk")
    next(b for b in at.button if b.label == "Save override").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Red" in metric(at, "Grade")
    assert any("Manual override" in w.value and "Champion left" in w.value for w in at.warning)
    audit = store.audit_entries(store.cursor(writable_app))
    assert "manual_override.add" in audit.get_column("action").to_list()


def test_a_viewer_sees_no_write_controls_even_with_forged_roles(writable_app: Path) -> None:
    account_id = _some_account(writable_app)
    at = login("leader")
    # Forge everything a client-side role check might read.
    at.session_state["roles"] = ["admin", "editor"]
    at.session_state["role"] = "admin"
    at.session_state["vitals_role"] = "editor"
    at.session_state["vitals_account"] = account_id
    open_page(at, "pages/customer_360.py")
    assert not at.exception
    assert titles(at)[0] == "Customer 360"
    labels = [b.label for b in at.button]
    assert "Save subjective score" not in labels and "Save override" not in labels
    with pytest.raises(ValueError):
        at.switch_page("pages/admin.py")  # still not an admin


def test_a_forged_username_signs_the_session_out(writable_app: Path) -> None:
    at = login("leader")
    at.session_state["username"] = "admin"  # no signature for admin in this session
    at.run()
    assert not at.exception
    assert [w.label for w in at.text_input] == ["Username", "Password"]


def _write_as_forged_viewer(db: str, account_id: str, forge_username: bool) -> None:
    """Runs inside AppTest: a real viewer session, forged, then the write functions."""
    from datetime import date

    import streamlit as st

    from ui import auth, cached

    st.session_state["authentication_status"] = True
    st.session_state["username"] = "leader"
    auth._bind("leader")  # what a successful password check does
    st.session_state["roles"] = ["admin"]
    st.session_state["vitals_role"] = "admin"
    if forge_username:
        st.session_state["username"] = "ops"
    src = f"db:{db}"
    if st.button("subjective", key="w1"):
        cached.record_subjective_score(
            src,
            account_id=account_id,
            metric="executive_relationship",
            level="Weak",
            comment="forged",
            on=date.today(),
        )
        st.write("WROTE")
    if st.button("override", key="w2"):
        cached.record_manual_override(
            src,
            account_id=account_id,
            action="grade",
            value="Red",
            reason="forged",
            on=date.today(),
            expires_on=None,
        )
        st.write("WROTE")


@pytest.mark.parametrize("forge_username", [False, True], ids=["forged-roles", "forged-username"])
@pytest.mark.parametrize("button", ["w1", "w2"], ids=["subjective", "override"])
def test_a_viewers_write_is_refused_on_the_server(
    writable_app: Path, forge_username: bool, button: str
) -> None:
    account_id = _some_account(writable_app)
    con = store.cursor(writable_app)
    before = (store.table_counts(con)["metric_values"], store.table_counts(con)["manual_overrides"])
    at = AppTest.from_function(
        _write_as_forged_viewer,
        args=(str(writable_app), account_id, forge_username),
        default_timeout=60,
    )
    at.run()
    at.button(key=button).click().run()
    assert not at.exception, [e.value for e in at.exception]
    expected = "Please sign in" if forge_username else "needs the editor role"
    assert any(expected in e for e in errors(at)), errors(at)
    assert "WROTE" not in [m.value for m in at.markdown]
    after = (store.table_counts(con)["metric_values"], store.table_counts(con)["manual_overrides"])
    assert after == before


def test_an_upload_is_checked_before_anything_is_written(writable_app: Path) -> None:
    con = store.cursor(writable_app)
    before = store.table_checksums(con)["accounts"]
    at = login("ops")
    open_page(at, "pages/data.py")
    bad = b"account_id,name,arr\nN-1,New Co,-5\nN-1,Dup Co,10\n"
    at.file_uploader(key="data_upload_accounts").set_value(("mine.csv", bad, "text/csv")).run()
    at.button(key="data_check").click().run()
    assert not at.exception, [e.value for e in at.exception]
    problems = next(d.value for d in at.dataframe if "problem" in d.value.columns)["problem"]
    text = " ".join(problems)
    assert "mine.csv" in text and "arr" in text and "vitals-upload" not in text
    assert not [b for b in at.button if b.key == "data_import"]
    assert store.table_checksums(con)["accounts"] == before

    good = b"account_id,name,arr,segment\nN-1,New Co,1200,SMB\n"
    at.file_uploader(key="data_upload_accounts").set_value(("mine.csv", good, "text/csv")).run()
    at.button(key="data_check").click().run()
    assert any("Every file passed" in s.value for s in at.success)
    at.button(key="data_import").click().run()
    assert not at.exception, [e.value for e in at.exception]
    accounts = store.load_accounts(con)
    assert accounts.filter(pl.col("account_id") == "N-1").get_column("arr").to_list() == [1200.0]


@pytest.mark.usefixtures("app_env")
def test_a_viewer_cannot_upload() -> None:
    at = login("leader")
    open_page(at, "pages/data.py")
    assert not at.exception
    assert not at.file_uploader
    assert any("Only editors" in i for i in infos(at))
