"""Validation failures as values: a field's JSON path and what is wrong with it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One validation failure: the JSON path of the field (``recipients[0].to``) and what is wrong."""

    field: str
    message: str
