"""The entry point the Azure Functions Python worker indexes: the app and its blueprints."""

import azure.functions as func

from mms_tracker.api.blueprints import BLUEPRINTS
from mms_tracker.runtime import RUNTIME
from mms_tracker.telemetry.wiring import configure_from_environment as configure_telemetry

configure_telemetry()  # Application Insights and/or OTLP when configured; nothing (not even an import) otherwise
RUNTIME.configure_from_environment()

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in BLUEPRINTS:
    app.register_functions(blueprint)
