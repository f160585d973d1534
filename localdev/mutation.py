"""Mutation testing of the pure core: ``python -m localdev.mutation`` (what ``make mutation`` runs).

Runs mutmut from scratch (the config is ``[tool.mutmut]`` in pyproject.toml: the domain, the
report parser and request validation against their fast unit tests), then prints killed / total per module. A
fresh run every time: mutmut keeps earlier verdicts in ./mutants, and a score must not rest on them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

MUTANTS = Path("mutants")


def scores(mutants: Path = MUTANTS) -> list[tuple[str, int, int]]:
    """(module, killed, total) for every mutated module, from mutmut's per-file results."""
    rows = []
    for meta in sorted(mutants.rglob("*.py.meta")):
        exit_codes: dict[str, int | None] = json.loads(meta.read_text("utf-8"))["exit_code_by_key"]
        module = meta.relative_to(mutants).as_posix().removesuffix(".meta")
        # mutmut's exit codes: 0 is a survivor, None was never run, anything else was caught.
        killed = sum(1 for code in exit_codes.values() if code not in (0, None))
        rows.append((module, killed, len(exit_codes)))
    return rows


def report(rows: list[tuple[str, int, int]]) -> str:
    lines = [f"{'module':<28} {'killed':>6} {'total':>6} {'survived':>8} {'score':>7}"]
    for module, killed, total in [*rows, ("all", sum(r[1] for r in rows), sum(r[2] for r in rows))]:
        score = 100 * killed / total if total else 0.0
        lines.append(f"{module:<28} {killed:>6} {total:>6} {total - killed:>8} {score:>6.1f}%")
    return "\n".join(lines)


def main() -> int:
    shutil.rmtree(MUTANTS, ignore_errors=True)
    run = subprocess.run([sys.executable, "-m", "mutmut", "run"], check=False)
    if run.returncode != 0:
        return run.returncode
    subprocess.run([sys.executable, "-m", "mutmut", "results"], check=False)
    print(report(scores()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
