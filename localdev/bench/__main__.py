"""``python -m localdev.bench`` (``make bench``): every phase, options in the package docstring."""

from .run import main

raise SystemExit(main())
