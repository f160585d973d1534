"""``python -m localdev.host``: serve ``function_app.app`` (``--help`` lists the options)."""

from .cli import main

raise SystemExit(main())
