"""The app's triggers, one blueprint per concern; ``function_app.py`` registers ``BLUEPRINTS``."""

from .campaigns import blueprint as campaigns
from .dashboard import blueprint as dashboard
from .delivery_reports import blueprint as delivery_reports
from .health import blueprint as health
from .messages import blueprint as messages
from .openapi import blueprint as openapi
from .poison import blueprint as poison
from .status_events import blueprint as status_events
from .tags import blueprint as tags

BLUEPRINTS = (health, messages, tags, poison, dashboard, delivery_reports, status_events, openapi, campaigns)

__all__ = ["BLUEPRINTS"]
