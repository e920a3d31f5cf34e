"""btfspec: a declarative spec and fuzz-testing framework for BTF distill/relocate.

Import names: ``btfspec.spec`` (the format), ``btfspec.btfgen`` (generators), ``btfspec.oracle``
(implementations, equivalence, fuzzing, real kernels) and the CLI in ``btfspec.cli``. In a source
checkout those three live in the top-level folders ``spec/``, ``btfgen/`` and ``oracle/`` beside this
package (see ARCHITECTURE.md); an installed copy has them inside it (``package-dir`` in pyproject.toml).
"""

from __future__ import annotations

import os as _os

_HERE = _os.path.dirname(_os.path.realpath(__file__))
_ROOT = _os.path.dirname(_HERE)
if not _os.path.isdir(_os.path.join(_HERE, "spec")) and _os.path.isfile(_os.path.join(_ROOT, "spec", "grammar.py")):
    # A source checkout run without installation: find spec/, btfgen/ and oracle/ beside btfspec/.
    __path__.append(_ROOT)  # type: ignore[name-defined]

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """``__version__`` on first use: importlib.metadata costs 30 ms that most commands never need."""
    if name != "__version__":
        raise AttributeError(f"module 'btfspec' has no attribute {name!r}")
    from importlib import metadata

    try:
        return metadata.version("btfspec")
    except metadata.PackageNotFoundError:  # pragma: no cover - a checkout that was never installed
        return "0.0.0+checkout"
