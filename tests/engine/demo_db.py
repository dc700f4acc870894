"""Small demo databases for the data tests: built once per test process, copied per test."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

from engine import demo, store

END = date(2025, 6, 29)
_built: dict[tuple[int, int, bool], Path] = {}


def demo_db(tmp: Path, *, accounts: int = 200, weeks: int = 12, history: bool = True) -> Path:
    """A fresh copy of a seeded demo database (``accounts`` x ``weeks``, END as last date)."""
    key = (accounts, weeks, history)
    base = _built.get(key)
    if base is None or not base.exists():
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="vitals-demo-"))
        base = folder / f"demo-{accounts}-{weeks}-{int(history)}.duckdb"
        demo.build(base, n_accounts=accounts, weeks=weeks, seed=7, end=END, backfill=history)
        store.close(base)  # checkpoint and release, so the file can be copied
        _built[key] = base
    target = tmp / "vitals.duckdb"
    shutil.copyfile(base, target)
    return target
