"""The app's triggers, one blueprint per concern; ``function_app.py`` registers ``BLUEPRINTS``."""

from .delivery_reports import blueprint as delivery_reports
from .health import blueprint as health
from .messages import blueprint as messages

BLUEPRINTS = (health, messages, delivery_reports)

__all__ = ["BLUEPRINTS"]
