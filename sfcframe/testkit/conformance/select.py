"""Which builds a property applies to (all unless it says otherwise)."""

from __future__ import annotations

from typing import Callable

ATTRIBUTE = "conformance_applies_to"


def applies_to(predicate: Callable) -> Callable:
    """Decorator: run the property only on the combos ``predicate(combo)`` accepts."""
    def mark(fn):
        setattr(fn, ATTRIBUTE, predicate)
        return fn
    return mark


def accepts(function, combo) -> bool:
    predicate = getattr(function, ATTRIBUTE, None)
    return predicate is None or predicate(combo)
