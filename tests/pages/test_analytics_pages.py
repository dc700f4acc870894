"""The Backtest, Drivers and Optimizer pages in AppTest, on a demo with enough renewals."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import store
from tests.pages.helpers import errors, login, open_page, titles

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def analytics_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine import demo

    path = tmp_path_factory.mktemp("analytics") / "vitals.duckdb"
    demo.build(path, n_accounts=400, weeks=60, seed=7, scorecards=ROOT / "data" / "scorecards")
    store.close(path)
    return path


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, analytics_db: Path, tmp_path: Path) -> Iterator[Path]:
    """A writable copy of the analytics demo, in demo-login mode."""
    target = tmp_path / "vitals.duckdb"
    shutil.copyfile(analytics_db, target)
    monkeypatch.setenv("VITALS_DB", str(target))
    for var in ("VITALS_AUTH_FILE", "VITALS_COOKIE_KEY", "VITALS_DEMO"):
        monkeypatch.delenv(var, raising=False)
    yield target
    store.close(target)


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _markdown(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_backtest_page_shows_auc_bands_and_charts(env: Path) -> None:
    at = open_page(login("leader"), "pages/backtest.py")
    assert not at.exception, [e.value for e in at.exception]
    assert titles(at) == ["Backtest"]
    auc = float(_metric(at, "AUC"))
    assert 0.7 < auc <= 1.0
    assert "–" in _metric(at, "95% interval")
    assert len(at.get("plotly_chart")) >= 5  # bands, calibration, lift, group AUC, group bands
    at.selectbox(key="backtest_group").set_value("roi").run()
    assert not at.exception


def test_backtest_of_the_designer_draft(env: Path) -> None:
    at = login("ops")
    text = (ROOT / "data" / "scorecards" / "default.yaml").read_text()
    at.session_state["designer_draft_yaml"] = text.replace("weight: 35", "weight: 90")
    open_page(at, "pages/backtest.py")
    assert not at.exception, [e.value for e in at.exception]
    assert at.radio(key="backtest_source").value == "designer"
    draft_auc = float(_metric(at, "AUC"))
    at.radio(key="backtest_source").set_value("sidebar").run()
    assert not at.exception
    assert float(_metric(at, "AUC")) != draft_auc


def test_an_unreadable_draft_is_an_error_not_an_exception(env: Path) -> None:
    at = login("ops")
    at.session_state["designer_draft_yaml"] = "groups: [oops"
    open_page(at, "pages/backtest.py")
    assert not at.exception
    assert any("cannot be read" in e for e in errors(at))


def test_a_horizon_before_any_snapshot_explains_itself(env: Path) -> None:
    at = open_page(login("leader"), "pages/backtest.py")
    at.number_input(key="backtest_horizon").set_value(720).run()
    assert not at.exception
    assert any("smaller horizon" in w.value for w in at.warning)


def test_drivers_page_shows_sentences_and_coefficients(env: Path) -> None:
    at = open_page(login("leader"), "pages/drivers.py")
    assert not at.exception, [e.value for e in at.exception]
    assert titles(at) == ["Drivers"]
    text = _markdown(at)
    assert "Strongest to weakest link with renewal" in text
    assert "Each 10 points of Adoption go with" in text
    assert len(at.get("plotly_chart")) >= 3


def _run_optimizer(at):
    open_page(at, "pages/optimizer.py")
    assert not at.exception, [e.value for e in at.exception]
    at.button(key="optimizer_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_optimizer_page_compares_current_and_suggested(env: Path) -> None:
    at = _run_optimizer(login("leader"))
    assert titles(at) == ["Optimizer"]
    for label in ("Current scorecard", "Suggested weights", "Unconstrained logistic"):
        assert 0.5 < float(_metric(at, label)) <= 1.0
    assert at.button(key="optimizer_create_draft").disabled  # viewers cannot create drafts


def _save_as_forged_viewer(db: str, yaml_text: str) -> None:
    """Runs inside AppTest: a real viewer session with forged roles, then the write."""
    import streamlit as st

    from ui import analytics_cached, auth

    st.session_state["authentication_status"] = True
    st.session_state["username"] = "leader"
    auth._bind("leader")  # what a successful password check does
    st.session_state["roles"] = ["admin"]
    st.session_state["vitals_role"] = "admin"
    if st.button("save", key="w"):
        analytics_cached.save_draft(f"db:{db}", yaml_text, comment="forged")
        st.write("WROTE")


def test_a_viewer_cannot_create_a_draft_even_with_a_forged_session(env: Path) -> None:
    from streamlit.testing.v1 import AppTest

    before = store.scorecard_versions(store.cursor(env)).height
    text = (
        (ROOT / "data" / "scorecards" / "default.yaml")
        .read_text()
        .replace("weight: 35", "weight: 80")
    )
    at = AppTest.from_function(_save_as_forged_viewer, args=(str(env), text), default_timeout=60)
    at.run()
    at.button(key="w").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("needs the editor role" in e.lower() for e in errors(at)), errors(at)
    assert "WROTE" not in [m.value for m in at.markdown]
    assert store.scorecard_versions(store.cursor(env)).height == before


def test_an_editor_creates_a_draft_that_is_not_activated(env: Path) -> None:
    con = store.cursor(env)
    active = {k: v.version for k, v in store.active_scorecard_versions(con).items()}
    at = _run_optimizer(login("ops"))
    at.button(key="optimizer_create_draft").click().run()
    assert not at.exception, [e.value for e in at.exception]
    versions = store.scorecard_versions(con)
    drafts = versions.filter(versions["status"] == "draft")
    assert drafts.height == 1 and "optimizer suggestion" in drafts["comment"][0]
    assert {k: v.version for k, v in store.active_scorecard_versions(con).items()} == active
