"""The scorecard designer page (AppTest): the live preview follows the draft, writes are
refused on the server for viewers whatever the session holds, invalid drafts cannot be saved,
and versions can be saved, activated, compared and reverted."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from engine import store

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "designer.py")
APP = str(ROOT / "app.py")
SESSION_ID = "test session id"  # AppTest's session id: sessions are signed with it


@pytest.fixture(scope="module")
def db(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the shared demo database (these tests write versions), the app pointed at it
    for this module."""
    path = tmp_path_factory.mktemp("designer") / "vitals.duckdb"
    shutil.copyfile(demo_db, path)
    old = os.environ.get("VITALS_DB")
    os.environ["VITALS_DB"] = str(path)
    yield path
    store.close(path)
    if old is None:
        os.environ.pop("VITALS_DB", None)
    else:
        os.environ["VITALS_DB"] = old


def login(at: AppTest, username: str) -> AppTest:
    """Sign ``username`` in the way ui.auth does after a password check."""
    from ui import auth, state

    at.session_state[state.AUTH_STATUS] = True
    at.session_state[state.AUTH_USERNAME] = username
    at.session_state[state.AUTH_SIGNATURE] = auth.sign(username, SESSION_ID)
    return at


def page(username: str) -> AppTest:
    at = login(AppTest.from_file(PAGE, default_timeout=120), username)
    return at.run()


def versions(db: Path) -> list[dict[str, Any]]:
    return store.scorecard_versions(store.cursor(db)).to_dicts()


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def weight_key(at: AppTest, group: str) -> str:
    return next(n.key for n in at.number_input if n.key and n.key.endswith(f".g.{group}.w"))


def open_tab(at: AppTest, label: str) -> AppTest:
    """Open an editor tab (only the open tab is drawn)."""
    from ui import designer

    at.session_state[designer.TAB_KEY] = label
    return at.run()


def wk(widgets: Any, suffix: str) -> str:
    """The key of the designer widget whose key ends with ``suffix``."""
    return next(w.key for w in widgets if w.key and w.key.endswith("." + suffix))


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


# --------------------------------------------------------------------------- preview


def test_a_weight_change_changes_the_preview(db: Path) -> None:
    from ui import designer

    at = page("ops")
    no_exception(at)
    assert metric(at, "Accounts changing grade") == "0"
    assert at.session_state[designer.PREVIEW_MS] > 0
    charts_before = len(at.get("plotly_chart"))
    assert charts_before >= 3  # distribution, histogram, transition matrix (and the map curve)

    at.number_input(key=weight_key(at, "adoption")).set_value(400.0).run()
    no_exception(at)
    assert int(metric(at, "Accounts changing grade").replace(",", "")) > 0
    assert metric(at, "ARR changing grade") != "$0"
    draft = at.session_state[designer.DRAFTS]["default"]
    assert draft.group("adoption").weight == 400.0
    assert any("unsaved changes" in m.value for m in at.markdown)
    # the accounts that change grade are listed with a reason
    table = next(d.value for d in at.dataframe if "Why" in d.value.columns)
    assert len(table) > 0 and table["Why"].str.contains("Adoption").any()

    # back to the saved weight: no account changes grade any more
    at.number_input(key=weight_key(at, "adoption")).set_value(35.0).run()
    assert metric(at, "Accounts changing grade") == "0"


def test_a_policy_change_moves_the_preview_too(db: Path) -> None:
    at = open_tab(page("ops"), "Policies")
    at.radio(key=wk(at.radio, "missing")).set_value("zero").run()
    no_exception(at)
    assert int(metric(at, "Scores that move").replace(",", "")) > 0


