"""Designer benchmark: how long the live preview takes after a weight change.

For each portfolio size (default 2,000 and 100,000 accounts), a demo database is generated
once into ``bench/out/designer-<N>.duckdb`` (``engine.demo``, 8 weekly as-of dates, no
history: the designer reads the values at one date). Then, in AppTest, an editor opens the
Scorecard designer (the first run reads the values and scores the active scorecards: reported
as ``first_run_s``) and changes the Adoption group weight again and again; each rerun gets a
new weight so the preview really recomputes. Reported, as medians over the reruns:

- ``rerun_s``: the AppTest rerun after the change, wall clock. AppTest reruns the whole page
  script (it has no fragment reruns), so this is an upper bound of what a browser user waits
  for: there only the ``st.fragment`` with the editor and the preview reruns.
- ``preview_s``: the server time of the preview computation alone (re-scoring the draft,
  comparing, explaining the accounts that change grade), as the page measures it.
- ``engine_s``: :func:`engine.preview.preview_draft` called directly on the same data.

Goals: ``rerun_s`` under 0.3 s at 2,000 accounts and under 1 s at 100,000.

Settings (environment): ``BENCH_DESIGNER_SIZES`` (comma-separated, default ``2000,100000``),
``BENCH_RUNS`` (reruns per size, default 7), ``BENCH_DESIGNER_WEEKS`` (default 8).
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench import OUT

ROOT = Path(__file__).resolve().parent.parent
GOALS_S = {2_000: 0.3, 100_000: 1.0}
SESSION_ID = "test session id"  # AppTest's session id (ui.auth signs sessions with it)


def run() -> dict[str, Any]:
    sizes = [int(x) for x in os.environ.get("BENCH_DESIGNER_SIZES", "2000,100000").split(",")]
    runs = int(os.environ.get("BENCH_RUNS", "7"))
    weeks = int(os.environ.get("BENCH_DESIGNER_WEEKS", "8"))
    results = [measure(n, runs=runs, weeks=weeks) for n in sizes]
    out: dict[str, Any] = {"runs": runs, "weeks": weeks, "sizes": results, "machine": _machine()}
    out["markdown"] = markdown(out)
    return out


def database(n: int, weeks: int) -> Path:
    """The demo database of ``n`` accounts (generated once, then reused)."""
    from engine import demo, store

    path = OUT / f"designer-{n}.duckdb"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.duckdb")
    tmp.unlink(missing_ok=True)
    _say(f"generating the {n:,}-account demo into {path} ...")
    t = time.perf_counter()
    demo.build(
        tmp,
        n_accounts=n,
        weeks=weeks,
        seed=7,
        scorecards=ROOT / "data" / "scorecards",
        backfill=False,
    )
    store.close(tmp)
    tmp.rename(path)
    _say(f"  done in {time.perf_counter() - t:.0f} s")
    return path


def measure(n: int, *, runs: int, weeks: int) -> dict[str, Any]:
    from streamlit.testing.v1 import AppTest

    from ui import auth, designer, state

    db = database(n, weeks)
    os.environ["VITALS_DB"] = str(db)
    at = AppTest.from_file(str(ROOT / "pages" / "designer.py"), default_timeout=1800)
    at.session_state[state.AUTH_STATUS] = True
    at.session_state[state.AUTH_USERNAME] = "ops"
    at.session_state[state.AUTH_SIGNATURE] = auth.sign("ops", SESSION_ID)
    t = time.perf_counter()
    at.run()
    first = time.perf_counter() - t
    if at.exception:
        raise RuntimeError(f"the designer failed: {[e.value for e in at.exception]}")
    key = next(w.key for w in at.number_input if w.key and w.key.endswith(".g.adoption.w"))
    accounts = next(m.value for m in at.metric if m.label == "Accounts changing grade")
    reruns, previews, changed = [], [], []
    for i in range(runs + 1):  # the first change warms the draft's plans up: not counted
        weight = 40.0 + 5 * i
        t = time.perf_counter()
        at.number_input(key=key).set_value(weight).run()
        elapsed = time.perf_counter() - t
        if at.exception:
            raise RuntimeError(f"the designer failed: {[e.value for e in at.exception]}")
        if i == 0:
            continue
        reruns.append(elapsed)
        previews.append(float(at.session_state[designer.PREVIEW_MS]) / 1000)
        changed.append(next(m.value for m in at.metric if m.label == "Accounts changing grade"))
    engine = engine_times(db, runs)
    goal = GOALS_S.get(n)
    rerun = round(statistics.median(reruns), 3)
    result: dict[str, Any] = {
        "accounts": n,
        "db": str(db),
        "first_run_s": round(first, 3),
        "rerun_s": rerun,
        "rerun_all_s": [round(x, 3) for x in reruns],
        "preview_s": round(statistics.median(previews), 3),
        "engine_s": round(statistics.median(engine), 3),
        "accounts_changing_grade": changed,
        "baseline_changing_grade": accounts,
        "goal_s": goal,
        "goal_met": None if goal is None else rerun < goal,
    }
    _say(
        f"{n:,} accounts: rerun {result['rerun_s']} s, preview {result['preview_s']} s, "
        f"engine {result['engine_s']} s (first run {result['first_run_s']} s)"
    )
    return result


def engine_times(db: Path, runs: int) -> list[float]:
    """:func:`engine.preview.preview_draft` on the same data, without Streamlit."""
    import polars as pl

    from engine import store
    from engine.history import scorecard_set
    from engine.preview import baseline, preview_draft
    from engine.rescore import change_windows, prepare

    con = store.cursor(db)
    cards = scorecard_set(con).cards
    as_of = max(store.metric_date_range(con)[1] or date.today(), date.today())
    windows = sorted(change_windows(cards.values()))
    frames = [store.latest_metric_values(con, as_of)]
    frames += [store.latest_metric_values(con, as_of - timedelta(days=d)) for d in windows]
    manual = store.load_manual_overrides(con, as_of=as_of)
    products = store.load_products(con)
    prepared = prepare(
        store.load_accounts(con, active_on=as_of),
        pl.concat(frames, how="diagonal_relaxed"),
        as_of,
        cards,
        windows=windows,
        manual_overrides=manual if manual.height else None,
        product_arr=products if products.height else None,
    )
    base = baseline(prepared, cards)
    card = cards["default"]
    times = []
    for i in range(runs + 1):
        groups = tuple(
            g.model_copy(update={"weight": 41.0 + 5 * i}) if g.id == "adoption" else g
            for g in card.groups
        )
        draft = card.model_copy(update={"groups": groups})
        t = time.perf_counter()
        preview_draft(base, draft)
        if i:
            times.append(time.perf_counter() - t)
    return times


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| accounts | AppTest rerun after a weight change | goal | preview (server) | "
        "engine only | first open |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["sizes"]:
        goal = f"< {r['goal_s']} s" if r["goal_s"] is not None else ""
        mark = " ✅" if r["goal_met"] else (" ❌" if r["goal_met"] is False else "")
        lines.append(
            f"| {r['accounts']:,} | {r['rerun_s']:.3f} s{mark} | {goal} | {r['preview_s']:.3f} s | "
            f"{r['engine_s']:.3f} s | {r['first_run_s']:.1f} s |"
        )
    lines.append("")
    lines.append(f"Medians of {result['runs']} reruns; {result['machine']}.")
    return "\n".join(lines)


def _machine() -> str:
    import platform

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()} CPUs, Python {platform.python_version()}, load {load:.1f} at start"


def _say(text: str) -> None:
    print(text, flush=True)
