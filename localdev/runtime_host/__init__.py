"""Microsoft's Python execution runtime (PyPI ``azure-functions-runtime``, the one Azure loads for
Python 3.13 and later), driven as its proxy worker drives it, behind a small HTTP front that does
what the Functions host does around it. Dev-only: ``make test`` runs it in the Python 3.13 side
venv (``.venv-py313``) to hold the app, and the local host, to Microsoft's own execution code.

- ``worker``: :class:`RuntimeWorker`, the runtime's ``handle_event`` entry points (worker init,
  functions metadata, function load, invocation, environment reload) with the protocol's messages;
- ``front``: :class:`RuntimeFront`, HTTP triggers forwarded to the runtime's own ASGI server as the
  host forwards them in HTTP-streams mode, Event Grid notifications, queue and timer invocations;
- ``proto/FunctionRpc.proto``: the protocol's messages, compiled at setup with grpcio-tools.

Run it with ``.venv-py313/bin/python -m localdev.runtime_host --protos .venv-py313/protos --port N``.
"""
