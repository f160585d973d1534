"""The use cases: plain async functions over the domain and the ports (``ports.py``)."""
