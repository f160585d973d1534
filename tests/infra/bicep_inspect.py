"""Run with the infra venv (pycep-parser comes with checkov): parse every .bicep under a folder and
print, as JSON, per file: whether it parsed, and the resource types it declares."""

import json
import sys
from pathlib import Path

from pycep import BicepParser

result = {}
for path in sorted(Path(sys.argv[1]).rglob("*.bicep")):
    try:
        parsed = BicepParser().parse(file_path=path)
    except Exception as exc:
        result[str(path)] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        continue
    resources = parsed.get("resources", {})
    result[str(path)] = {"ok": True, "resources": sorted({str(r.get("type")) for r in resources.values()})}
print(json.dumps(result))
