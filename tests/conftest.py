"""Shared fixtures: one small demo database per test session.

``demo_db`` is built once (300 accounts x 16 weeks with backfilled history, a few seconds) and
must not be written to; tests that write use ``writable_db``, a fresh copy.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

DEMO_ACCOUNTS = 300
DEMO_WEEKS = 16


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine import demo, store

    path = tmp_path_factory.mktemp("vitals-demo") / "vitals.duckdb"
    demo.build(path, n_accounts=DEMO_ACCOUNTS, weeks=DEMO_WEEKS, seed=7)
    store.close(path)  # checkpoint, so that copies are complete
    return path


@pytest.fixture
def writable_db(demo_db: Path, tmp_path: Path) -> Iterator[Path]:
    from engine import store

    target = tmp_path / "vitals.duckdb"
    shutil.copyfile(demo_db, target)
    yield target
    store.close(target)


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, demo_db: Path) -> Path:
    """The app pointed at the shared demo database, in demo-login mode."""
    monkeypatch.setenv("VITALS_DB", str(demo_db))
    monkeypatch.delenv("VITALS_AUTH_FILE", raising=False)
    monkeypatch.delenv("VITALS_COOKIE_KEY", raising=False)
    monkeypatch.delenv("VITALS_DEMO", raising=False)
    return demo_db
