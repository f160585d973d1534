"""The shape rules lint cannot state: no function in what deploys (``mms_tracker/``) is over 80 lines.

ruff enforces the others (``pyproject.toml``: PLR0913 at most 8 arguments, C901 complexity 10).
Issue 26 found two functions past 80 lines (the OpenAPI literal at 294, ``send_mms`` at 111).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_FUNCTION_LINES = 80


def _functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        (f"{path.relative_to(ROOT)}:{node.lineno} {node.name}", (node.end_lineno or node.lineno) - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def test_no_function_in_the_app_is_over_80_lines() -> None:
    found = [f for p in sorted((ROOT / "mms_tracker").rglob("*.py")) for f in _functions(p)]
    assert len(found) > 100  # the walk really reads the package
    too_long = [f"{name}: {lines} lines" for name, lines in found if lines > MAX_FUNCTION_LINES]
    assert too_long == []


def test_the_line_count_is_of_the_whole_definition() -> None:
    source = "def f():\n" + "    x = 1\n" * 80 + "    return x\n"
    tree = ast.parse(source)
    node = tree.body[0]
    assert isinstance(node, ast.FunctionDef)
    assert (node.end_lineno or 0) - node.lineno + 1 == 82 > MAX_FUNCTION_LINES
