"""``python -m localdev.simulator``: serve the simulator (settings are environment variables, docs/development.md)."""

from .server import main

raise SystemExit(main())
