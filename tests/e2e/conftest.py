"""Browser tests: the real app in a real browser.

Per test module, a small demo database is generated into a temporary folder (engine.demo) and
``streamlit run app.py --server.headless true`` is started once on a free port with
``VITALS_DB`` pointing at it; the tests wait on ``/_stcore/health`` and drive Debian's Chromium
(``/usr/bin/chromium``; Playwright's own browsers are never downloaded). Screenshots go to
``tests/e2e/output/`` (git-ignored) for people to review.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = Path(__file__).resolve().parent / "output"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "vitals-demo"
USERS = {"leader": "viewer", "ops": "editor", "admin": "admin"}
E2E_ACCOUNTS = 150
E2E_WEEKS = 8
STARTUP_SECONDS = 90
RUN_TIMEOUT_MS = 90_000  # one script run (the first visit of a page reads and scores the data)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def e2e_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo (with its weekly history) in a folder of this module's own."""
    from engine import demo, store

    path = tmp_path_factory.mktemp("e2e") / "vitals.duckdb"
    demo.build(path, n_accounts=E2E_ACCOUNTS, weeks=E2E_WEEKS, seed=11)
    store.close(path)
    return path


@pytest.fixture(scope="module")
def app_url(e2e_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app, served by ``streamlit run`` on a free port, until the module ends."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VITALS_", "STREAMLIT_"))}
    env |= {"VITALS_DB": str(e2e_db), "PYTHONUNBUFFERED": "1"}
    log = tmp_path_factory.mktemp("e2e-log") / "streamlit.log"
    cmd = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"streamlit did not start (exit {proc.poll()}):\n{log.read_text()[-4000:]}"
                )
            time.sleep(0.25)
        yield url
    finally:
        # The server and anything it started: its own process group, by its id.
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"browser tests need Debian's Chromium at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    """A fresh browser context (no cookies: nobody signed in) and page."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})  # type: ignore[attr-defined]
    context.set_default_timeout(RUN_TIMEOUT_MS)
    pg = context.new_page()
    yield pg
    context.close()


# --------------------------------------------------------------------------- helpers


def wait_for_app(page: object, timeout_ms: int = RUN_TIMEOUT_MS) -> None:
    """Until the app is connected and no script (nor fragment) is running."""
    pg = page
    pg.wait_for_selector(  # type: ignore[attr-defined]
        "[data-testid='stApp'][data-test-connection-state='CONNECTED']", timeout=timeout_ms
    )
    # A run may start just after the page settles (a rerun after sign-in): wait twice.
    for _ in range(2):
        pg.wait_for_selector(  # type: ignore[attr-defined]
            "[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout_ms
        )
        pg.wait_for_timeout(300)  # type: ignore[attr-defined]
    pg.wait_for_selector(  # type: ignore[attr-defined]
        "[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout_ms
    )


def login(page: object, base_url: str, username: str, password: str = PASSWORD) -> None:
    pg = page
    pg.goto(base_url)  # type: ignore[attr-defined]
    wait_for_app(pg)
    pg.get_by_role("textbox", name="Username").fill(username)  # type: ignore[attr-defined]
    pg.get_by_role("textbox", name="Password").fill(password)  # type: ignore[attr-defined]
    pg.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    pg.get_by_test_id("stSidebarNav").wait_for()  # type: ignore[attr-defined]
    wait_for_app(pg)


def open_page(page: object, title: str) -> None:
    """Open a page from the sidebar menu (keeps the session, as a user does)."""
    pg = page
    nav = pg.get_by_test_id("stSidebarNav")  # type: ignore[attr-defined]
    nav.get_by_role("link", name=title, exact=True).click()
    wait_for_app(pg)


def screenshot(page: object, name: str) -> Path:
    """The whole page: Streamlit scrolls inside its main block, not the document, so the
    viewport is stretched to the content's height for the picture."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.png"
    pg = page
    size = pg.viewport_size or {"width": 1440, "height": 1000}  # type: ignore[attr-defined]
    height = pg.evaluate(  # type: ignore[attr-defined]
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
        "[data-testid=stSidebarContent]')].map(e => e.scrollHeight), 0)"
    )
    pg.set_viewport_size(
        {"width": size["width"], "height": max(size["height"], min(int(height) + 40, 8000))}
    )  # type: ignore[attr-defined]
    pg.wait_for_timeout(400)  # type: ignore[attr-defined]
    pg.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    pg.set_viewport_size(size)  # type: ignore[attr-defined]
    return path
