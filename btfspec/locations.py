"""Where btfspec's own files are, in a source checkout and in an installed copy alike."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
# The folder that makes ``import btfspec`` work: what a worker subprocess puts on PYTHONPATH.
IMPORT_ROOT = PACKAGE.parent
# spec/, btfgen/, oracle/ and corpus/ sit inside the installed package, beside it in a checkout.
CONTENT_ROOT = PACKAGE if (PACKAGE / "spec").is_dir() else PACKAGE.parent
CORPUS_DIR = CONTENT_ROOT / "corpus"
