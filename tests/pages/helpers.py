"""Driving the app in AppTest: sign in, open a page, read what it shows."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
PASSWORD = "vitals-demo"
TIMEOUT = 90


def new_app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def text_input(at: AppTest, label: str):
    return next(w for w in at.text_input if w.label == label)


def login(username: str, password: str = PASSWORD) -> AppTest:
    """A fresh app, signed in through the login form."""
    at = new_app().run()
    assert not at.exception, at.exception
    text_input(at, "Username").input(username)
    text_input(at, "Password").input(password)
    next(b for b in at.button if b.label == "Sign in").click()
    at.run()
    assert not at.exception, at.exception
    return at


def open_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(page).run()
    return at


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def infos(at: AppTest) -> list[str]:
    return [i.value for i in at.info]


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)