def test_an_override_built_in_the_designer_applies_in_the_preview(db: Path) -> None:
    from ui import designer

    at = open_tab(page("ops"), "Overrides")
    at.text_input(key=wk(at.text_input, "ob.id")).set_value("everyone_red")
    at.text_input(key=wk(at.text_input, "ob.reason")).set_value("A test rule")
    at.selectbox(key=wk(at.selectbox, "ob.0.target")).set_value("overall")
    at.run()
    at.selectbox(key=wk(at.selectbox, "ob.0.op")).set_value(">=")
    at.text_input(key=wk(at.text_input, "ob.0.value")).set_value("0")
    at.run()
    at.button(key=wk(at.button, "ob.add")).click().run()
    no_exception(at)
    draft = at.session_state[designer.DRAFTS]["default"]
    assert draft.overrides[-1].id == "everyone_red"
    assert any("everyone_red" in m.value for m in at.markdown)
    dist = metric(at, "Accounts changing grade")
    assert int(dist.replace(",", "")) > 0
    # remove it again
    at.button(
        key=next(
            b.key
            for b in at.button
            if b.key and ".ov.del." in b.key and b.key.endswith("everyone_red")
        )
    ).click().run()
    assert all(
        o.id != "everyone_red" for o in at.session_state[designer.DRAFTS]["default"].overrides
    )


def test_edits_survive_switching_editor_tabs(db: Path) -> None:
    from ui import designer

    at = page("ops")
    at.number_input(key=weight_key(at, "roi")).set_value(55.0).run()
    open_tab(at, "Grading")
    assert not at.number_input  # the weights are not drawn while another tab is open
    assert at.session_state[designer.DRAFTS]["default"].group("roi").weight == 55.0
    open_tab(at, "Weights")
    assert at.number_input(key=weight_key(at, "roi")).value == 55.0
    no_exception(at)


# --------------------------------------------------------------------------- refusals


def test_a_viewer_is_refused_on_the_server_even_with_a_forged_session(db: Path) -> None:
    from ui import designer, state

    before = len(versions(db))
    at = AppTest.from_file(PAGE, default_timeout=120)
    login(at, "leader")  # a real viewer session ...
    # ... that forges everything a save reads: a draft, a comment, a role, the editor's name.
    at.session_state["role"] = "editor"
    at.session_state["vitals_role"] = "admin"
    at.session_state[designer.COMMENT_KEY] = "forged"
    at.session_state[designer.ACTIVATE_KEY] = True
    at.run()
    no_exception(at)
    assert any("needs the editor role" in e.value for e in at.error)
    assert not [b for b in at.button if b.key == designer.SAVE_KEY]
    assert not at.number_input  # no editor at all

    forged = AppTest.from_file(PAGE, default_timeout=120)
    login(forged, "leader")
    forged.session_state[state.AUTH_USERNAME] = "ops"  # the name changed, the signature did not
    forged.run()
    assert any("sign in" in e.value for e in forged.error)
    assert not [b for b in forged.button if b.key == designer.SAVE_KEY]
    assert len(versions(db)) == before


def _save_as(src: str, activate: bool, invalid: bool = False) -> None:
    """Run in AppTest: call the designer's write directly, as a forged request would. The
    session is whoever the test signed in."""
    from datetime import date

    import streamlit as st

    from engine import store
    from engine.scorecard import load_scorecards
    from ui import auth, designer

    user = auth.current_user()
    card = load_scorecards("data/scorecards")["default"]
    card = card.model_copy(update={"name": "forged save"})
    if invalid:
        groups = tuple(g.model_copy(update={"weight": 0.0}) for g in card.groups)
        card = card.model_copy(update={"groups": groups})
    ctx = designer.Context(
        user=user,
        src=src,
        dv="x",
        as_of=date.today(),
        active={"default": card},
        versions=store.scorecard_versions(store.cursor(src.removeprefix("db:"))),
    )
    version = designer.save_draft(ctx, card, "forged", activate=activate)
    st.write(f"saved v{version}")


