"""The fuzz properties by name: ``P1`` .. ``P8`` and their aliases by meaning (``relocation``, ...)."""

from __future__ import annotations

from btfspec.oracle.fuzz import (
    acceptance,
    differential,
    format2026,
    guest_loader,
    reloc_inputs,
    relocation,
    robustness,
    roundtrip,
)
from btfspec.oracle.fuzz.property import ALIASES, Property

REGISTRY: dict[str, Property] = {m.PROPERTY.name: m.PROPERTY
                                 for m in (relocation, roundtrip, differential, acceptance, robustness, format2026,
                                           guest_loader, reloc_inputs)}


def canonical(name: str) -> str:
    """``P1`` .. ``P8`` for a property name or alias (``relocation`` -> ``P1``); ``KeyError`` for others."""
    key = ALIASES.get(name, name)
    if key not in REGISTRY:
        raise KeyError(name)
    return key


def get_property(name: str) -> Property:
    """The property called ``name`` (``P1`` .. ``P8`` or an alias); ``KeyError`` for unknown names."""
    return REGISTRY[canonical(name)]


def all_names() -> list[str]:
    """Every property name, in order."""
    return sorted(REGISTRY)


__all__ = ["REGISTRY", "all_names", "canonical", "get_property"]
