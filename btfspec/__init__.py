"""btfspec: a declarative spec and fuzz-testing framework for BTF distill/relocate.

Import names: ``btfspec.spec`` (the format), ``btfspec.btfgen`` (generators), ``btfspec.oracle``
(implementations, equivalence, fuzzing, real kernels) and the CLI in ``btfspec.cli``. In a source
checkout those three live in the top-level folders ``spec/``, ``btfgen/`` and ``oracle/`` beside this
package (see ARCHITECTURE.md); an installed copy has them inside it (``package-dir`` in pyproject.toml).
"""

from __future__ import annotations

from importlib import metadata as _metadata
from pathlib import Path as _Path

_HERE = _Path(__file__).resolve().parent
if not (_HERE / "spec").is_dir() and (_HERE.parent / "spec" / "grammar.py").is_file():
    # A source checkout run without installation: find spec/, btfgen/ and oracle/ beside btfspec/.
    __path__.append(str(_HERE.parent))  # type: ignore[name-defined]

try:
    __version__ = _metadata.version("btfspec")
except _metadata.PackageNotFoundError:  # pragma: no cover - a checkout that was never installed
    __version__ = "0.0.0+checkout"

__all__ = ["__version__"]
