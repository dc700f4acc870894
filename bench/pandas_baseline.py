"""A plain pandas implementation of the scoring semantics the benchmark scorecard uses.

What it does, as ``engine.scoring`` does for that scorecard: the latest value on or before the
as-of date per (account, metric); each measure's ``linear`` map (interpolated between the
points, clamped at the ends, then to 0-100); group score = sum(w * s) / sum(w) over the
measures with a value (``renormalize``); overall = the same over groups with a score; grade =
the band of the overall, an edge belonging to the higher band. It does less than the engine
(no ``missing``/``stale`` lists, overrides, products or outcome/experience scores), so the
engine's ratio against it is a conservative one.

``python -m bench.pandas_baseline --accounts A --metrics M --scorecard S --as-of D --out O``
runs it from Parquet files to a Parquet file, as ``python -m engine score`` does.
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from engine.scorecard import LinearMap, MissingPolicy, Scorecard, load_scorecard


def supported(card: Scorecard) -> None:
    """Raise ``NotImplementedError`` for anything this baseline does not implement."""
    if card.missing is not MissingPolicy.RENORMALIZE:
        raise NotImplementedError("the pandas baseline implements missing: renormalize only")
    if card.overrides or card.assignment:
        raise NotImplementedError("the pandas baseline implements no overrides or assignment")
    for _, m in card.measures:
        if not isinstance(m.map, LinearMap):
            raise NotImplementedError(f"measure {m.id}: the pandas baseline has linear maps only")
        if m.validity_days is not None:
            raise NotImplementedError(f"measure {m.id}: the pandas baseline has no staleness")


def score_pandas(
    accounts: pd.DataFrame, metrics: pd.DataFrame, card: Scorecard, as_of: date
) -> pd.DataFrame:
    """One row per account: ``account_id``, ``score``, ``raw_score``, ``grade``, one column
    per group and per measure (0-100, NaN when missing)."""
    supported(card)
    needed = sorted(card.metrics)
    m = metrics[["account_id", "metric", "value", "as_of"]]
    m = m[(m["as_of"] <= pd.Timestamp(as_of)) & m["value"].notna() & m["metric"].isin(needed)]
    # latest value per (account, metric): sort by date, keep the last row of each key
    m = m.sort_values("as_of", kind="stable").drop_duplicates(["account_id", "metric"], keep="last")
    wide = m.pivot(index="account_id", columns="metric", values="value")
    wide = wide.reindex(index=accounts["account_id"], columns=needed)

    out = pd.DataFrame({"account_id": accounts["account_id"].to_numpy()})
    group_scores = []
    for group in card.groups:
        num = np.zeros(len(wide))
        den = np.zeros(len(wide))
        for m_ in group.measures:
            assert isinstance(m_.map, LinearMap)
            x = wide[m_.metric].to_numpy(dtype="float64")
            xp, fp = zip(*sorted(m_.map.points), strict=True)
            s = np.clip(np.interp(x, xp, fp), 0.0, 100.0)  # NaN stays NaN
            out[m_.id] = s
            present = ~np.isnan(s)
            num += np.where(present, s * m_.weight, 0.0)
            den += np.where(present, m_.weight, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            g = np.where(den > 0, num / den, np.nan)
        out[group.id] = g
        group_scores.append((group.weight, g))
    num = np.zeros(len(wide))
    den = np.zeros(len(wide))
    for weight, g in group_scores:
        present = ~np.isnan(g)
        num += np.where(present, g * weight, 0.0)
        den += np.where(present, weight, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        overall = np.where(den > 0, num / den, np.nan)
    out.insert(1, "score", overall)
    out.insert(2, "raw_score", overall)
    out.insert(3, "grade", _grade(overall, card))
    return out


def _grade(scores: np.ndarray, card: Scorecard) -> pd.Series:
    bands = card.scheme.bands
    if not bands:
        return pd.Series(np.round(scores)).astype("Int64").astype("string")
    edges = [-np.inf, *[float(b.below) for b in bands[:-1] if b.below is not None], np.inf]
    labels = [b.label for b in bands]
    # right=False: a score on an edge belongs to the higher band
    return pd.cut(scores, bins=edges, labels=labels, right=False).astype("string")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pandas_baseline", description=__doc__)
    parser.add_argument("--accounts", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--scorecard", required=True)
    parser.add_argument("--as-of", dest="as_of", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    card = load_scorecard(Path(args.scorecard))
    accounts = pd.read_parquet(args.accounts)
    metrics = pd.read_parquet(args.metrics)
    metrics["as_of"] = pd.to_datetime(metrics["as_of"])
    scores = score_pandas(accounts, metrics, card, date.fromisoformat(args.as_of))
    scores.to_parquet(args.out, index=False)
    print(f"pandas baseline: {len(scores):,} accounts in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