def test_the_save_function_itself_refuses_a_viewer(db: Path) -> None:
    before = len(versions(db))
    at = AppTest.from_function(_save_as, args=(f"db:{db}", True), default_timeout=120)
    login(at, "leader").run()
    assert any("needs the editor role" in e.value for e in at.error)
    assert not any("saved v" in m.value for m in at.markdown)
    anonymous = AppTest.from_function(_save_as, args=(f"db:{db}", True), default_timeout=120)
    anonymous.run()
    assert any("sign in" in e.value for e in anonymous.error)
    assert len(versions(db)) == before


# --------------------------------------------------------------------------- invalid drafts


def test_an_invalid_draft_shows_its_problems_and_cannot_be_saved(db: Path) -> None:
    from ui import designer

    before = len(versions(db))
    at = page("ops")
    for group in ("deployment", "engagement", "adoption", "roi"):
        at.number_input(key=weight_key(at, group)).set_value(0.0)
    at.text_input(key=designer.COMMENT_KEY).set_value("all zero")
    at.run()
    no_exception(at)
    problems = " ".join(e.value for e in at.error)
    assert "every group weight is 0" in problems and "`groups`" in problems
    assert not at.metric  # no preview of an invalid draft
    save = at.button(key=designer.SAVE_KEY)
    assert save.disabled
    assert len(versions(db)) == before

    # the server refuses it too, whatever the button showed
    ok = AppTest.from_function(_save_as, args=(f"db:{db}", False, True), default_timeout=120)
    login(ok, "ops").run()
    assert ok.exception and "every group weight is 0" in ok.exception[0].value
    assert not any("saved v" in m.value for m in ok.markdown)
    assert len(versions(db)) == before


def test_an_imported_draft_with_bad_bands_names_the_path_and_the_rule(db: Path) -> None:
    from engine.scorecard import load_scorecards
    from ui import designer

    data = load_scorecards(ROOT / "data" / "scorecards")["default"].to_dict()
    data["scheme"]["bands"][1]["below"] = 40  # Yellow below 40, after Red below 50
    import yaml

    at = page("ops")
    at.file_uploader(key="designer_upload").upload("bands.yaml", yaml.safe_dump(data).encode())
    at.run()
    at.button(key="designer_import").click().run()
    no_exception(at)
    text = " ".join(e.value for e in at.error)
    assert "scheme.bands[1].below" in text and "strictly increasing" in text
    assert not at.metric
    assert at.button(key=designer.SAVE_KEY).disabled


# --------------------------------------------------------------------------- versions


def test_save_activate_compare_and_revert(db: Path) -> None:
    from ui import designer

    start = {v["version"] for v in versions(db)}
    active_before = next(
        v["version"]
        for v in versions(db)
        if v["scorecard_id"] == "default" and v["status"] == "active"
    )
    at = page("ops")
    at.number_input(key=weight_key(at, "roi")).set_value(40.0)
    at.text_input(key=designer.COMMENT_KEY).set_value("More weight on ROI")
    at.run()
    save = at.button(key=designer.SAVE_KEY)
    assert not save.disabled
    save.click().run()
    no_exception(at)
    new = [v for v in versions(db) if v["version"] not in start]
    assert len(new) == 1
    saved = new[0]
    assert (saved["author"], saved["status"], saved["comment"]) == (
        "ops",
        "draft",
        "More weight on ROI",
    )
    assert any(f"v{saved['version']}" in s.value for s in at.success)
    assert any(
        f"started from v{saved['version']} (draft) · no changes yet" in m.value for m in at.markdown
    )

    # activate it, from the versions list
    at.selectbox(key="designer_pick").set_value(saved["version"]).run()
    at.button(key="designer_activate_version").click().run()
    no_exception(at)
    status = {v["version"]: v["status"] for v in versions(db)}
    assert status[saved["version"]] == "active" and status[active_before] == "archived"

    # compare the two versions: a diff of weights and the grade transition
    at.toggle(key="designer_compare").set_value(True).run()
    at.selectbox(key="designer_cmp_a").set_value(active_before)
    at.selectbox(key="designer_cmp_b").set_value(saved["version"])
    at.run()
    no_exception(at)
    diff = next(d.value for d in at.dataframe if "Field" in d.value.columns)
    row = diff[(diff["Item"] == "ROI") & (diff["Field"] == "weight")]
    assert row["Before"].tolist() == ["25"] and row["After"].tolist() == ["40"]

    # revert: the older version becomes active again
    at.selectbox(key="designer_pick").set_value(active_before).run()
    button = at.button(key="designer_activate_version")
    assert button.label == "Revert to this version"
    button.click().run()
    no_exception(at)
    status = {v["version"]: v["status"] for v in versions(db)}
    assert status[active_before] == "active" and status[saved["version"]] == "archived"


