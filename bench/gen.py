"""Generate the scoring benchmark data: N accounts x 20 metrics, long format, 5% missing.

``python -m bench.gen [--accounts N]`` writes to ``bench/out/accounts_<N>/``:

- ``accounts.parquet``: ``account_id``, ``name``, ``arr``, ``segment``;
- ``metrics.parquet``: ``account_id``, ``metric``, ``value``, ``as_of`` (one value per
  account and metric, 5% of the pairs left out at random, dates spread over four weekly
  snapshots up to :data:`AS_OF`);
- ``scorecard.yaml``: the matching scorecard, four DEAR groups of five linear measures each.

Files are reused when ``meta.json`` says they were made with the same parameters.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from bench import OUT

AS_OF = date(2024, 6, 30)
GROUPS = ("deployment", "engagement", "adoption", "roi")
MEASURES_PER_GROUP = 5
SEED = 20240630


@dataclass(frozen=True)
class BenchData:
    accounts: Path
    metrics: Path
    scorecard: Path
    n_accounts: int
    n_rows: int
    as_of: date


def metric_names() -> list[str]:
    return [f"{g}_m{i + 1}" for g in GROUPS for i in range(MEASURES_PER_GROUP)]


def scorecard_dict() -> dict[str, object]:
    """20 linear measures; every fourth one decreases (more is worse, e.g. escalations)."""
    groups = []
    for gi, g in enumerate(GROUPS):
        measures = []
        for i in range(MEASURES_PER_GROUP):
            k = gi * MEASURES_PER_GROUP + i
            if k % 4 == 3:
                points = [[0.0, 100], [0.5, 40], [1.0, 0]]
            else:
                points = [[0.1, 0], [0.5, 50], [0.9, 100]]
            measures.append(
                {
                    "id": f"{g}_s{i + 1}",
                    "metric": f"{g}_m{i + 1}",
                    "label": f"{g.title()} measure {i + 1}",
                    "weight": 10 + 5 * i,
                    "map": {"linear": points},
                }
            )
        groups.append(
            {
                "id": g,
                "label": g.title(),
                "weight": (20, 25, 35, 20)[gi],
                "category": "experience" if g == "engagement" else "outcomes",
                "measures": measures,
            }
        )
    return {
        "id": "default",
        "name": "Benchmark DEAR",
        "scheme": {
            "type": "ryg",
            "bands": [
                {"label": "Red", "below": 50},
                {"label": "Yellow", "below": 75},
                {"label": "Green"},
            ],
        },
        "missing": "renormalize",
        "stale": "exclude",
        "groups": groups,
    }


def make_frames(
    n_accounts: int, *, missing: float = 0.05, seed: int = SEED
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The accounts and long metric_values frames, in memory."""
    rng = np.random.default_rng(seed)
    names = metric_names()
    ids = pl.int_range(1, n_accounts + 1, eager=True).cast(pl.String).str.zfill(7)
    ids = ("A" + ids).alias("account_id")
    accounts = pl.DataFrame(
        {
            "account_id": ids,
            "name": "Account " + ids.str.slice(1),
            "arr": np.round(rng.lognormal(10.5, 1.0, n_accounts), 2),
            "segment": pl.Series(["Enterprise", "Mid-Market", "SMB"]).gather(
                rng.integers(0, 3, n_accounts)
            ),
        }
    )
    n_metrics = len(names)
    keep = rng.random(n_accounts * n_metrics) >= missing
    pair = np.flatnonzero(keep)
    account_idx = (pair // n_metrics).astype(np.int64)
    metric_idx = (pair % n_metrics).astype(np.int64)
    # Each account has its own health level, so grades spread over all bands.
    level = rng.beta(2.0, 2.0, n_accounts)
    noise = rng.normal(0.0, 0.15, pair.size)
    decreasing = (metric_idx % 4) == 3
    raw = np.where(decreasing, 1.0 - level[account_idx], level[account_idx]) + noise
    value = np.round(np.clip(raw, 0.0, 1.2), 4)
    days_back = rng.integers(0, 4, pair.size) * 7
    as_of = np.datetime64(AS_OF, "D") - days_back.astype("timedelta64[D]")
    metrics = pl.DataFrame(
        {
            "account_id": ids.gather(account_idx),
            "metric": pl.Series(names).gather(metric_idx),
            "value": value,
            "as_of": pl.Series(as_of).cast(pl.Date),
        }
    )
    return accounts, metrics


def generate(
    n_accounts: int = 1_000_000,
    out: Path | None = None,
    *,
    missing: float = 0.05,
    force: bool = False,
) -> BenchData:
    """Write the benchmark files to ``out`` (default ``bench/out/accounts_<N>/``), reused when
    already made with these parameters."""
    out = out if out is not None else OUT / f"accounts_{n_accounts}"
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "accounts": out / "accounts.parquet",
        "metrics": out / "metrics.parquet",
        "scorecard": out / "scorecard.yaml",
    }
    meta_path = out / "meta.json"
    params = {"n_accounts": n_accounts, "missing": missing, "seed": SEED, "version": 1}
    if not force and meta_path.exists() and all(p.exists() for p in paths.values()):
        meta = json.loads(meta_path.read_text())
        if meta.get("params") == params:
            return BenchData(
                **paths,
                n_accounts=n_accounts,
                n_rows=meta["n_rows"],
                as_of=date.fromisoformat(meta["as_of"]),
            )
    accounts, metrics = make_frames(n_accounts, missing=missing)
    accounts.write_parquet(paths["accounts"])
    metrics.write_parquet(paths["metrics"])
    paths["scorecard"].write_text(yaml.safe_dump(scorecard_dict(), sort_keys=False))
    data = BenchData(**paths, n_accounts=n_accounts, n_rows=metrics.height, as_of=AS_OF)
    meta_path.write_text(
        json.dumps({"params": params, "n_rows": metrics.height, "as_of": AS_OF.isoformat()})
    )
    return data


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gen", description=__doc__)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--force", action="store_true", help="regenerate even if present")
    args = parser.parse_args()
    data = generate(args.accounts, force=args.force)
    print(json.dumps({k: str(v) for k, v in asdict(data).items()}, indent=2))


if __name__ == "__main__":
    main()
