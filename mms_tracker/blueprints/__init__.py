"""The app's triggers, one blueprint per concern; ``function_app.py`` registers ``BLUEPRINTS``."""

from .health import blueprint as health

BLUEPRINTS = (health,)

__all__ = ["BLUEPRINTS"]
