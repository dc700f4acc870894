"""Data benchmark: demo generation, import throughput and backfill time.

For each size in ``BENCH_DATA_SIZES`` (comma-separated accounts, default ``2000,100000``) over
``BENCH_DATA_WEEKS`` weekly as-of dates (default 104):

- **demo**: ``engine.demo.build`` into a fresh database: generation of the raw tables, writing
  them, deriving every metric with the SQL definitions (``data/metrics.yaml``), and (2,000
  accounts only, as ``make run`` does) the score history. The database is kept in
  ``bench/out/data-<N>x<W>.duckdb`` and reused by later runs (delete it to measure again).
- **import** (smallest size only): the demo's ``metric_values`` exported to Parquet and CSV and
  imported into a fresh database holding the accounts (validation and the write, in one
  transaction), then imported again over itself (the upsert path): rows per second.
- **backfill**: ``engine.history.backfill`` of every as-of date under the active scorecards,
  in one transaction, ``BENCH_BACKFILL_RUNS`` times (default 3): the median seconds, and
  account-dates scored per second; next to each run, a DuckDB scan of every metric value (how
  fast the machine reads at that moment). Goal: 100,000 accounts x 104 weeks under 60 seconds.

``BENCH_DATA_MILLION=1`` also generates ``--accounts 1000000 --weeks 4`` (without history).
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench import OUT

END = date(2025, 6, 29)


def _say(text: str) -> None:
    print(f"[data] {text}", file=sys.stderr, flush=True)


def run() -> dict[str, Any]:
    sizes = [int(x) for x in os.environ.get("BENCH_DATA_SIZES", "2000,100000").split(",")]
    weeks = int(os.environ.get("BENCH_DATA_WEEKS", "104"))
    out: dict[str, Any] = {"weeks": weeks, "machine": _machine(), "sizes": {}}
    for n in sizes:
        out["sizes"][str(n)] = measure(n, weeks, with_import=n == min(sizes) and n <= 10_000)
    if os.environ.get("BENCH_DATA_MILLION"):
        out["million"] = million()
    out["markdown"] = markdown(out)
    return out


def database(n: int, weeks: int) -> tuple[Path, dict[str, Any] | None]:
    """The demo database of this size, generated when missing (then with its summary)."""
    from engine import demo, store

    path = OUT / f"data-{n}x{weeks}.duckdb"
    if path.exists():
        return path, None
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial.duckdb")
    tmp.unlink(missing_ok=True)
    _say(f"generating the demo: {n:,} accounts x {weeks} weeks")
    t0 = time.perf_counter()
    summary = demo.build(
        tmp,
        n_accounts=n,
        weeks=weeks,
        end=END,
        backfill=n <= 2000,
        progress=lambda m: _say(f"  {time.perf_counter() - t0:7.1f} s {m}"),
    )
    store.close(tmp)
    tmp.rename(path)
    return path, summary


def measure(n: int, weeks: int, *, with_import: bool) -> dict[str, Any]:
    from engine import history, store

    path, summary = database(n, weeks)
    result: dict[str, Any] = {"accounts": n, "load_before": _load()}
    if summary is not None:
        result["demo_seconds"] = summary["seconds"]
        result["rows"] = summary["rows"]
    con = store.cursor(path)
    result["metric_values"] = store.row_count(con, "metric_values")
    if with_import:
        result["import"] = import_throughput(con, n)
    runs = int(os.environ.get("BENCH_BACKFILL_RUNS", "3"))
    times, floors = [], []
    res = None
    for run in range(runs):
        floors.append(_scan_floor(con))
        _say(f"backfill {n:,} accounts x {weeks} weeks (run {run + 1} of {runs})")
        t0 = time.perf_counter()
        res = history.backfill(
            con,
            weeks=weeks,
            progress=lambda i, total, d, t0=t0: (
                _say(f"  {time.perf_counter() - t0:7.1f} s {i}/{total} {d}")
                if i % 13 == 0 or i == total
                else None
            ),
        )
        times.append(res.seconds)
    assert res is not None
    median = statistics.median(times)
    floor = statistics.median(floors)
    result["backfill"] = {
        "seconds": round(median, 1),
        "runs_s": [round(t, 1) for t in times],
        "read_s": round(res.seconds_read, 1),
        "write_s": round(res.seconds_write, 1),
        "scan_floor_s": round(floor, 2),
        "vs_scan_floor": round(median / floor, 1) if floor else None,
        "dates": len(res.dates),
        "scores": res.rows,
        "scores_per_s": round(res.rows / median),
    }
    result["load_after"] = _load()
    store.close(path)
    return result


def _scan_floor(con: Any) -> float:
    """Seconds to scan every metric value once (a sum in DuckDB): how fast the machine reads
    right now, measured next to each backfill."""
    t0 = time.perf_counter()
    con.execute("SELECT count(*), sum(value) FROM metric_values").fetchall()
    return time.perf_counter() - t0


def import_throughput(con: Any, n: int) -> dict[str, Any]:
    from engine import importer, store

    work = OUT / "data-import"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    store.load_accounts(con).write_parquet(work / "accounts.parquet")
    values = store.load_metric_values(con)
    values.write_parquet(work / "metrics.parquet")
    values.write_csv(work / "metrics.csv")
    out: dict[str, Any] = {"rows": values.height}
    for kind in ("parquet", "csv"):
        db = work / f"{kind}.duckdb"
        target = store.cursor(db)
        importer.import_files(target, accounts=work / "accounts.parquet")
        for label in ("fresh", "upsert"):
            _say(f"import {values.height:,} metric values from {kind} ({label})")
            t0 = time.perf_counter()
            importer.import_files(target, metrics=work / f"metrics.{kind}")
            secs = time.perf_counter() - t0
            out[f"{kind}_{label}"] = {
                "seconds": round(secs, 2),
                "rows_per_s": round(values.height / secs),
            }
        store.close(db)
    shutil.rmtree(work, ignore_errors=True)
    return out


def million() -> dict[str, Any]:
    from engine import demo, store

    path = OUT / "data-1000000x4.duckdb"
    path.unlink(missing_ok=True)
    _say("generating the demo: 1,000,000 accounts x 4 weeks")
    t0 = time.perf_counter()
    summary = demo.build(
        path,
        n_accounts=1_000_000,
        weeks=4,
        end=END,
        backfill=False,
        progress=lambda m: _say(f"  {time.perf_counter() - t0:7.1f} s {m}"),
    )
    store.close(path)
    path.unlink(missing_ok=True)
    return {"seconds": summary["seconds"], "rows": summary["rows"]}


def _load() -> float:
    try:
        return round(os.getloadavg()[0], 1)
    except OSError:
        return -1.0


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def markdown(result: dict[str, Any]) -> str:
    weeks = result["weeks"]
    lines = [
        f"Machine: {result['machine']}.",
        "",
        "| accounts x weeks | demo: generate / write / metrics / history / total (s) "
        "| metric values | backfill (s): median (runs) | of which values / storing (overlapped) "
        "| scan of the values (s) | scores/s | load avg |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, r in result["sizes"].items():
        secs = r.get("demo_seconds")
        demo = (
            " / ".join(
                str(secs.get(k, "-")) for k in ("generate", "write", "metrics", "history", "total")
            )
            if secs
            else "(reused)"
        )
        b = r["backfill"]
        lines.append(
            f"| {int(n):,} x {weeks} | {demo} | {r['metric_values']:,} | {b['seconds']} "
            f"({' / '.join(str(t) for t in b['runs_s'])}) | {b['read_s']} / {b['write_s']} "
            f"| {b['scan_floor_s']} | {b['scores_per_s']:,} "
            f"| {r['load_before']} / {r['load_after']} |"
        )
    for r in result["sizes"].values():
        imp = r.get("import")
        if imp:
            lines += [
                "",
                f"Import of {imp['rows']:,} metric values (validation + write, one transaction):",
                "",
                "| file | fresh rows/s | upsert rows/s |",
                "|---|---|---|",
            ]
            for kind in ("parquet", "csv"):
                lines.append(
                    f"| {kind} | {imp[f'{kind}_fresh']['rows_per_s']:,} "
                    f"| {imp[f'{kind}_upsert']['rows_per_s']:,} |"
                )
    if "million" in result:
        m = result["million"]
        lines += ["", f"1,000,000 accounts x 4 weeks (no history): {m['seconds']}."]
    return "\n".join(lines)
