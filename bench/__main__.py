"""``python -m bench [NAME ...] [--accounts N] [--runs N]``: run the benchmarks.

Discovers every ``bench/bench_<name>.py`` module exposing ``run() -> dict``; NAME filters them
(``scoring``, ``data``, ...). Each result is printed as JSON and saved to
``bench/out/<name>.json``; a result's ``markdown`` entry (its figures table) is printed too.
``--accounts`` and ``--runs`` set ``BENCH_ACCOUNTS`` and ``BENCH_RUNS`` for the modules.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys
import time
from datetime import UTC, datetime

import bench
from bench import OUT


def discover() -> list[str]:
    """Names of the benchmark modules, without the ``bench_`` prefix, sorted."""
    return sorted(
        info.name.removeprefix("bench_")
        for info in pkgutil.iter_modules(bench.__path__)
        if info.name.startswith("bench_")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (of: {', '.join(discover())})")
    parser.add_argument("--accounts", type=int, help="accounts to generate (BENCH_ACCOUNTS)")
    parser.add_argument("--runs", type=int, help="timed runs per measurement (BENCH_RUNS)")
    args = parser.parse_args(argv)
    if args.accounts:
        os.environ["BENCH_ACCOUNTS"] = str(args.accounts)
    if args.runs:
        os.environ["BENCH_RUNS"] = str(args.runs)

    available = discover()
    chosen = [n for n in available if not args.names or any(w in n for w in args.names)]
    if not chosen:
        print(
            f"no benchmark matches {args.names}; available: {', '.join(available)}", file=sys.stderr
        )
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    for name in chosen:
        module = importlib.import_module(f"bench.bench_{name}")
        started = time.perf_counter()
        result = module.run()
        result.setdefault("benchmark", name)
        result.setdefault("finished", datetime.now(UTC).isoformat(timespec="seconds"))
        result.setdefault("wall_s", round(time.perf_counter() - started, 1))
        (OUT / f"{name}.json").write_text(json.dumps(result, indent=2, default=str))
        print(json.dumps(result, indent=2, default=str))
        if result.get("markdown"):
            print(f"\n## {name}\n\n{result['markdown']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
