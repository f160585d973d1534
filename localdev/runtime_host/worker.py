"""Microsoft's Python execution runtime (``azure-functions-runtime``), driven as its proxy worker drives it.

The proxy worker (Azure/azure-functions-python-worker, ``workers/proxy_worker/dispatcher.py``) receives
the host's gRPC ``StreamingMessage``s and hands each to one of the runtime's ``handle_event``
functions as a ``WorkerRequest(name, request, properties)``: ``worker_init_request`` and
``function_environment_reload_request`` get ``properties={"protos": <its protos module>, "host":
<address>}``, and the runtime keeps that ``protos`` module for every later answer;
``functions_metadata_request``, ``function_load_request`` and ``invocation_request`` get the request
alone. Each answer is a protobuf message of that module, which the proxy wraps in a
``StreamingMessage`` and sends back. :class:`RuntimeWorker` does the same, with the messages compiled
from ``proto/FunctionRpc.proto``, and passes every request and answer through its wire form
(``SerializeToString``/``FromString``), as the gRPC channel would.
"""

from __future__ import annotations

import importlib
import json
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any


@dataclass
class WorkerRequest:
    """The proxy worker's envelope (``dispatcher.WorkerRequest``): the request's name, the whole
    ``StreamingMessage``, and for init and reload the ``protos`` module and the host's address."""

    name: str
    request: Any
    properties: dict[str, Any] | None = None


class RuntimeFailure(Exception):
    """The runtime answered a request with ``StatusResult.Failure``."""

    def __init__(self, what: str, result: Any) -> None:
        exception = result.exception
        super().__init__(f"{what} failed: {exception.type}: {exception.message}")
        self.type = exception.type
        self.message = exception.message


@dataclass(frozen=True)
class IndexedFunction:
    """One ``RpcFunctionMetadata`` the runtime indexed, with its raw bindings parsed."""

    function_id: str
    name: str
    bindings: list[dict[str, Any]]

    @property
    def trigger(self) -> dict[str, Any]:
        return next(b for b in self.bindings if str(b.get("type", "")).endswith("Trigger"))


def load_protos(directory: Path) -> ModuleType:
    """The module ``grpc_tools.protoc --python_out`` made from ``proto/FunctionRpc.proto``."""
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))
    return importlib.import_module("FunctionRpc_pb2")


class RuntimeWorker:
    """One process's ``azure_functions_runtime``, initialised for one function app directory."""

    def __init__(self, protos: ModuleType, app_directory: Path, host: str = "127.0.0.1") -> None:
        self.protos = protos
        self.app_directory = app_directory
        self.host = host
        self.capabilities: dict[str, str] = {}
        self.functions: dict[str, IndexedFunction] = {}
        self._runtime: Any = None

    @property
    def runtime(self) -> Any:
        if self._runtime is None:
            # The proxy imports the runtime once the init request arrived (``reload_library_worker``).
            self._runtime = importlib.import_module("azure_functions_runtime")
        return self._runtime

    def _wire(self, message: Any) -> Any:
        return type(message).FromString(message.SerializeToString())

    def _streaming(self, **content: Any) -> Any:
        return self._wire(self.protos.StreamingMessage(request_id=str(uuid.uuid4()), **content))

    async def init(self, host_capabilities: Mapping[str, str] | None = None) -> dict[str, str]:
        """``WorkerInitRequest``: the runtime indexes the app here (it indexes in init by default)."""
        message = self._streaming(
            worker_init_request=self.protos.WorkerInitRequest(
                host_version="4.1040.0",
                capabilities=dict(host_capabilities or {}),
                function_app_directory=str(self.app_directory),
            )
        )
        properties = {"protos": self.protos, "host": self.host}
        self.runtime.start_threadpool_executor()  # the proxy starts the runtime's thread pool before init
        response = self._wire(
            await self.runtime.worker_init_request(WorkerRequest("WorkerInitRequest", message, properties))
        )
        self._check("WorkerInitRequest", response.result)
        self.capabilities = dict(response.capabilities)
        return self.capabilities

    async def reload_environment(self, environment: Mapping[str, str]) -> dict[str, str]:
        """``FunctionEnvironmentReloadRequest``: placeholder specialisation (the app and its settings arrive)."""
        message = self._streaming(
            function_environment_reload_request=self.protos.FunctionEnvironmentReloadRequest(
                environment_variables=dict(environment), function_app_directory=str(self.app_directory)
            )
        )
        properties = {"protos": self.protos, "host": self.host}
        request = WorkerRequest("FunctionEnvironmentReloadRequest", message, properties)
        self.runtime.start_threadpool_executor()
        response = self._wire(await self.runtime.function_environment_reload_request(request))
        self._check("FunctionEnvironmentReloadRequest", response.result)
        self.capabilities = dict(response.capabilities)
        return self.capabilities

    async def index(self) -> dict[str, IndexedFunction]:
        """``FunctionsMetadataRequest``, then a ``FunctionLoadRequest`` for each function indexed."""
        message = self._streaming(
            functions_metadata_request=self.protos.FunctionsMetadataRequest(
                function_app_directory=str(self.app_directory)
            )
        )
        response = self._wire(
            await self.runtime.functions_metadata_request(WorkerRequest("WorkerMetadataRequest", message))
        )
        self._check("FunctionsMetadataRequest", response.result)
        if response.use_default_metadata_indexing:
            raise RuntimeError("the runtime asked the host to index the app itself (no worker indexing)")
        self.functions = {}
        for metadata in response.function_metadata_results:
            load = self._streaming(
                function_load_request=self.protos.FunctionLoadRequest(
                    function_id=metadata.function_id, metadata=metadata
                )
            )
            loaded = self._wire(await self.runtime.function_load_request(WorkerRequest("FunctionLoadRequest", load)))
            self._check(f"FunctionLoadRequest {metadata.name}", loaded.result)
            bindings = [json.loads(raw) for raw in metadata.raw_bindings]
            self.functions[metadata.name] = IndexedFunction(metadata.function_id, metadata.name, bindings)
        return self.functions

    async def invoke(
        self,
        name: str,
        data: Any,
        trigger_metadata: Mapping[str, Any] | None = None,
        invocation_id: str | None = None,
    ) -> Any:
        """``InvocationRequest`` of function ``name`` with its trigger's ``TypedData``; the ``InvocationResponse``."""
        function = self.functions[name]
        binding = self.protos.ParameterBinding(name=function.trigger["name"], data=data)
        message = self._streaming(
            invocation_request=self.protos.InvocationRequest(
                invocation_id=invocation_id or str(uuid.uuid4()),
                function_id=function.function_id,
                input_data=[binding],
                trigger_metadata=dict(trigger_metadata or {}),
            )
        )
        return self._wire(await self.runtime.invocation_request(WorkerRequest("FunctionInvocationRequest", message)))

    def close(self) -> None:
        """What the proxy does when its stream ends: the runtime's thread pool stops."""
        if self._runtime is not None:
            self._runtime.stop_threadpool_executor()

    def _check(self, what: str, result: Any) -> None:
        if result.status != self.protos.StatusResult.Success:
            raise RuntimeFailure(what, result)
