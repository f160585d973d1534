"""Run with the infra venv (pycep-parser comes with checkov): parse every .bicep under a folder with pycep
and with checkov's own Bicep parser (which checkov's checks run on), and print, as JSON, per file: whether
both parsed, and the resource types it declares."""

import json
import sys
from pathlib import Path

from checkov.bicep.parser import Parser as CheckovParser
from pycep import BicepParser

result = {}
for path in sorted(Path(sys.argv[1]).rglob("*.bicep")):
    try:
        parsed = BicepParser().parse(file_path=path)
        template, _lines = CheckovParser().parse(path)
        if not template:
            raise ValueError("checkov's parser returned nothing")
    except Exception as exc:
        result[str(path)] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        continue
    resources = parsed.get("resources", {})
    result[str(path)] = {
        "ok": True,
        "resources": sorted({f"{r.get('type')}@{r.get('api_version')}" for r in resources.values()}),
        "checkov_resources": sorted(template.get("resources", {})),
    }
print(json.dumps(result))
