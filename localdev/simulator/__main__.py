"""``python -m localdev.simulator``: serve the simulator (settings are environment variables, README)."""

from .server import main

raise SystemExit(main())
