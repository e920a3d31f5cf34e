"""Where btfspec's own files are, in a source checkout and in an installed copy alike, and where its
commands write what they produce.

btfspec never writes into its source tree or its installed package: campaign findings, the
hypothesis example database, reports and the main job's outputs go under :func:`results_dir`
(or wherever a command's options point).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
# The folder that makes ``import btfspec`` work: what a worker subprocess puts on PYTHONPATH.
IMPORT_ROOT = PACKAGE.parent
# spec/, btfgen/, oracle/ and corpus/ sit inside the installed package, beside it in a checkout.
CONTENT_ROOT = PACKAGE if (PACKAGE / "spec").is_dir() else PACKAGE.parent
CORPUS_DIR = CONTENT_ROOT / "corpus"

RESULTS_ENV = "BTFSPEC_RESULTS"


def results_dir() -> Path:
    """The default results directory: ``$BTFSPEC_RESULTS``, else ``$XDG_CACHE_HOME/btfspec/results``,
    else ``~/.cache/btfspec/results`` (read when called, so a changed environment takes effect)."""
    explicit = os.environ.get(RESULTS_ENV)
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    root = Path(cache).expanduser() if cache and Path(cache).is_absolute() else Path.home() / ".cache"
    return root / "btfspec" / "results"


def hypothesis_home() -> Path:
    """Where hypothesis keeps what it stores beside examples (its constants cache, a default example
    database) for btfspec's commands: ``hypothesis/`` in :func:`results_dir` -- not ``./.hypothesis``."""
    return results_dir() / "hypothesis"


def keep_hypothesis_out_of_the_tree() -> None:
    """Point hypothesis's storage at :func:`hypothesis_home` unless the user chose a place
    (``$HYPOTHESIS_STORAGE_DIRECTORY``); worker processes inherit it."""
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(hypothesis_home()))
