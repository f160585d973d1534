"""The package's public surface and the app's function list are deliberate; these pin them."""

from __future__ import annotations

import azure.functions as func

import mms_tracker
from mms_tracker.api.blueprints import BLUEPRINTS
from tests.support import EXPECTED_FUNCTIONS


def test_the_package_exports_only_its_version() -> None:
    assert mms_tracker.__all__ == ["__version__"]


def test_the_blueprints_register_exactly_the_documented_functions() -> None:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    for blueprint in BLUEPRINTS:
        app.register_functions(blueprint)
    names = sorted(f.get_function_name() or "" for f in app.get_functions())
    assert names == sorted(EXPECTED_FUNCTIONS)
