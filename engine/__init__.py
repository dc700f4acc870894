"""Vitals engine: scorecards, scoring, data store and analytics on Polars and DuckDB.

Pure Python: no Streamlit, no Plotly. Usable from the command line (``python -m engine``) and
from notebooks.
"""
