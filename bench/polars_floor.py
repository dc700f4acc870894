"""The Polars floor: read the long metrics Parquet file, pivot it wide, sum every value.

``python -m bench.polars_floor METRICS.parquet`` is the least any Parquet -> scores run has to
do (read, reshape to one row per account), without mapping, weighting or writing.
"""

from __future__ import annotations

import sys
import time

import polars as pl


def floor(path: str) -> float:
    metrics = pl.read_parquet(path)
    wide = metrics.pivot(on="metric", index="account_id", values="value")
    return float(wide.drop("account_id").sum().sum_horizontal().item())


def main() -> None:
    started = time.perf_counter()
    total = floor(sys.argv[1])
    print(f"polars floor: sum {total:.1f} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
