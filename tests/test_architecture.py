"""Architecture rules, enforced: pages -> ui -> engine; the engine never imports UI libraries."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UI_LIBS = {"streamlit", "plotly", "streamlit_authenticator"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def _files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _files("engine"), ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_imports_no_ui_library_and_nothing_of_ours_but_itself(path: Path) -> None:
    found = _imports(path)
    assert not found & UI_LIBS, f"{path} imports {found & UI_LIBS}"
    assert not found & {"ui", "pages", "app"}, f"{path} imports the UI layer"


def test_ui_and_engine_do_not_import_pages() -> None:
    offenders = [p for p in [*_files("ui"), *_files("engine")] if {"pages", "app"} & _imports(p)]
    assert offenders == []


def test_the_rule_itself_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import streamlit as st\nfrom plotly import graph_objects\n")
    assert _imports(bad) & UI_LIBS == {"streamlit", "plotly"}


def test_no_eval_or_exec_anywhere() -> None:
    for folder in ("engine", "ui", "pages"):
        for path in _files(folder):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    assert node.func.id not in {"eval", "exec"}, f"{path}:{node.lineno}"
