"""btfspec's public testing API: what a port's own test suite uses to check its distill/relocate.

Stable names (``__all__``):

* strategies -- :func:`base_split_pairs` (generated base/split cases, :class:`btfspec.btfgen.encoder.Case`)
  and :func:`universes`;
* properties -- :data:`PROPERTIES` (``P1`` .. ``P5``; :data:`ALIASES` by meaning, ``relocation`` ...),
  :func:`check_property` (draw a case of a property from ``st.data()`` and check it; raises
  :class:`PropertyFailure` with the first difference);
* implementations -- :func:`open_implementations` (by registry name, e.g. ``python``, ``libbpf``, ``cmd``),
  :func:`close_impls`, the :class:`Implementation` protocol and its :class:`Outcome`;
* the corpus -- :data:`CORPUS_DIR` (the installed regression corpus), :func:`iter_entries`, :func:`run_step`.

The pytest plugin (:mod:`btfspec.pytest_plugin`) builds on these: ``--btfspec-impl NAME`` gives one
test item per corpus entry x step x implementation and the fixtures ``btfspec_impls`` and
``btfspec_context`` for ``@given`` tests::

    from hypothesis import given, strategies as st
    from btfspec.testing import check_property

    @given(data=st.data())
    def test_relocation_property(btfspec_context, data):
        check_property("relocation", btfspec_context, data)
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from btfspec.btfgen.generate import base_split_pairs, universes
from btfspec.locations import CORPUS_DIR
from btfspec.oracle.fuzz.corpus import Entry, StepResult, iter_entries, run_step
from btfspec.oracle.fuzz.property import ALIASES, Context, Finding, Property, PropertyFailure
from btfspec.oracle.fuzz.registry import all_names, get_property
from btfspec.oracle.impls.adapter import (
    Implementation,
    ImplUnavailable,
    close_impls,
    make_impl,
    open_usable,
    parse_impl_list,
)
from btfspec.oracle.impls.outcome import Outcome

PROPERTIES: tuple[str, ...] = tuple(all_names())
# Implementations that run the user's program, and the registry options naming it: without one of
# them the implementation is not usable, and a wrong one is a usage error.
EXTERNAL_OPTIONS: dict[str, tuple[str, ...]] = {"cmd": ("distill_cmd", "relocate_cmd"), "serve": ("serve_cmd",)}


def open_implementations(names: str | Iterable[str], **options: Any) -> tuple[list[Implementation], dict[str, str]]:
    """Open the implementations ``names`` (``"python,libbpf"`` or a list); returns the usable ones and,
    for the others, why not.  ``options`` go to the registry: ``timeout`` and the external programs'
    commands (``distill_cmd``, ``relocate_cmd``, ...); ``None`` values are left out.

    Raises :class:`ValueError` for an unknown name and :class:`ImplUnavailable` when an external
    program's options are wrong (a usage error, not "unavailable here")."""
    wanted = parse_impl_list(names)
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(inspect.signature(make_impl).parameters))
    if unknown:  # e.g. a serve command given to a btfspec whose registry has no serve implementation
        raise ImplUnavailable(f"the implementation registry does not take {', '.join(unknown)}")
    return open_usable(wanted, **given)


def default_names(options: Mapping[str, Any]) -> list[str]:
    """Every known implementation, an external one only when ``options`` name its program."""
    from btfspec.oracle.impls.adapter import KNOWN

    return [n for n in KNOWN if n not in EXTERNAL_OPTIONS or any(options.get(o) for o in EXTERNAL_OPTIONS[n])]


def option_flags(name: str, options: Mapping[str, Any]) -> list[str]:
    """The command-line flags that give implementation ``name`` its program (``--distill-cmd T`` ...)."""
    out: list[str] = []
    for key in EXTERNAL_OPTIONS.get(name, ()):
        if options.get(key):
            out += ["--" + key.replace("_", "-"), str(options[key])]
    return out


def context(impls: Iterable[Implementation] | Mapping[str, Implementation], profile: str = "kernel-valid",
            **options: Any) -> Context:
    """The :class:`Context` a property check runs in (implementations by name, generator profile, and
    the context's other fields, e.g. ``timeout``)."""
    by_name = dict(impls) if isinstance(impls, Mapping) else {i.name: i for i in impls}
    return Context(impls=by_name, profile=profile, **options)


def check_property(name: str, ctx: Context, data: Any) -> None:
    """Draw one case of property ``name`` with hypothesis ``data`` (from ``st.data()``) and check it.

    ``name`` is ``P1`` .. ``P5`` or an alias (``relocation``, ...).  Raises :class:`PropertyFailure` (an
    AssertionError carrying the :class:`Finding`) on a violation; skips (``pytest.skip``) with the
    reason when the implementations of ``ctx`` cannot run the property."""
    prop = get_property(name)
    why = prop.unusable_reason(ctx)
    if why:
        import pytest

        pytest.skip(f"{prop.name}: {why}")
    prop.check(data.draw(prop.strategy(ctx), label=f"{name} case"), ctx)


__all__ = [
    "ALIASES", "CORPUS_DIR", "EXTERNAL_OPTIONS", "PROPERTIES", "Context", "Entry", "Finding", "ImplUnavailable",
    "Implementation", "Outcome", "Property", "PropertyFailure", "StepResult", "base_split_pairs", "check_property",
    "close_impls", "context", "default_names", "get_property", "iter_entries", "open_implementations",
    "option_flags", "run_step", "universes",
]
