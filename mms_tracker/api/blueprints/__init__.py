"""The app's triggers, one blueprint per concern; ``function_app.py`` registers ``BLUEPRINTS``."""

from .campaigns import blueprint as campaigns
from .delivery_reports import blueprint as delivery_reports
from .health import blueprint as health
from .messages import blueprint as messages
from .openapi import blueprint as openapi
from .tags import blueprint as tags

BLUEPRINTS = (health, messages, tags, delivery_reports, openapi, campaigns)

__all__ = ["BLUEPRINTS"]
