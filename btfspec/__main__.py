"""``python -m btfspec`` is the ``btfspec`` command."""

from btfspec.cli import main

main()
