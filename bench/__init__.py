"""Benchmarks of Vitals: ``python -m bench [NAME ...]`` (see ``bench/README.md``).

Each ``bench/bench_<name>.py`` module exposes ``run() -> dict`` and is discovered by
``bench/__main__.py``; generated data and results go to ``bench/out/`` (ignored by git).
"""

from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
