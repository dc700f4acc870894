"""Scoring benchmark: 1,000,000 accounts x 20 metrics (long format, 5% missing).

(a) In memory: re-scoring after a weight change, against the read floor (one NumPy sum over
    the dense account x metric value matrix). Goal: at most 10x the floor.
(b) End to end: the whole ``python -m engine score`` process, Parquet to Parquet, against a
    plain pandas implementation of the same semantics (``bench/pandas_baseline.py``) and a
    Polars read + pivot + sum of the same file (``bench/polars_floor.py``), each a child
    process with its peak memory. Goals: at most 1.5x the Polars floor, at most a third of
    pandas, peak under 4 GiB.

Every figure is the median of several runs; each ratio is taken between medians measured in
the same session, interleaved, so a busy machine slows both sides. Before timing, the pandas
baseline must give the engine's scores on a sample, and after, the two 1M-account outputs are
compared too.

Settings (environment): ``BENCH_ACCOUNTS`` (default 1000000), ``BENCH_RUNS`` (5),
``BENCH_PANDAS_RUNS`` (as ``BENCH_RUNS``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bench.gen import BenchData, generate, make_frames, scorecard_dict
from engine.scorecard import Scorecard, load_scorecard, parse_scorecard

ROOT = Path(__file__).resolve().parent.parent
GIB = 1024**3
GOALS = {"rescore_vs_floor": 10.0, "cli_vs_polars": 1.5, "cli_vs_pandas": 1 / 3, "peak_gib": 4.0}


def run() -> dict[str, Any]:
    n = int(os.environ.get("BENCH_ACCOUNTS", "1000000"))
    runs = int(os.environ.get("BENCH_RUNS", "5"))
    pandas_runs = int(os.environ.get("BENCH_PANDAS_RUNS", str(runs)))
    _say(f"scoring benchmark: {n:,} accounts, {runs} runs ({pandas_runs} for pandas)")
    t = time.perf_counter()
    data = generate(n)
    _say(f"data: {data.n_rows:,} metric rows in {data.metrics} ({time.perf_counter() - t:.1f} s)")

    result: dict[str, Any] = {
        "accounts": n,
        "metric_rows": data.n_rows,
        "runs": runs,
        "pandas_runs": pandas_runs,
        "machine": _machine(),
    }
    result["sample_check"] = check_sample()
    result["in_memory"] = in_memory(data, runs)
    result["end_to_end"] = end_to_end(data, runs, pandas_runs)
    result["goals"] = _goals(result)
    result["markdown"] = markdown(result)
    return result


# --------------------------------------------------------------------------- correctness


def check_sample(n: int = 20_000) -> dict[str, Any]:
    """The pandas baseline and the engine give the same scores and grades on a sample."""
    from bench.pandas_baseline import score_pandas
    from engine.scoring import score

    accounts, metrics = make_frames(n, seed=7)
    card = parse_scorecard(scorecard_dict())
    as_of = date(2024, 6, 23)  # before the last snapshot, so "latest on or before" matters
    engine = score(accounts, metrics, card, as_of)
    baseline = pl.from_pandas(score_pandas(accounts.to_pandas(), metrics.to_pandas(), card, as_of))
    diff = compare(engine, baseline, card)
    _say(
        f"sample check ({n:,} accounts): max |diff| {diff['max_abs_diff']:.2e}, "
        f"grades equal: {diff['grades_equal']}"
    )
    if not diff["ok"]:
        raise AssertionError(f"the pandas baseline disagrees with the engine: {diff}")
    return diff


def compare(engine: pl.DataFrame, baseline: pl.DataFrame, card: Scorecard) -> dict[str, Any]:
    """Max absolute difference over score, group and measure columns, and grade equality."""
    cols = ["score", *(g.id for g in card.groups), *(m.id for _, m in card.measures)]
    joined = engine.select("account_id", "grade", *cols).join(
        baseline.select("account_id", "grade", *cols), on="account_id", suffix="_pd"
    )
    worst = 0.0
    for c in cols:
        a, b = joined.get_column(c), joined.get_column(f"{c}_pd").fill_nan(None)
        if (a.is_null() != b.is_null()).any():
            worst = float("inf")
        d = (a - b).abs().max()
        worst = max(worst, float(d) if d is not None else 0.0)  # type: ignore[arg-type]
    grades = joined.select(pl.col("grade").eq_missing(pl.col("grade_pd")).all()).item()
    return {
        "accounts": joined.height,
        "same_rows": joined.height == engine.height == baseline.height,
        "max_abs_diff": worst,
        "grades_equal": bool(grades),
        "ok": worst <= 1e-9 and bool(grades) and joined.height == engine.height,
    }


# --------------------------------------------------------------------------- (a) in memory


def in_memory(data: BenchData, runs: int) -> dict[str, Any]:
    """Re-scoring after a weight change, by every path the engine has: ``score()`` from the
    long values, ``engine.rescore.rescore`` over values prepared once (the latest values
    kept), and ``engine.rescore.measure_cache`` (measure scores kept; the scorecard
    designer's what-if path). The goal is judged on the fastest path."""
    from engine.io import read_accounts, read_metric_values
    from engine.scoring import score

    accounts = read_accounts(data.accounts)
    metrics = read_metric_values(data.metrics)
    card = load_scorecard(data.scorecard)
    matrix = (
        metrics.pivot(on="metric", index="account_id", values="value")
        .drop("account_id")
        .to_numpy()
        .astype(np.float64, order="C")
    )
    floor = statistics.median(_time(matrix.sum) for _ in range(max(runs, 5)))
    drafts = [_with_group_weight(card, "adoption", 35.0 + i + 1) for i in range(runs)]

    started = time.perf_counter()
    base = score(accounts, metrics, card, data.as_of)
    cold = time.perf_counter() - started
    full: list[float] = []
    last = pl.DataFrame()
    for i, draft in enumerate(drafts):
        started = time.perf_counter()
        last = score(accounts, metrics, draft, data.as_of)
        full.append(time.perf_counter() - started)
        _say(f"  score() after a weight change {i + 1}/{runs}: {full[-1]:.2f} s")
    paths: dict[str, float] = {"score": statistics.median(full)}
    out: dict[str, Any] = {
        "matrix_shape": list(matrix.shape),
        "floor_numpy_sum_s": floor,
        "first_score_s": cold,
        "score_runs_s": full,
    }
    prepared = _prepared_paths(accounts, metrics, card, drafts, data.as_of, last, base)
    out["prepared"] = prepared
    paths |= prepared.get("paths_s", {})
    out["paths_s"] = paths
    out["paths_vs_floor"] = {k: v / floor for k, v in paths.items()}
    best = min(paths, key=lambda k: paths[k])
    out["rescore_path"] = best
    out["rescore_s"] = paths[best]
    out["rescore_vs_floor"] = paths[best] / floor
    out["stages_s"] = _stages(accounts, metrics, card, data.as_of, min(runs, 3))
    _say(
        "(a) NumPy floor "
        f"{floor * 1000:.1f} ms; "
        + ", ".join(f"{k} {v:.3f} s ({v / floor:,.0f}x)" for k, v in paths.items())
    )
    return out


def _prepared_paths(
    accounts: pl.DataFrame,
    metrics: pl.DataFrame,
    card: Scorecard,
    drafts: list[Scorecard],
    as_of: date,
    expected: pl.DataFrame,
    base: pl.DataFrame,
) -> dict[str, Any]:
    """Time ``engine.rescore``'s prepared paths and ``engine.reweight`` (the weight-only
    path, from the base scores) and check them against ``score()``'s result for the last
    draft (``expected``). Empty when the modules are absent or have changed."""
    from engine.reweight import Reweighter

    try:
        from engine import rescore as rs
    except ImportError:
        return {}
    try:
        started = time.perf_counter()
        prepared = rs.prepare(accounts, metrics, as_of, card)
        t_prepare = time.perf_counter() - started
        over_prepared = [_time(partial(rs.rescore, prepared, d)) for d in drafts]
        started = time.perf_counter()
        cache = rs.measure_cache(prepared, {card.id: card}, card.id)
        t_cache = time.perf_counter() - started
        cached = [_time(partial(cache.rescore, d)) for d in drafts]
        result = cache.rescore(drafts[-1])
        started = time.perf_counter()
        reweighter = Reweighter.from_units(base, card, as_of)
        t_reweighter = time.perf_counter() - started
        reweighted = [_time(partial(reweighter.score, d)) for d in drafts]
        fast = reweighter.score(drafts[-1])
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        _say(f"  engine.rescore skipped: {exc}")
        return {"error": str(exc)}
    joined = expected.select("account_id", "score", "grade").join(
        result.select("account_id", "score", "grade"), on="account_id", suffix="_cached"
    )
    diff = joined.select((pl.col("score") - pl.col("score_cached")).abs().max()).item()
    same_grades = joined.select(pl.col("grade").eq_missing(pl.col("grade_cached")).all()).item()
    fast_joined = expected.select("account_id", "score", "grade").join(
        fast.select("account_id", "score", "grade"), on="account_id", suffix="_fast"
    )
    return {
        "prepare_s": t_prepare,
        "measure_cache_build_s": t_cache,
        "reweighter_build_s": t_reweighter,
        "paths_s": {
            "rescore_prepared": statistics.median(over_prepared),
            "measure_cache": statistics.median(cached),
            "reweight": statistics.median(reweighted),
        },
        "runs_s": {
            "rescore_prepared": over_prepared,
            "measure_cache": cached,
            "reweight": reweighted,
        },
        "reweight_vs_score": {
            "rows": fast_joined.height,
            "max_abs_diff": fast_joined.select(
                (pl.col("score") - pl.col("score_fast")).abs().max()
            ).item(),
            "grades_equal": bool(
                fast_joined.select(pl.col("grade").eq_missing(pl.col("grade_fast")).all()).item()
            ),
        },
        "measure_cache_vs_score": {
            "rows": joined.height,
            "max_abs_diff": diff,
            "grades_equal": bool(same_grades),
        },
    }


def _with_group_weight(card: Scorecard, group_id: str, weight: float) -> Scorecard:
    groups = tuple(
        g.model_copy(update={"weight": weight}) if g.id == group_id else g for g in card.groups
    )
    return card.model_copy(update={"groups": groups})


def _stages(
    accounts: pl.DataFrame, metrics: pl.DataFrame, card: Scorecard, as_of: date, runs: int
) -> dict[str, float]:
    """Where a score spends its time, as medians: the latest values (one row per account,
    ages only when the card reads them, as ``score()`` does), joining accounts, the
    measure/group/overall expressions and the rest (roll-up, ordering). Uses private helpers
    of engine.scoring, so it is best effort: empty when they change."""
    from engine import scoring

    try:
        wide_values = scoring._wide_values
        score_units = scoring._score_units
        needed = sorted(card.metrics)
        ages = scoring._reads_ages([card])
        wide = wide_values(metrics, needed, as_of, ages=ages)
        units = accounts.with_columns(pl.lit(card.id).alias("scorecard")).join(
            wide, on="account_id", how="left"
        )
        score_units(units, card, as_of, detail=False)
    except (AttributeError, TypeError, KeyError, pl.exceptions.PolarsError) as exc:
        _say(f"  stages skipped: engine.scoring internals changed ({exc})")
        return {}
    times: dict[str, list[float]] = {"latest_values": [], "join_accounts": []}
    times |= {"measures_groups_overall": [], "total": []}
    for _ in range(runs):
        times["latest_values"].append(_time(lambda: wide_values(metrics, needed, as_of, ages=ages)))
        times["join_accounts"].append(
            _time(
                lambda: accounts.with_columns(pl.lit(card.id).alias("scorecard")).join(
                    wide, on="account_id", how="left"
                )
            )
        )
        times["measures_groups_overall"].append(
            _time(lambda: score_units(units, card, as_of, detail=False))
        )
        times["total"].append(_time(lambda: scoring.score(accounts, metrics, card, as_of)))
    out = {k: statistics.median(v) for k, v in times.items()}
    out["rest"] = max(
        out["total"] - out["latest_values"] - out["join_accounts"] - out["measures_groups_overall"],
        0.0,
    )
    _say("  stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in out.items()))
    return out


# --------------------------------------------------------------------------- (b) end to end


def end_to_end(data: BenchData, runs: int, pandas_runs: int) -> dict[str, Any]:
    py = sys.executable
    engine_out = data.metrics.parent / "scores.parquet"
    pandas_out = data.metrics.parent / "pandas_scores.parquet"
    as_of = data.as_of.isoformat()
    commands = {
        "engine": [
            py, "-m", "engine", "score",
            "--accounts", str(data.accounts), "--metrics", str(data.metrics),
            "--scorecard", str(data.scorecard), "--as-of", as_of,
            "--out", str(engine_out), "--json",
        ],
        "polars_floor": [py, "-m", "bench.polars_floor", str(data.metrics)],
        "pandas": [
            py, "-m", "bench.pandas_baseline",
            "--accounts", str(data.accounts), "--metrics", str(data.metrics),
            "--scorecard", str(data.scorecard), "--as-of", as_of, "--out", str(pandas_out),
        ],
    }  # fmt: skip
    times: dict[str, list[float]] = {k: [] for k in commands}
    peaks: dict[str, list[int]] = {k: [] for k in commands}
    engine_steps: list[dict[str, float]] = []
    names = list(commands)
    for i in range(runs):
        order = names[i % len(names) :] + names[: i % len(names)]  # rotate: no fixed position
        for name in order:
            if name == "pandas" and i >= pandas_runs:
                continue
            seconds, peak, stdout = _child(commands[name])
            times[name].append(seconds)
            peaks[name].append(peak)
            if name == "engine":
                engine_steps.append(json.loads(stdout)["timings"])
            _say(f"  run {i + 1}/{runs} {name}: {seconds:.2f} s, peak {peak / GIB:.2f} GiB")

    med = {k: statistics.median(v) for k, v in times.items() if v}
    out: dict[str, Any] = {
        "median_s": med,
        "runs_s": times,
        "peak_gib": {k: max(v) / GIB for k, v in peaks.items() if v},
        "engine_steps_median_s": {
            step: statistics.median(s[step] for s in engine_steps) for step in engine_steps[0]
        },
        "cli_vs_polars": med["engine"] / med["polars_floor"],
        "cli_vs_pandas": med["engine"] / med["pandas"],
    }
    card = load_scorecard(data.scorecard)
    out["full_check"] = compare(pl.read_parquet(engine_out), pl.read_parquet(pandas_out), card)
    _say(
        f"(b) engine {med['engine']:.2f} s, Polars floor {med['polars_floor']:.2f} s "
        f"({out['cli_vs_polars']:.2f}x), pandas {med['pandas']:.2f} s "
        f"({out['cli_vs_pandas']:.2f}x); engine peak {out['peak_gib']['engine']:.2f} GiB"
    )
    return out


def _child(cmd: list[str]) -> tuple[float, int, str]:
    """Wall time, peak resident memory (bytes) and stdout of one child process, measured by
    the small launcher ``bench._child`` (see there why not from this process)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        done = subprocess.run(
            [sys.executable, "-m", "bench._child", str(report), *cmd],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not report.exists():
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
        figures = json.loads(report.read_text())
    return figures["seconds"], figures["peak_bytes"], done.stdout


def _machine() -> dict[str, Any]:
    import hashlib
    import platform

    scoring_py = ROOT / "engine" / "scoring.py"
    return {
        "engine_scoring_sha256": hashlib.sha256(scoring_py.read_bytes()).hexdigest()[:12],
        "load_average_at_start": [round(x, 1) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "polars": pl.__version__,
        "platform": platform.platform(),
    }


# --------------------------------------------------------------------------- report


def _goals(result: dict[str, Any]) -> dict[str, Any]:
    a = result["in_memory"]["rescore_vs_floor"]
    e2e = result["end_to_end"]
    return {
        "rescore_le_10x_floor": a <= GOALS["rescore_vs_floor"],
        "cli_le_1_5x_polars": e2e["cli_vs_polars"] <= GOALS["cli_vs_polars"],
        "cli_le_third_of_pandas": e2e["cli_vs_pandas"] <= GOALS["cli_vs_pandas"],
        "peak_lt_4_gib": e2e["peak_gib"]["engine"] < GOALS["peak_gib"],
    }


_PATHS = {
    "score": "`score()` from the long values",
    "rescore_prepared": "`engine.rescore.rescore` over prepared values",
    "measure_cache": "`engine.rescore.measure_cache` (designer what-if)",
    "reweight": "`engine.reweight.Reweighter` (weight-only change)",
}


def markdown(result: dict[str, Any]) -> str:
    a, b, g = result["in_memory"], result["end_to_end"], result["goals"]
    med, peak = b["median_s"], b["peak_gib"]

    def ok(flag: bool) -> str:
        return "met" if flag else "**not met**"

    rows = [
        "| measurement | median | ratio | goal |",
        "|---|---|---|---|",
        *(
            f"| (a) re-score after a weight change: {_PATHS.get(k, k)} | {v:.3f} s | "
            f"{a['paths_vs_floor'][k]:,.0f}x the floor | "
            + (f"<= 10x: {ok(g['rescore_le_10x_floor'])} |" if k == a["rescore_path"] else "|")
            for k, v in a["paths_s"].items()
        ),
        f"| (a) floor: NumPy sum of the {a['matrix_shape'][0]:,} x {a['matrix_shape'][1]} "
        f"matrix | {a['floor_numpy_sum_s'] * 1000:.1f} ms | 1 | |",
        f"| (b) `python -m engine score`, Parquet -> Parquet | {med['engine']:.2f} s | "
        f"{b['cli_vs_polars']:.2f}x Polars, {b['cli_vs_pandas']:.2f}x pandas | "
        f"<= 1.5x Polars: {ok(g['cli_le_1_5x_polars'])}; "
        f"<= 0.33x pandas: {ok(g['cli_le_third_of_pandas'])} |",
        f"| (b) Polars read + pivot + sum | {med['polars_floor']:.2f} s | 1 | |",
        f"| (b) pandas baseline, Parquet -> Parquet | {med['pandas']:.2f} s | 1 | |",
        f"| peak memory: engine / Polars floor / pandas | {peak['engine']:.2f} / "
        f"{peak['polars_floor']:.2f} / {peak['pandas']:.2f} GiB | | engine < 4 GiB: "
        f"{ok(g['peak_lt_4_gib'])} |",
    ]
    return "\n".join(rows)


def _time(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
