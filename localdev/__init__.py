"""Dev-only tools: the local Functions host, the ACS simulator and the ``make run`` supervisor.

Nothing here is deployed (``.funcignore`` leaves this package out).
"""