def test_import_a_yaml_file_and_open_a_stored_version(db: Path) -> None:
    from engine.scorecard import load_scorecards
    from ui import designer

    card = load_scorecards(ROOT / "data" / "scorecards")["default"]
    edited = card.model_copy(update={"name": "Imported DEAR"})
    at = page("ops")
    at.file_uploader(key="designer_upload").upload(
        "mine.yaml", edited.to_yaml().encode(), "application/x-yaml"
    )
    at.run()
    at.button(key="designer_import").click().run()
    no_exception(at)
    assert at.session_state[designer.DRAFTS]["default"].name == "Imported DEAR"
    assert any("Loaded mine.yaml" in i.value for i in at.info)
    open_tab(at, "Policies")
    name_key = wk(at.text_input, "name")
    assert at.text_input(key=name_key).value == "Imported DEAR"

    # a broken file: every problem listed, the draft untouched
    at.file_uploader(key="designer_upload").upload(
        "bad.yaml", b"groups: [{id: x, weight: heavy}]\n", "application/x-yaml"
    )
    at.run()
    at.button(key="designer_import").click().run()
    no_exception(at)
    assert any("weight" in e.value for e in at.error)
    assert at.session_state[designer.DRAFTS]["default"].name == "Imported DEAR"

    # open the active version again
    at.button(key="designer_discard").click().run()
    assert at.session_state[designer.DRAFTS]["default"].name == card.name


def test_each_scorecard_has_its_own_draft(db: Path) -> None:
    from ui import designer

    at = page("ops")
    at.selectbox(key=designer.CARD).set_value("enterprise").run()
    no_exception(at)
    open_tab(at, "Assignment")
    assert any("Assignment rules live in the default scorecard" in i.value for i in at.info)
    open_tab(at, "Weights")
    at.number_input(key=weight_key(at, "engagement")).set_value(80.0).run()
    at.selectbox(key=designer.CARD).set_value("default").run()
    at.selectbox(key=designer.CARD).set_value("enterprise").run()
    assert at.number_input(key=weight_key(at, "engagement")).value == 80.0
    assert at.session_state[designer.DRAFTS]["default"].group("engagement").weight != 80.0


def test_backtest_this_draft_hands_the_draft_over(db: Path) -> None:
    from ui import designer

    at = login(AppTest.from_file(APP, default_timeout=120), "ops").run()
    at.switch_page("pages/designer.py").run()
    no_exception(at)
    if not (ROOT / designer.BACKTEST_PAGE).is_file():
        assert any("Backtest page not installed" in c.value for c in at.caption)
        return
    at.number_input(key=weight_key(at, "adoption")).set_value(50.0).run()
    at.button(key="designer_backtest").click().run()
    no_exception(at)
    text = at.session_state[designer.DRAFT_YAML]
    assert "weight: 50.0" in text


def test_export_and_recompute_the_history(db: Path) -> None:
    at = page("ops")
    downloads = at.get("download_button")
    assert downloads, "no Export YAML button"
    before = store.snapshots(store.cursor(db)).height
    at.button(key="designer_backfill").click().run()
    no_exception(at)
    assert any("History recomputed" in s.value for s in at.success)
    active = [v["version"] for v in versions(db) if v["status"] == "active"]
    stored = store.snapshots(store.cursor(db))
    assert stored.height >= before
    assert set(active) <= set(stored.get_column("scorecard_version").to_list())
