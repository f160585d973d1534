"""mms-tracker: send MMS through Azure Communication Services and track every message."""

__version__ = "0.1.0"

__all__ = ["__version__"]
