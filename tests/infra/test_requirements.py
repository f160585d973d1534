"""requirements.txt is what deploys: a complete lock of requirements.in, which names exactly what the app needs.

`make setup-infra` installs requirements.txt into .venv-runtime with --no-deps, as a lock is meant to be
installed, so a dependency missing from the lock shows up here instead of in Azure."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

from tests.support import ROOT

RUNTIME_PYTHON = ROOT / ".venv-runtime" / "bin" / "python"
APP_SOURCES = [ROOT / "function_app.py", *sorted((ROOT / "mms_tracker").rglob("*.py"))]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """Name -> version of every `name==version` line; fails on any other requirement line."""
    found: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIN.match(line)
        assert match, f"{path.name}: not an exact pin: {raw!r}"
        found[normalise(match[1])] = match[2]
    return found


def imported_modules() -> set[str]:
    """Absolute imports of the deployed code (relative ones and the package itself left out)."""
    names: set[str] = set()
    for path in APP_SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return {n for n in names if n.split(".")[0] not in {"mms_tracker", "function_app", "__future__"}}


def providing_distribution(module: str, candidates: set[str]) -> str | None:
    """The candidate distribution whose files hold `module` (the deepest package or module matching)."""
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        stem = "/".join(parts[:depth])
        for name in candidates:
            try:
                files = {str(f) for f in distribution(name).files or []}
            except PackageNotFoundError:
                continue
            if f"{stem}/__init__.py" in files or f"{stem}.py" in files:
                return name
    return None


def test_requirements_txt_pins_every_package_and_locks_requirements_in_unchanged() -> None:
    direct = pins(ROOT / "requirements.in")
    locked = pins(ROOT / "requirements.txt")
    assert {name: locked.get(name) for name in direct} == direct
    assert locked["azure-eventgrid"] == direct["azure-eventgrid"]  # the status-events publisher imports it


def test_every_module_the_app_imports_comes_from_python_or_a_direct_requirement() -> None:
    direct = set(pins(ROOT / "requirements.in"))
    third_party = {m for m in imported_modules() if m.split(".")[0] not in sys.stdlib_module_names}
    assert {"azure.functions", "azure.core", "httpx"} <= third_party
    unprovided = {m for m in third_party if providing_distribution(m, direct) is None}
    assert unprovided == set()


def test_the_runtime_venv_installed_from_the_lock_alone_is_consistent() -> None:
    if not RUNTIME_PYTHON.exists():
        pytest.fail(f"{RUNTIME_PYTHON} is missing: run `make setup-infra` (make test does)")
    out = subprocess.run(
        [str(RUNTIME_PYTHON), "-m", "pip", "check", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    listed = subprocess.run(
        [str(RUNTIME_PYTHON), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    installed = {normalise(line.split("==")[0]) for line in listed.stdout.splitlines() if "==" in line}
    assert set(pins(ROOT / "requirements.txt")) <= installed
