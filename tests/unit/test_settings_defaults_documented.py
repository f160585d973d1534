"""Every setting default the docs state is the one the code has (each written once, in settings.py)."""

from __future__ import annotations

import re
from pathlib import Path

from mms_tracker import settings
from mms_tracker.settings import default_of

ROOT = Path(__file__).resolve().parents[2]
_ROW = re.compile(r"^\| `(?P<name>[A-Za-z_]+)` \| (?P<default>[^|]*) \|")


def _documented_defaults() -> dict[str, str]:
    """``name -> default`` from the settings table (``| name | default | meaning |``) of
    docs/settings.md when it has one, else of README.md; only defaults written as one literal."""
    for path in (ROOT / "docs" / "settings.md", ROOT / "README.md"):
        if not path.exists():
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        try:
            start = lines.index("| name | default | meaning |")
        except ValueError:
            continue
        found: dict[str, str] = {}
        for line in lines[start + 2 :]:
            if not line.startswith("|"):
                break
            row = _ROW.match(line)
            if row and re.fullmatch(r"`[^`]+`", row["default"].strip()):
                found[row["name"]] = row["default"].strip().strip("`")
        return found
    raise AssertionError("no settings table (| name | default | meaning |) in docs/settings.md or README.md")


def _fields_by_name() -> dict[str, str]:
    names = {name: key for key, name, *_ in (*settings._NUMBERS, *settings._WHOLE_NUMBERS)}
    names["TRACKING_TABLE_PREFIX"] = "table_prefix"
    return names


def test_every_default_the_docs_state_is_the_codes_default() -> None:
    documented = _documented_defaults()
    fields = _fields_by_name()
    assert len(documented) >= 10, documented  # the table was found and read
    checked = 0
    for name, text in documented.items():
        if name not in fields:
            continue  # read by another process (the local host, the simulator), not by settings.py
        checked += 1
        code = default_of(fields[name])
        value: object = text if isinstance(code, str) else float(text)
        assert value == code, f"{name}: docs say {text}, settings.py says {code}"
    assert checked == len(fields)


def test_every_defaulted_setting_is_documented_with_its_default() -> None:
    documented = _documented_defaults()
    missing = sorted(set(_fields_by_name()) - set(documented))
    assert not missing, f"settings with a code default the docs do not state: {missing}"
