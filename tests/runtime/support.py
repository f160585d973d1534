"""Microsoft's Python runtime (``azure-functions-runtime``) in a subprocess of the Python 3.13 side venv
(``.venv-py313``, ``make setup-runtime``), behind ``localdev.runtime_host``'s front, for the tests here.

Without that venv (no Python 3.13 on the machine) these tests are skipped, saying so, except in CI.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from localdev.stack import stop_group, wait_for_port
from tests.support import ROOT, free_port

PY313 = ROOT / ".venv-py313" / "bin" / "python"
PROTOS = ROOT / ".venv-py313" / "protos"


def require_runtime() -> None:
    """Skip, saying why, when the 3.13 side venv has not been built; in CI (``CI=true``, .ci/run) fail."""
    if not PY313.exists() or not (PROTOS / "FunctionRpc_pb2.py").exists():
        reason = "no .venv-py313 (make setup-runtime needs Python 3.13): Microsoft's runtime not run"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


class RuntimeHost:
    """``python -m localdev.runtime_host`` for one app directory, on a free port, logging to a file."""

    def __init__(self, app_dir: Path, env: Mapping[str, str], log_path: Path, *, specialize: bool = False) -> None:
        self.app_dir = app_dir
        self.specialize = specialize
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "APPLICATIONINSIGHTS_"))}
        self.env |= {"PYTHONPATH": str(ROOT), **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RuntimeHost:
        command = [str(PY313), "-m", "localdev.runtime_host", "--app-dir", str(self.app_dir)]
        command += ["--protos", str(PROTOS), "--port", str(self.port)] + (["--specialize"] if self.specialize else [])
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=self.app_dir, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            wait_for_port(self.port, 120, self.process)
        except BaseException:
            self.stop()
            raise AssertionError("the runtime host did not start:\n" + self.log()) from None
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def indexed(self) -> dict[str, Any]:
        """What the runtime indexed: ``{"capabilities": ..., "functions": {name: bindings}}``."""
        response = httpx.get(self.url + "/runtime-host/functions", timeout=30)
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    async def invoke(self, kind: str, name: str, body: Any, client: httpx.AsyncClient) -> dict[str, Any]:
        """A queue or timer invocation through the runtime: its outcome (``status``, ``type``, ``message``)."""
        response = await client.post(f"{self.url}/runtime-host/{kind}/{name}", content=json.dumps(body), timeout=60)
        response.raise_for_status()
        outcome: dict[str, Any] = response.json()
        return outcome

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)
            self.process = None
